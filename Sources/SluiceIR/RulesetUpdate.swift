/// Applying a transaction to an in-memory ruleset, in place and in O(transaction) time.
///
/// This is the bookkeeping an applier does after the kernel acknowledged a batch. Unlike
/// `applying(_:)` (the validating fake kernel) it assumes the transaction is valid.
extension Ruleset {
    public mutating func apply(_ transaction: Transaction) {
        for op in transaction.operations { apply(op) }
    }

    private func index(_ f: Family, _ t: String) -> Int? {
        tables.firstIndex { $0.family == f && $0.name == t }
    }

    public mutating func apply(_ op: Operation) {
        switch op {
        case .addTable(let f, let t, let comment):
            if index(f, t) == nil {
                tables.append(Table(family: f, name: t, comment: comment))
                tables.sort { ($0.family, $0.name) < ($1.family, $1.name) }
            }
        case .deleteTable(let f, let t):
            tables.removeAll { $0.family == f && $0.name == t }
        case .addChain(let f, let t, let chain):
            guard let i = index(f, t), tables[i].chain(named: chain.name) == nil else { return }
            tables[i].chains.append(chain.declaration)
        case .flushChain(let f, let t, let c):
            guard let i = index(f, t), let j = tables[i].chains.firstIndex(where: { $0.name == c }) else { return }
            tables[i].chains[j].rules.removeAll()
        case .deleteChain(let f, let t, let c):
            guard let i = index(f, t) else { return }
            tables[i].chains.removeAll { $0.name == c }
        case .addRule(let f, let t, let chain, let rule):
            guard let i = index(f, t), let j = tables[i].chains.firstIndex(where: { $0.name == chain }) else { return }
            tables[i].chains[j].rules.append(rule)
        case .addSet(let f, let t, let set):
            guard let i = index(f, t), tables[i].set(named: set.name) == nil else { return }
            tables[i].sets.append(set)
        case .deleteSet(let f, let t, let set):
            guard let i = index(f, t) else { return }
            tables[i].sets.removeAll { $0.name == set.name }
            tables[i].elements[set.name] = nil
        case .addElements(let f, let t, let set, let elems):
            guard let i = index(f, t) else { return }
            for e in elems { tables[i].elements[set.name, default: [:]][e.key] = e.data ?? [] }
        case .deleteElements(let f, let t, let set, let elems):
            guard let i = index(f, t) else { return }
            for e in elems { tables[i].elements[set.name]?[e.key] = nil }
            if tables[i].elements[set.name]?.isEmpty == true { tables[i].elements[set.name] = nil }
        }
    }
}
