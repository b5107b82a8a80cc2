import SluiceIR

extension NftablesApplier {
    /// Reconciles the kernel's table `<skeleton.family> <skeleton.name>` with `skeleton`
    /// (sets, chains, rules and its own elements) plus `elements`, in memory bounded by the
    /// largest set rather than the table: the structure is read without elements and
    /// diffed, then each set is read back on its own and compared with the desired
    /// elements streamed chunk by chunk. Only the difference is committed, in batches that
    /// keep every intermediate state valid (`chunked`). Restart adoption, drift repair and
    /// context changes take this path when the elements live in the incremental compiler.
    ///
    /// With no such table in the kernel this is `create`. If the structure is incompatible
    /// (a set's type changed, so the table must be replaced) the table is materialized and
    /// applied as a whole, in one transaction with the replacement.
    @discardableResult
    public func reconcile(_ skeleton: Table, elements: some ElementSource) throws -> ApplyReport {
        let f = skeleton.family, name = skeleton.name
        try prepareToCommit()
        // What is read below is the state at this generation; a write after it makes the
        // commit fail (generation mismatch) instead of clobbering it.
        expectedGeneration = try socket.currentGeneration()
        guard var current = try socket.readTable(f, name, dynamicElements: false, elements: false)?.table else {
            committed = Ruleset(tables: committed.tables.filter { $0.family != f || $0.name != name })
            return try create(skeleton, elements: elements)
        }
        current.sets = current.sets.map { normalize($0, against: skeleton.set(named: $0.name)) }
        let structure = diff(Ruleset(tables: [current]), Ruleset(tables: [skeleton.withoutElements]))
        if structure.operations.contains(where: { if case .deleteTable = $0 { return true }; return false }) {
            return try apply(committed.replacing(Self.materialize(skeleton, elements, chunk: maxElementsPerBatch)))
        }
        var ops = structure.operations
        for decl in skeleton.sets where !decl.flags.contains(.dynamic) {
            let have = current.set(named: decl.name) == nil ? [:] : try socket.readElements(f, name, set: decl)
            ops += elementDelta(decl, have: have, skeleton: skeleton, elements: elements)
        }
        let tx = Transaction(ops)
        let desired = Ruleset(tables: [skeleton.withoutElements])
        let batches = try commitChunked(tx, known: [Ruleset(tables: [current]), desired], desired: desired, tables: [(f, name)])
        committed = committed.replacing(tracksElements ? Self.materialize(skeleton, elements, chunk: maxElementsPerBatch)
                                                        : skeleton.withoutElements)
        let r = ApplyReport(transaction: tx.objectCount <= maxElementsPerBatch ? tx : Transaction(structure.operations), batches: batches)
        lastReport = r
        return r
    }

    /// The element deletes and adds that take one set from `have` to the skeleton's own
    /// elements plus the streamed ones.
    private func elementDelta(_ decl: SetDecl, have: ElementMap, skeleton: Table, elements: some ElementSource) -> [SluiceIR.Operation] {
        var stale = have
        var adds: [Element] = [], deletes: [Element] = []
        let isMap = decl.data != nil
        func visit(_ key: [Datum], _ data: [Datum]) {
            if let old = stale.removeValue(forKey: key) {
                if old == data { return }
                deletes.append(Element(key, isMap ? old : nil))
            }
            adds.append(Element(key, isMap ? data : nil))
        }
        for (k, v) in skeleton.elements[decl.name] ?? [:] { visit(k, v) }
        elements.forEachChunk(of: decl.name, maxCount: maxElementsPerBatch) { chunk in
            for e in chunk { visit(e.key, e.data ?? []) }
        }
        for (k, v) in stale { deletes.append(Element(k, isMap ? v : nil)) }
        let f = skeleton.family, t = skeleton.name
        var ops: [SluiceIR.Operation] = []
        if !deletes.isEmpty { ops.append(.deleteElements(f, t, set: decl, deletes.sorted())) }
        if !adds.isEmpty { ops.append(.addElements(f, t, set: decl, adds.sorted())) }
        return ops
    }

    /// Commits a transaction, split as `chunked` does when it is large; re-reads `tables`
    /// if a later chunk fails after an earlier one went in, or if a chunk's outcome is
    /// unknown (the in-memory state no longer matches; `recover`).
    func commitChunked(_ tx: Transaction, known: [Ruleset], desired: Ruleset, tables: [(Family, String)]) throws -> [BatchStats] {
        if tx.isEmpty { return [] }
        let chunks = tx.objectCount > maxElementsPerBatch ? chunked(tx, desired: desired) : [tx.operations]
        var batches: [BatchStats] = []
        do {
            for ops in chunks where !ops.isEmpty {
                let stats = try socket.commit(ops, known: known, generation: expectedGeneration, tableFlags: ownership.flags)
                if stats.messages > 0 { expectedGeneration = expectedGeneration.map { $0 &+ 1 } }
                batches.append(stats)
            }
        } catch {
            recover(after: error, tables: tables, partial: !batches.isEmpty)
            throw error
        }
        return batches
    }

    /// The whole table: the skeleton with the streamed elements merged in.
    static func materialize(_ skeleton: Table, _ elements: some ElementSource, chunk: Int) -> Table {
        var full = skeleton
        for name in elements.setNames {
            var m = full.elements[name] ?? [:]
            elements.forEachChunk(of: name, maxCount: chunk) { for e in $0 { m[e.key] = e.data ?? [] } }
            full.elements[name] = m
        }
        return full
    }
}

extension Ruleset {
    /// This ruleset with `table` in place of the table of the same family and name (added
    /// if there is none).
    func replacing(_ table: Table) -> Ruleset {
        Ruleset(tables: tables.filter { $0.family != table.family || $0.name != table.name } + [table])
    }
}
