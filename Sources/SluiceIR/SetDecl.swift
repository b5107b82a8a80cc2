/// nftables vocabulary: named sets and maps.

/// `flags interval`, `flags dynamic,timeout` …
public struct SetFlags: OptionSet, Sendable, Hashable, Codable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `flags interval`: elements may be prefixes or ranges.
    public static let interval = SetFlags(rawValue: 1 << 0)
    /// `flags dynamic`: updated from the packet path.
    public static let dynamic = SetFlags(rawValue: 1 << 1)
    /// `flags timeout`: elements expire.
    public static let timeout = SetFlags(rawValue: 1 << 2)
}

/// `set <name> { typeof <key>; … }` or `map <name> { typeof <key> : <data>; … }`.
///
/// The key and data types are given as `typeof` expressions, which is how nft declares
/// concatenations that include `numgen` or `meta l4proto`.
public struct SetDecl: Sendable, Hashable, Codable {
    public var name: String
    /// `typeof` key expressions (each one a field of the concatenation).
    public var key: [Expr]
    /// `typeof` data expressions of a map; `nil` for a plain set.
    public var data: [Expr]?
    public var flags: SetFlags
    /// Default element timeout in seconds (`timeout 10800s`).
    public var timeoutSeconds: UInt32?
    /// `size N` (maximum number of elements, for dynamic sets).
    public var size: UInt32?
    /// `counter`: every element carries a packet and byte counter (the set's own stateful
    /// expression; an `update @set { … }` bumps the element's counter).
    public var counter: Bool
    public var comment: String?

    public init(name: String, key: [Expr], data: [Expr]? = nil, flags: SetFlags = [],
                timeoutSeconds: UInt32? = nil, size: UInt32? = nil, counter: Bool = false, comment: String? = nil) {
        self.counter = counter
        self.name = name
        self.key = key
        self.data = data
        self.flags = flags
        self.timeoutSeconds = timeoutSeconds
        self.size = size
        self.comment = comment
    }

    public var isMap: Bool { data != nil }
}

/// One element: `key` for a set, `key : data` for a map. Each field is one component of the
/// concatenation declared by the set.
public struct Element: Sendable, Hashable, Codable, Comparable {
    public var key: [Datum]
    public var data: [Datum]?

    public init(_ key: [Datum], _ data: [Datum]? = nil) {
        self.key = key
        self.data = data
    }

    public static func < (a: Element, b: Element) -> Bool {
        if a.key != b.key { return a.key.lexicographicallyPrecedes(b.key) }
        return (a.data ?? []).lexicographicallyPrecedes(b.data ?? [])
    }
}

/// The elements of one set or map: key to data (empty data for plain sets).
public typealias ElementMap = [[Datum]: [Datum]]

extension Dictionary where Key == [Datum], Value == [Datum] {
    /// Elements in canonical (sorted) order; `isMap` decides whether data is kept.
    public func sortedElements(isMap: Bool) -> [SluiceIR.Element] {
        map { SluiceIR.Element($0.key, isMap ? $0.value : nil) }.sorted()
    }
}

/// The `counter` of one set element: packets and bytes counted since the element was added.
public struct ElementCounter: Sendable, Hashable {
    public var packets: UInt64
    public var bytes: UInt64
    public init(packets: UInt64, bytes: UInt64) {
        self.packets = packets
        self.bytes = bytes
    }
}
