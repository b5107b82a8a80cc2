/// The elements of a table's sets, produced on demand set by set and in chunks, so that a
/// very large table can be programmed without first materializing every element as an
/// `ElementMap` (a cold start of 100k services holds ~2 M elements).
///
/// `IncrementalCompiler.serviceElements` streams from the compiler's compact store;
/// `TableElements` adapts a `Table`'s own elements (tests, small tables).
public protocol ElementSource {
    /// Names of the sets and maps that have elements (in any order).
    var setNames: [String] { get }
    /// Number of elements of `set` (0 for a set without elements).
    func count(of set: String) -> Int
    /// Calls `body` with consecutive chunks of at most `maxCount` elements of `set`, in no
    /// particular order; together the chunks hold every element of the set exactly once.
    /// Map elements carry their data, set elements none.
    func forEachChunk(of set: String, maxCount: Int, _ body: ([Element]) throws -> Void) rethrows
}

/// A table's own elements as an `ElementSource`.
public struct TableElements: ElementSource {
    public let table: Table

    public init(_ table: Table) { self.table = table }

    public var setNames: [String] { table.elements.filter { !$0.value.isEmpty }.map(\.key).sorted() }

    public func count(of set: String) -> Int { table.elements[set]?.count ?? 0 }

    public func forEachChunk(of set: String, maxCount: Int, _ body: ([Element]) throws -> Void) rethrows {
        guard let elems = table.elements[set], !elems.isEmpty else { return }
        let isMap = table.set(named: set)?.isMap ?? false
        let all = elems.sortedElements(isMap: isMap)
        var i = 0
        while i < all.count {
            try body(Array(all[i..<min(i + max(1, maxCount), all.count)]))
            i += max(1, maxCount)
        }
    }
}

extension Table {
    /// The same table without any elements (sets, chains and rules only).
    public var withoutElements: Table {
        var t = self
        t.elements = [:]
        return t
    }
}

extension Ruleset {
    /// The same ruleset without any elements.
    public var withoutElements: Ruleset { Ruleset(tables: tables.map(\.withoutElements)) }
}
