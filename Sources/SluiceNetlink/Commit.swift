import CNftnl
import Glibc
import SluiceIR

/// Identifies a table: `<family> <name>`.
struct TableKey: Hashable {
    var family: Family
    var name: String
}

/// Lowers IR operations into batch messages (`NFT_MSG_*` + libnftnl payloads).
struct TransactionLowering {
    /// Set declarations per table, for rule lowering (`map` lookup data types) and typeof.
    var types: [TableKey: TypeContext]
    var nextSetID: UInt32 = 1
    /// `NFTA_TABLE_FLAGS` of the tables this transaction adds (`TableOwnership`).
    var tableFlags: UInt32 = 0

    /// Collects the set declarations visible to a transaction: those of `known` tables and
    /// those the transaction adds.
    init(_ operations: [SluiceIR.Operation], known: [Ruleset]) {
        var sets: [TableKey: [SetDecl]] = [:]
        for rs in known {
            for t in rs.tables { sets[TableKey(family: t.family, name: t.name), default: []] += t.sets }
        }
        for op in operations {
            if case .addSet(let f, let t, let s) = op { sets[TableKey(family: f, name: t), default: []].insert(s, at: 0) }
        }
        types = sets.mapValues { TypeContext($0) }
    }

    mutating func lower(_ op: SluiceIR.Operation, index: Int, into batch: Batch) throws {
        switch op {
        case .addTable(let f, let t, let comment):
            let o = try Lower.table(t, comment: comment, flags: tableFlags)
            try batch.add(MsgType.newTable, family: f, flags: NLM_F_CREATE, operation: index) { nftnl_table_nlmsg_build_payload($0, o.raw) }
        case .deleteTable(let f, let t):
            let o = try Lower.table(t)
            try batch.add(MsgType.delTable, family: f, flags: 0, operation: index) { nftnl_table_nlmsg_build_payload($0, o.raw) }
        case .addChain(let f, let t, let c):
            let o = try Lower.chain(table: t, c)
            try batch.add(MsgType.newChain, family: f, flags: NLM_F_CREATE, operation: index) { nftnl_chain_nlmsg_build_payload($0, o.raw) }
        case .flushChain(let f, let t, let c):
            let o = try Lower.rule(family: f, table: t, chain: c, nil, types: TypeContext([]))
            try batch.add(MsgType.delRule, family: f, flags: 0, operation: index) { nftnl_rule_nlmsg_build_payload($0, o.raw) }
        case .deleteChain(let f, let t, let c):
            let o = try Lower.chain(table: t, name: c)
            try batch.add(MsgType.delChain, family: f, flags: 0, operation: index) { nftnl_chain_nlmsg_build_payload($0, o.raw) }
        case .addRule(let f, let t, let c, let r):
            let o = try Lower.rule(family: f, table: t, chain: c, r, types: context(f, t))
            try batch.add(MsgType.newRule, family: f, flags: NLM_F_CREATE | NLM_F_APPEND, operation: index) { nftnl_rule_nlmsg_build_payload($0, o.raw) }
        case .addSet(let f, let t, let s):
            let o = try Lower.set(table: t, s, id: nextSetID, types: context(f, t))
            nextSetID += 1
            try batch.add(MsgType.newSet, family: f, flags: NLM_F_CREATE, operation: index) { nftnl_set_nlmsg_build_payload($0, o.raw) }
        case .deleteSet(let f, let t, let s):
            let o = try Lower.setReference(table: t, name: s.name)
            try batch.add(MsgType.delSet, family: f, flags: 0, operation: index) { nftnl_set_nlmsg_build_payload($0, o.raw) }
        case .addElements(let f, let t, let s, let elems):
            try elements(MsgType.newSetElem, f, t, s, elems, index, batch)
        case .deleteElements(let f, let t, let s, let elems):
            try elements(MsgType.delSetElem, f, t, s, elems, index, batch)
        }
    }

    private func context(_ f: Family, _ t: String) -> TypeContext {
        types[TableKey(family: f, name: t)] ?? TypeContext([])
    }

    private func elements(_ type: UInt16, _ f: Family, _ t: String, _ s: SetDecl, _ elems: [Element],
                          _ index: Int, _ batch: Batch) throws {
        guard !elems.isEmpty else { return }
        var ctx = context(f, t)
        if ctx.sets[s.name] == nil { ctx.sets[s.name] = s }
        let encoder = try ElementEncoder(s, types: ctx)
        if encoder.isInterval {
            let encoded = try encoder.encode(elems)
            try batch.addElements(type, family: f, table: t, set: s.name, count: encoded.count, operation: index) { i, h in
                Batch.put(encoded[i], into: h)
            }
        } else {
            let flat = try encoder.encodeFlat(elems)
            try flat.bytes.withUnsafeBytes { raw in
                try batch.addElements(type, family: f, table: t, set: s.name, count: flat.count, operation: index) { i, h in
                    let k = raw.baseAddress! + i * flat.stride
                    Batch.put(key: k, flat.keyLength, data: flat.dataLength.map { (k + flat.keyLength, $0) }, into: h)
                }
            }
        }
    }
}

extension NetlinkSocket {
    /// Commits `operations` as ONE nf_tables batch and waits for the kernel's verdict.
    ///
    /// - Parameters:
    ///   - known: rulesets whose set declarations rules may refer to (e.g. the committed state).
    ///   - generation: if given, the kernel rejects the batch (ERESTART, reported as
    ///     `.generationMismatch`) unless the ruleset generation still equals it.
    ///   - tableFlags: `NFTA_TABLE_FLAGS` of every `addTable` (for an existing table, the
    ///     kernel updates its flags: how an owner claims an orphaned table).
    /// - Returns: counters; nothing is sent (all zero) when no operation yields a message.
    /// - Throws: `NetlinkError` of kind `.kernel` naming the IR operation the kernel rejected;
    ///   the whole batch is rolled back by the kernel in that case. `.system` when `sendmsg`
    ///   failed (nothing reached the kernel). `.outcomeUnknown` when the batch was sent but
    ///   its verdict was lost (receive failed, socket closed): the kernel applied all of it
    ///   or none of it, and only reading the tables back tells which.
    public func commit(_ operations: [SluiceIR.Operation], known: [Ruleset] = [], generation: UInt32? = nil,
                       tableFlags: UInt32 = 0) throws -> BatchStats {
        let start = monotonicSeconds()
        let batch = try Batch(socket: self, generation: generation)
        var lowering = TransactionLowering(operations, known: known)
        lowering.tableFlags = tableFlags
        for (i, op) in operations.enumerated() {
            try lowering.lower(op, index: i, into: batch)
        }
        if batch.isEmpty { return BatchStats() }
        var iov = try batch.finish()
        var stats = batch.stats
        try ensureSendBuffer(stats.bytes)
        let sent = monotonicSeconds()
        stats.buildSeconds = sent - start
        // A failed sendmsg delivered nothing; once it succeeded, the kernel has the batch and
        // has applied it whole or not at all: a lost verdict leaves the outcome unknown.
        try send(&iov)
        let failure: NetlinkReply?
        do {
            failure = try collectReplies(batch)
        } catch let e as NetlinkError {
            throw e.verdictLost()
        }
        stats.kernelSeconds = monotonicSeconds() - sent
        if let failure { throw error(for: failure, batch: batch, operations: operations) }
        return stats
    }

    /// Reads replies until the one for the last message (or an error for BATCH_BEGIN),
    /// then drains whatever else is queued. Returns the first error, if any. Replies to
    /// other requests (late ones, after a lost verdict) are ignored.
    private func collectReplies(_ batch: Batch) throws -> NetlinkReply? {
        var failure: NetlinkReply?
        var done = false
        let lastSeq = batch.lastSeq, beginSeq = batch.beginSeq
        func handle(_ h: UnsafePointer<nlmsghdr>) {
            guard h.pointee.nlmsg_type == UInt16(NLMSG_ERROR), batch.contains(h.pointee.nlmsg_seq) else { return }
            let r = NetlinkReply(h)
            if r.error != 0 && failure == nil { failure = r }
            if r.seq == lastSeq || (r.seq == beginSeq && r.error != 0) { done = true }
        }
        while !done { try receive(handle) }
        while try receive(dontWait: true, handle) {}
        return failure
    }

    private func error(for r: NetlinkReply, batch: Batch, operations: [SluiceIR.Operation]) -> NetlinkError {
        if r.seq == batch.beginSeq {
            let kind: NetlinkError.Kind = r.error == ERESTART ? .generationMismatch : .kernel
            return NetlinkError(kind: kind, errno: r.error, operation: "NFNL_MSG_BATCH_BEGIN", kernelMessage: r.message)
        }
        let origin = batch.origins[r.seq]
        return NetlinkError(kind: .kernel, errno: r.error,
                            operation: origin.map { MsgType.name($0.type) } ?? "message seq \(r.seq) (not from the transaction)",
                            irOperation: origin.map { operations[$0.operation] },
                            kernelMessage: r.message)
    }

    /// The ruleset generation id (NFT_MSG_GETGEN → NFTA_GEN_ID). Every commit by anyone in
    /// this namespace increments it.
    public func currentGeneration() throws -> UInt32 {
        var buf = [UInt8](repeating: 0, count: 256)
        let seq = seq()
        let len = buf.withUnsafeMutableBytes { b -> Int in
            let h = nftnl_nlmsg_build_hdr(b.baseAddress!.assumingMemoryBound(to: CChar.self), MsgType.getGen, 0, 0, seq)!
            return Int(h.pointee.nlmsg_len)
        }
        try send(Array(buf[..<len]))
        var generation: UInt32?
        var failure: NetlinkReply?
        while generation == nil && failure == nil {
            try receive { h in
                guard h.pointee.nlmsg_seq == seq else { return }
                if h.pointee.nlmsg_type == UInt16(NLMSG_ERROR) {
                    let r = NetlinkReply(h)
                    if r.error != 0 { failure = r }
                    return
                }
                if let g = nftnl_gen_alloc() {
                    defer { nftnl_gen_free(g) }
                    if nftnl_gen_nlmsg_parse(h, g) >= 0 { generation = nftnl_gen_get_u32(g, UInt16(NFTNL_GEN_ID)) }
                }
            }
        }
        if let failure {
            throw NetlinkError(kind: .kernel, errno: failure.error, operation: "NFT_MSG_GETGEN", kernelMessage: failure.message)
        }
        return generation!
    }

    /// Runs a dump request (`NLM_F_DUMP`) and calls `each` for every reply message.
    func dump(_ type: UInt16, family: Family, build: (UnsafeMutablePointer<nlmsghdr>) -> Void,
              each: (UnsafePointer<nlmsghdr>) throws -> Void) throws {
        var buf = [UInt8](repeating: 0, count: 4096)
        let seq = seq()
        let len = buf.withUnsafeMutableBytes { b -> Int in
            let h = nftnl_nlmsg_build_hdr(b.baseAddress!.assumingMemoryBound(to: CChar.self), type, family.nfproto,
                                          UInt16(NLM_F_DUMP), seq)!
            build(h)
            return Int(h.pointee.nlmsg_len)
        }
        try dump(request: Array(buf[..<len]), seq: seq, operation: "dump \(type)", each: each)
    }

    /// The one dump loop (nf_tables and ctnetlink): sends `request` (built with sequence
    /// number `seq` and `NLM_F_DUMP`), passes every reply of that sequence to `each` until
    /// NLMSG_DONE, and turns an NLMSG_ERROR into a `NetlinkError` naming `operation`.
    func dump(request: [UInt8], seq: UInt32, operation: String, each: (UnsafePointer<nlmsghdr>) throws -> Void) throws {
        try send(request)
        var done = false
        var failure: NetlinkReply?
        while !done {
            try receive { h in
                guard h.pointee.nlmsg_seq == seq else { return }
                switch Int32(h.pointee.nlmsg_type) {
                case NLMSG_DONE: done = true
                case NLMSG_ERROR:
                    let r = NetlinkReply(h)
                    if r.error != 0 { failure = r }
                    done = true
                default: try each(h)
                }
            }
        }
        if let failure {
            throw NetlinkError(kind: .kernel, errno: failure.error, operation: operation, kernelMessage: failure.message)
        }
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
