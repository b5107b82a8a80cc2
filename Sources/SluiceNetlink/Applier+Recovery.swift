import SluiceIR

/// What an `NftablesApplier` does after a failed commit, so that it never trusts a
/// `committed` state the kernel may not hold.
///
/// The kernel applies a batch whole or not at all. What the applier cannot know after some
/// failures is *which*:
/// - `sendmsg` failed (ENOBUFS, EAGAIN …) or the kernel refused the batch: nothing went in
///   and `committed` is still right.
/// - the verdict was lost (`NetlinkError.isOutcomeUnknown`: ENOBUFS or EAGAIN on receive,
///   the socket closed after the send), the generation changed under the batch (someone
///   else wrote), or an earlier chunk of the same operation went in: `committed` is
///   uncertain, and the tables are read back (`adopt`) at once, before the error is
///   rethrown.
/// - the socket was closed (`NetlinkError.isSocketClosed`): a new one is opened in the same
///   namespace first. An owned, persistent table outlives its owner's socket as an orphan,
///   and the read-back claims it for the new socket.
///
/// If the read-back fails too, the tables stay uncertain and the next commit reads them
/// back first (`prepareToCommit`).
extension NftablesApplier {
    /// Whether `committed` may differ from the kernel: a failed commit left the outcome
    /// unknown and the tables could not be read back yet. The next commit (or `adopt`)
    /// reads them back first.
    public var committedIsUncertain: Bool { !uncertainTables.isEmpty }

    /// After a failed commit of `tables`: reopens a closed socket and reads the tables back
    /// when the kernel may hold something other than `committed` (`partial`: an earlier
    /// batch of the same operation went in).
    func recover(after error: Error, tables: [(Family, String)], partial: Bool) {
        let e = error as? NetlinkError
        let closed = socket.isClosed || e?.isSocketClosed == true
        guard partial || closed || e?.isOutcomeUnknown == true || e?.isGenerationChanged == true else { return }
        uncertainTables.formUnion((tables + committedTables).map { TableKey(family: $0.0, name: $0.1) })
        if closed {
            guard (try? reopenSocket()) != nil else { return }
        }
        _ = try? readBackUncertain()
    }

    /// Before a commit: a closed socket is replaced and uncertain tables are read back.
    func prepareToCommit() throws {
        if socket.isClosed { try reopenSocket() }
        if committedIsUncertain { try readBackUncertain() }
    }

    /// Replaces the socket with a new one in the same namespace. The generation is read
    /// again by the next commit (or `adopt`).
    func reopenSocket() throws {
        socket = try socket.reopened()
        expectedGeneration = nil
    }

    /// Reads the uncertain tables and the committed ones back (`adopt`).
    private func readBackUncertain() throws {
        let tables = uncertainTables.map { ($0.family, $0.name) } + committedTables
        try adopt(tables: tables)
    }

    private var committedTables: [(Family, String)] { committed.tables.map { ($0.family, $0.name) } }
}

extension Transaction {
    /// The tables the operations name, in first-seen order.
    var tables: [(Family, String)] {
        var seen = Set<TableKey>()
        var out: [(Family, String)] = []
        for op in operations {
            let key = op.tableKey
            if seen.insert(key).inserted { out.append((key.family, key.name)) }
        }
        return out
    }
}

extension SluiceIR.Operation {
    /// The table this operation belongs to.
    var tableKey: TableKey {
        switch self {
        case .addTable(let f, let t, _), .deleteTable(let f, let t): return TableKey(family: f, name: t)
        case .addChain(let f, let t, _), .flushChain(let f, let t, _), .deleteChain(let f, let t, _): return TableKey(family: f, name: t)
        case .addRule(let f, let t, _, _): return TableKey(family: f, name: t)
        case .addSet(let f, let t, _), .deleteSet(let f, let t, _): return TableKey(family: f, name: t)
        case .addElements(let f, let t, _, _), .deleteElements(let f, let t, _, _): return TableKey(family: f, name: t)
        }
    }
}
