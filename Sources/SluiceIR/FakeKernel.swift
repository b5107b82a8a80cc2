/// An in-memory stand-in for nf_tables that applies a `Transaction` to a `Ruleset` the way the
/// kernel would: atomically (all or nothing), rejecting references to missing tables,
/// chains and sets, duplicate creations of elements, and deletions of things that do not
/// exist. Used to check that generated transactions are valid and reach the intended state.
public struct FakeKernelError: Error, CustomStringConvertible, Equatable {
    /// Index of the failing operation in the transaction.
    public var index: Int
    public var message: String

    public var description: String { "operation \(index): \(message)" }
}

extension Ruleset {
    /// The ruleset after `transaction`, or the first error (the ruleset is then unchanged).
    public func applying(_ transaction: Transaction) throws(FakeKernelError) -> Ruleset {
        var tables: [String: Table] = [:]
        func key(_ f: Family, _ t: String) -> String { "\(f.rawValue) \(t)" }
        for t in self.tables { tables[key(t.family, t.name)] = t }
        for (i, op) in transaction.operations.enumerated() {
            func fail(_ m: String) -> FakeKernelError { FakeKernelError(index: i, message: m) }
            func withTable(_ f: Family, _ t: String, _ body: (inout Table) throws(FakeKernelError) -> Void) throws(FakeKernelError) {
                guard var table = tables[key(f, t)] else { throw fail("no table \(f.rawValue) \(t)") }
                try body(&table)
                tables[key(f, t)] = table
            }
            switch op {
            case .addTable(let f, let t, let comment):
                if tables[key(f, t)] == nil { tables[key(f, t)] = Table(family: f, name: t, comment: comment) }
            case .deleteTable(let f, let t):
                guard tables.removeValue(forKey: key(f, t)) != nil else { throw fail("delete of missing table \(t)") }
            case .addChain(let f, let t, let chain):
                try withTable(f, t) { table throws(FakeKernelError) in
                    if let existing = table.chain(named: chain.name) {
                        guard existing.base == chain.base else { throw fail("chain \(chain.name) exists with another hook") }
                    } else {
                        table.chains.append(chain.declaration)
                    }
                }
            case .flushChain(let f, let t, let c):
                try withTable(f, t) { table throws(FakeKernelError) in
                    guard let idx = table.chains.firstIndex(where: { $0.name == c }) else { throw fail("flush of missing chain \(c)") }
                    table.chains[idx].rules = []
                }
            case .deleteChain(let f, let t, let c):
                try withTable(f, t) { table throws(FakeKernelError) in
                    guard let idx = table.chains.firstIndex(where: { $0.name == c }) else { throw fail("delete of missing chain \(c)") }
                    guard table.chains[idx].rules.isEmpty else { throw fail("delete of non-empty chain \(c)") }
                    let referenced = table.chains.contains { $0.rules.contains { $0.chainReferences.contains(c) } }
                    guard !referenced else { throw fail("delete of chain \(c) still jumped to") }
                    table.chains.remove(at: idx)
                }
            case .addRule(let f, let t, let chain, let rule):
                try withTable(f, t) { table throws(FakeKernelError) in
                    guard let idx = table.chains.firstIndex(where: { $0.name == chain }) else { throw fail("rule for missing chain \(chain)") }
                    for target in rule.chainReferences where table.chain(named: target) == nil {
                        throw fail("rule jumps to missing chain \(target)")
                    }
                    for set in rule.setReferences where table.set(named: set) == nil {
                        throw fail("rule refers to missing set \(set)")
                    }
                    table.chains[idx].rules.append(rule)
                }
            case .addSet(let f, let t, let set):
                try withTable(f, t) { table throws(FakeKernelError) in
                    if let existing = table.set(named: set.name) {
                        guard existing == set else { throw fail("set \(set.name) exists with another type") }
                    } else {
                        table.sets.append(set)
                    }
                }
            case .deleteSet(let f, let t, let set):
                try withTable(f, t) { table throws(FakeKernelError) in
                    guard let idx = table.sets.firstIndex(where: { $0.name == set.name }) else { throw fail("delete of missing set \(set.name)") }
                    let referenced = table.chains.contains { $0.rules.contains { $0.setReferences.contains(set.name) } }
                    guard !referenced else { throw fail("delete of set \(set.name) still in use") }
                    table.sets.remove(at: idx)
                    table.elements[set.name] = nil
                }
            case .addElements(let f, let t, let set, let elems):
                try withTable(f, t) { table throws(FakeKernelError) in
                    guard let decl = table.set(named: set.name) else { throw fail("elements for missing set \(set.name)") }
                    var current = table.elements[set.name] ?? [:]
                    for e in elems {
                        guard e.key.count == decl.key.count else { throw fail("element of wrong arity in \(set.name)") }
                        if let existing = current[e.key], existing != (e.data ?? []) {
                            throw fail("element \(e.text) exists in \(set.name) with other data")
                        }
                        current[e.key] = e.data ?? []
                    }
                    table.elements[set.name] = current
                }
            case .deleteElements(let f, let t, let set, let elems):
                try withTable(f, t) { table throws(FakeKernelError) in
                    guard table.set(named: set.name) != nil else { throw fail("elements for missing set \(set.name)") }
                    var current = table.elements[set.name] ?? [:]
                    for e in elems {
                        guard current.removeValue(forKey: e.key) != nil else { throw fail("delete of missing element \(e.text) in \(set.name)") }
                    }
                    table.elements[set.name] = current.isEmpty ? nil : current
                }
            }
        }
        return Ruleset(tables: Array(tables.values))
    }
}

extension Table {
    /// The same table in a canonical form for comparisons: sets and chains sorted by name
    /// (their order has no meaning to the kernel), empty element maps dropped.
    public var normalized: Table {
        var t = self
        t.elements = t.elements.filter { !$0.value.isEmpty }
        t.sets.sort { $0.name < $1.name }
        t.chains.sort { $0.name < $1.name }
        return t
    }
}

extension Ruleset {
    /// The same ruleset with empty element maps dropped, for comparisons.
    public var normalized: Ruleset { Ruleset(tables: tables.map(\.normalized)) }
}
