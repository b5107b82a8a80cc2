/// `diff(old, new)`: the minimal transaction that turns the kernel state `old` into `new`.
///
/// Routine changes (elements only) produce element operations only. A chain whose rules
/// changed is flushed and refilled. A change to a table's skeleton that the kernel cannot
/// apply in place (a set's type or flags, a base chain's hook or priority) replaces the
/// whole table inside the same atomic transaction, so packets never see a half state.
public func diff(_ old: Ruleset, _ new: Ruleset) -> Transaction {
    var ops: [Operation] = []
    for table in new.tables {
        if let before = old.table(table.family, table.name) {
            ops += diff(before, table)
        } else {
            ops += create(table)
        }
    }
    for table in old.tables where new.table(table.family, table.name) == nil {
        ops.append(.deleteTable(table.family, table.name))
    }
    return Transaction(ops)
}

/// The operations that create `table` from nothing: table, sets, chains, elements, rules.
public func create(_ table: Table) -> [Operation] {
    let f = table.family, t = table.name
    var ops: [Operation] = [.addTable(f, t, comment: table.comment)]
    ops += table.sets.map { .addSet(f, t, $0) }
    ops += table.chains.map { .addChain(f, t, $0.declaration) }
    for set in table.sets {
        if let elems = table.elements[set.name], !elems.isEmpty {
            ops.append(.addElements(f, t, set: set, elems.sortedElements(isMap: set.isMap)))
        }
    }
    for chain in table.chains {
        ops += chain.rules.map { .addRule(f, t, chain: chain.name, $0) }
    }
    return ops
}

/// True if `new` can be reached from `old` without recreating the table.
public func skeletonCompatible(_ old: Table, _ new: Table) -> Bool {
    guard old.comment == new.comment else { return false }
    for set in new.sets {
        if let o = old.set(named: set.name), o != set { return false }
    }
    for chain in new.chains {
        if let o = old.chain(named: chain.name), o.base != chain.base || o.comment != chain.comment { return false }
    }
    return true
}

/// The element operations that turn `old` into `new` for one set.
public func diffElements(_ old: ElementMap, _ new: ElementMap, isMap: Bool) -> (delete: [Element], add: [Element]) {
    var deletes: [Element] = []
    var adds: [Element] = []
    for (key, data) in old {
        if let n = new[key] {
            if isMap && n != data { deletes.append(Element(key, data)); adds.append(Element(key, n)) }
        } else {
            deletes.append(Element(key, isMap ? data : nil))
        }
    }
    for (key, data) in new where old[key] == nil {
        adds.append(Element(key, isMap ? data : nil))
    }
    return (deletes.sorted(), adds.sorted())
}

private func diff(_ old: Table, _ new: Table) -> [Operation] {
    let f = new.family, t = new.name
    guard skeletonCompatible(old, new) else {
        return [.deleteTable(f, t)] + create(new)
    }
    var ops: [Operation] = []
    // 1. New sets and chains.
    let oldSets = Set(old.sets.map(\.name))
    let oldChains = Set(old.chains.map(\.name))
    for set in new.sets where !oldSets.contains(set.name) { ops.append(.addSet(f, t, set)) }
    for chain in new.chains where !oldChains.contains(chain.name) { ops.append(.addChain(f, t, chain.declaration)) }
    // 2. Element deletes, 4. element adds (collected now, emitted in order below).
    var deletes: [Operation] = []
    var adds: [Operation] = []
    for set in new.sets {
        let before = oldSets.contains(set.name) ? (old.elements[set.name] ?? [:]) : [:]
        let after = new.elements[set.name] ?? [:]
        if before.isEmpty && after.isEmpty { continue }
        let (d, a) = diffElements(before, after, isMap: set.isMap)
        if !d.isEmpty { deletes.append(.deleteElements(f, t, set: set, d)) }
        if !a.isEmpty { adds.append(.addElements(f, t, set: set, a)) }
    }
    ops += deletes
    // 3. Rewritten chains.
    for chain in new.chains {
        if let o = old.chain(named: chain.name) {
            if o.rules != chain.rules {
                if !o.rules.isEmpty { ops.append(.flushChain(f, t, chain.name)) }
                ops += chain.rules.map { .addRule(f, t, chain: chain.name, $0) }
            }
        } else {
            ops += chain.rules.map { .addRule(f, t, chain: chain.name, $0) }
        }
    }
    ops += adds
    // 5. Removed chains and sets, after every rule that referred to them is gone.
    let newChains = Set(new.chains.map(\.name))
    let newSets = Set(new.sets.map(\.name))
    let removedChains = old.chains.filter { !newChains.contains($0.name) }
    for chain in removedChains where !chain.rules.isEmpty { ops.append(.flushChain(f, t, chain.name)) }
    for chain in removedChains { ops.append(.deleteChain(f, t, chain.name)) }
    for set in old.sets where !newSets.contains(set.name) { ops.append(.deleteSet(f, t, set)) }
    return ops
}
