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

    /// Key first, then data (none sorts as empty); one pass over each.
    public static func < (a: Element, b: Element) -> Bool {
        let byKey = compare(a.key, b.key)
        if byKey != 0 { return byKey < 0 }
        return compare(a.data ?? [], b.data ?? []) < 0
    }

    /// Lexicographic three-way comparison: -1, 0 or 1.
    @inline(__always)
    static func compare(_ x: [Datum], _ y: [Datum]) -> Int {
        x.withUnsafeBufferPointer { xs in
            y.withUnsafeBufferPointer { ys in
                for i in 0..<min(xs.count, ys.count) where xs[i] != ys[i] { return xs[i] < ys[i] ? -1 : 1 }
                return xs.count == ys.count ? 0 : (xs.count < ys.count ? -1 : 1)
            }
        }
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

    public static let zero = ElementCounter(packets: 0, bytes: 0)

    /// Sums counters (of one key over several sets or families).
    public static func += (a: inout ElementCounter, b: ElementCounter) {
        a.packets += b.packets
        a.bytes += b.bytes
    }
}

extension Element {
    /// Up to six datums (key, then data) of at most 40 bits each as words that compare as
    /// the datums do: (rank + 1) << 56 | payload; unused words are 0, so a shorter list sorts
    /// first. Nil for IPv6 datums or longer lists.
    private struct SortKey: Comparable {
        var w: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)

        init?(_ e: Element) {
            var n = 0
            func put(_ d: Datum) -> Bool {
                let word: UInt64
                switch d {
                case .ipv4(let v): word = 1 << 56 | UInt64(v)
                case .prefix4(let v, let l): word = 3 << 56 | UInt64(v) << 8 | UInt64(l)
                case .proto(let v): word = 5 << 56 | UInt64(v)
                case .port(let v): word = 6 << 56 | UInt64(v)
                case .integer(let v): word = 7 << 56 | UInt64(v)
                case .ipv6, .prefix6: return false
                }
                switch n {
                case 0: w.0 = word
                case 1: w.1 = word
                case 2: w.2 = word
                case 3: w.3 = word
                case 4: w.4 = word
                case 5: w.5 = word
                default: return false
                }
                n += 1
                return true
            }
            for d in e.key where !put(d) { return nil }
            // Keys of one set have one length, so key and data may run together.
            for d in e.data ?? [] where !put(d) { return nil }
        }

        static func < (a: SortKey, b: SortKey) -> Bool {
            if a.w.0 != b.w.0 { return a.w.0 < b.w.0 }
            if a.w.1 != b.w.1 { return a.w.1 < b.w.1 }
            if a.w.2 != b.w.2 { return a.w.2 < b.w.2 }
            if a.w.3 != b.w.3 { return a.w.3 < b.w.3 }
            if a.w.4 != b.w.4 { return a.w.4 < b.w.4 }
            return a.w.5 < b.w.5
        }

        static func == (a: SortKey, b: SortKey) -> Bool {
            a.w.0 == b.w.0 && a.w.1 == b.w.1 && a.w.2 == b.w.2 && a.w.3 == b.w.3 && a.w.4 == b.w.4 && a.w.5 == b.w.5
        }
    }

    /// Sorts elements of one set (keys of one length) into `<` order. Elements that pack
    /// into words (IPv4 layouts) are sorted by those words, without touching their arrays.
    public static func sort(_ elements: inout [Element]) {
        guard elements.count > 1 else { return }
        var keyed: [(SortKey, Int32)] = []
        keyed.reserveCapacity(elements.count)
        for (i, e) in elements.enumerated() {
            guard let k = SortKey(e) else {
                elements.sort()
                return
            }
            keyed.append((k, Int32(i)))
        }
        keyed.sort { $0.0 < $1.0 }
        elements = keyed.map { elements[Int($0.1)] }
    }

    /// Sorts both lists of one set and removes from both the elements they share (a key
    /// deleted and added again with the same data is no change).
    public static func sortCancelling(_ deletes: inout [Element], _ adds: inout [Element]) {
        sort(&deletes)
        sort(&adds)
        guard !deletes.isEmpty, !adds.isEmpty else { return }
        var d: [Element] = [], a: [Element] = []
        d.reserveCapacity(deletes.count)
        a.reserveCapacity(adds.count)
        var i = 0, j = 0
        while i < deletes.count && j < adds.count {
            if deletes[i] == adds[j] {
                i += 1
                j += 1
            } else if deletes[i] < adds[j] {
                d.append(deletes[i])
                i += 1
            } else {
                a.append(adds[j])
                j += 1
            }
        }
        d += deletes[i...]
        a += adds[j...]
        deletes = d
        adds = a
    }
}
