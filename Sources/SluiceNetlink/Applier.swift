import CNftnl
import Dispatch
import SluiceIR

/// Counters of one `apply`: one entry per batch sent (a chunked cold start sends several).
public struct ApplyReport: Sendable, Equatable {
    public var transaction: Transaction
    public var batches: [BatchStats]

    public var messages: Int { batches.reduce(0) { $0 + $1.messages } }
    public var elementMessages: Int { batches.reduce(0) { $0 + $1.elementMessages } }
    public var bytes: Int { batches.reduce(0) { $0 + $1.bytes } }
    /// Building the batches (lowering to netlink messages).
    public var buildSeconds: Double { batches.reduce(0) { $0 + $1.buildSeconds } }
    /// The kernel's time, `sendmsg` to the last reply, over every batch.
    public var kernelSeconds: Double { batches.reduce(0) { $0 + $1.kernelSeconds } }
    public var seconds: Double { buildSeconds + kernelSeconds }
    /// True if nothing was sent.
    public var isNoOp: Bool { batches.isEmpty }

    public init(transaction: Transaction, batches: [BatchStats]) {
        self.transaction = transaction
        self.batches = batches
    }

    /// Several reports as one (transactions concatenated).
    public static func merged(_ reports: [ApplyReport]) -> ApplyReport {
        ApplyReport(transaction: Transaction(reports.flatMap(\.transaction.operations)), batches: reports.flatMap(\.batches))
    }
}

/// Keeps Sluice's committed nftables state in memory and moves the kernel to a desired
/// `Ruleset` with `diff(committed, desired)` as one netlink batch per `apply`.
///
/// - Large transactions (more than `maxElementsPerBatch` elements) are sent in chunks:
///   skeleton first, then element chunks in `elementOrder`, then removals (see `apply`).
/// - The batch carries the last generation id this applier saw (NFNL_BATCH_GENID), so a
///   concurrent writer makes the kernel reject it; `apply` then re-reads its tables
///   (adoption) and retries once.
/// - A failed commit whose outcome is unknown (its verdict was lost), that closed the
///   socket, that met a changed generation or that left part of a chunked commit in makes
///   `committed` uncertain: the applier reopens its socket if needed and reads its tables
///   back at once, or, if that fails too, before its next commit (`Applier+Recovery`).
/// - Not thread-safe: call from one thread or actor.
public final class NftablesApplier {
    /// The socket every write goes through; replaced by a new one if it is closed.
    public internal(set) var socket: NetlinkSocket
    /// What this applier believes is in the kernel for its tables.
    public internal(set) var committed: Ruleset
    /// The generation id after our last commit or read (nil: unknown, no check).
    public internal(set) var expectedGeneration: UInt32?
    /// Elements per batch in a chunked cold start (kernel-costs.md: big batches are superlinear).
    public var maxElementsPerBatch: Int
    /// Set names in the order their elements must be added in a chunked apply. Sets not
    /// listed come after them, ordered by how rules use them (see `chunked`): maps that only
    /// supply data (`dnat … map @endpoints-N`, `… map @m` lookups) first, then sets used
    /// otherwise, and last the sets that rules test with `@set` lookups (the gates that mark
    /// or dispatch a service). For Sluice's layout this default already yields: all
    /// `endpoints-*`/`*-endpoints-*` slot elements before `clusterip-ports`, `nodeports`,
    /// `firewall-ips` … so no half-built service is ever reachable.
    public var elementOrder: [String]
    /// Report of the last `apply`.
    public internal(set) var lastReport: ApplyReport?
    /// Whether this applier's socket owns its tables (`takeOwnership`).
    public internal(set) var ownership = TableOwnership.none
    public var ownsTables: Bool { ownership.isOwner }
    /// Why ownership was given up after it was taken (an existing table could not be claimed).
    public internal(set) var ownershipLost: String?
    /// Whether `committed` keeps the elements of sets and maps. When false, `committed` holds
    /// only tables, sets, chains and rules: the caller (the incremental compiler, which owns
    /// an element store anyway) is the one copy of the elements, and `apply(_ desired:)`
    /// reads the current elements back from the kernel before diffing. Saves a second
    /// in-memory copy of every element (≈ 2 M at 100k services).
    public let tracksElements: Bool
    /// Tables whose kernel state may differ from `committed` (see `committedIsUncertain`).
    var uncertainTables = Set<TableKey>()

    public init(socket: NetlinkSocket, committed: Ruleset = Ruleset(), maxElementsPerBatch: Int = 50_000,
                elementOrder: [String] = [], tracksElements: Bool = true) {
        self.socket = socket
        self.tracksElements = tracksElements
        self.committed = tracksElements ? committed : committed.withoutElements
        self.maxElementsPerBatch = maxElementsPerBatch
        self.elementOrder = elementOrder
    }

    /// Opens a socket in `/run/netns/<name>` (or the current namespace) and an applier on it.
    public convenience init(namespace: String?, maxElementsPerBatch: Int = 50_000, elementOrder: [String] = [],
                            tracksElements: Bool = true) throws {
        let s = try NetlinkSocket(namespace: namespace)
        self.init(socket: s, maxElementsPerBatch: maxElementsPerBatch, elementOrder: elementOrder, tracksElements: tracksElements)
    }

    /// The kernel's current ruleset generation id.
    public func currentGeneration() throws -> UInt32 { try socket.currentGeneration() }

    /// Commits `diff(committed, desired)`. Sends nothing when the diff is empty.
    @discardableResult
    public func apply(_ desired: Ruleset) throws -> ApplyReport {
        do {
            return try applyOnce(desired)
        } catch let e as NetlinkError where e.kind == .generationMismatch {
            // Someone else wrote: re-read our tables and reconcile from what is really there.
            try adopt(tables: desired.tables.map { ($0.family, $0.name) } + committed.tables.map { ($0.family, $0.name) },
                      desired: desired)
            return try applyOnce(desired)
        }
    }

    private func applyOnce(_ desired: Ruleset) throws -> ApplyReport {
        try prepareToCommit()
        // Without tracked elements, diff against what the kernel really holds.
        let base = tracksElements ? committed
            : try readTables(committed.tables.map { ($0.family, $0.name) } + desired.tables.map { ($0.family, $0.name) },
                               desired: desired).ruleset
        let tx = diff(base, desired)
        if tx.isEmpty {
            let r = ApplyReport(transaction: tx, batches: [])
            lastReport = r
            return r
        }
        if expectedGeneration == nil { expectedGeneration = try socket.currentGeneration() }
        let batches = try commitChunked(tx, known: [base, desired], desired: desired,
                                        tables: desired.tables.map { ($0.family, $0.name) })
        committed = tracksElements ? desired : desired.withoutElements
        let r = ApplyReport(transaction: tx, batches: batches)
        lastReport = r
        return r
    }

    /// Commits a transaction computed elsewhere (the incremental compiler's O(change) path)
    /// as one batch and updates the committed state in place, without diffing the table.
    /// Sends nothing for an empty transaction.
    @discardableResult
    public func apply(transaction tx: Transaction) throws -> ApplyReport {
        if tx.isEmpty {
            let r = ApplyReport(transaction: tx, batches: [])
            lastReport = r
            return r
        }
        try prepareToCommit()
        if expectedGeneration == nil { expectedGeneration = try socket.currentGeneration() }
        let stats: BatchStats
        do {
            stats = try socket.commit(tx.operations, known: [committed], generation: expectedGeneration, tableFlags: ownership.flags)
        } catch {
            recover(after: error, tables: tx.tables, partial: false)
            throw error
        }
        if stats.messages > 0 { expectedGeneration = expectedGeneration.map { $0 &+ 1 } }
        if tracksElements {
            committed.apply(tx)
        } else if !tx.isElementsOnly {
            committed.apply(Transaction(tx.operations.filter { !$0.isElementOperation }))
        }
        let r = ApplyReport(transaction: tx, batches: [stats])
        lastReport = r
        return r
    }

    /// Commits a sequence of transactions (e.g. `IncrementalCompiler.load(_:maxElementsPerTransaction:emit:)`,
    /// a streamed cold start) as `apply(transaction:)` does, one batch each, on a background
    /// thread: `produce` runs on the calling thread and hands each transaction to `send`,
    /// which returns once the transaction is queued (at most `depth` wait besides the one
    /// being committed), so building
    /// the next transaction overlaps the kernel's commit of the previous one.
    ///
    /// Stops at the first failure: `send` then throws it, no later transaction is
    /// committed, and if some were, the committed state is re-read from the kernel.
    /// The report's `transaction` is empty (the transactions are not kept); `batches`
    /// counts every batch sent.
    @discardableResult
    public func applyStreamed(depth: Int = 1, tables: [(Family, String)],
                              _ produce: (_ send: (Transaction) throws -> Void) throws -> Void) throws -> ApplyReport {
        final class Shared: @unchecked Sendable {
            let applier: NftablesApplier
            var batches: [BatchStats] = []
            var error: Error?
            init(_ a: NftablesApplier) { applier = a }
        }
        let shared = Shared(self)
        let queue = DispatchQueue(label: "sluice.applier.commit")
        let slots = DispatchSemaphore(value: max(1, depth))
        func failure() -> Error? { queue.sync { shared.error } }
        var produceError: Error?
        do {
            try produce { tx in
                if let e = failure() { throw e }
                slots.wait()
                queue.async {
                    defer { slots.signal() }
                    guard shared.error == nil else { return }
                    do {
                        let r = try shared.applier.apply(transaction: tx)
                        shared.batches += r.batches
                    } catch {
                        shared.error = error
                    }
                }
            }
        } catch {
            produceError = error
        }
        queue.sync {}
        if let e = shared.error ?? produceError {
            recover(after: e, tables: tables, partial: !shared.batches.isEmpty)
            throw e
        }
        let r = ApplyReport(transaction: Transaction(), batches: shared.batches)
        lastReport = r
        // The stream's transient transactions and batch buffers were freed on two threads
        // (two malloc arenas); hand the free pages back so later work starts from the
        // steady-state footprint rather than on top of the cold start's high-water mark.
        FreeMemory.trim()
        return r
    }

    /// Cold start of a table the kernel does not have yet, with its elements streamed from
    /// `elements` instead of held in `skeleton.elements` (which may carry a few elements of
    /// its own, e.g. the node context's): nothing of the size of the table is built in
    /// memory besides the source itself and one batch.
    ///
    /// Batches as in a chunked `apply`: first the skeleton (table, sets, chains, rules and
    /// `skeleton`'s own elements), then the streamed elements in `elementOrder`/usage order
    /// (data maps before the sets that make a service reachable), at most
    /// `maxElementsPerBatch` per batch. Elements of `flags interval` sets are sent sorted
    /// in one piece. If the applier already has a table of that name, this falls back to
    /// `apply` of the materialized table.
    ///
    /// The report's `transaction` holds the skeleton operations only (the element
    /// operations are not kept); `batches` counts every batch sent.
    @discardableResult
    public func create(_ skeleton: Table, elements: some ElementSource) throws -> ApplyReport {
        if committed.table(skeleton.family, skeleton.name) != nil {
            return try apply(committed.replacing(Self.materialize(skeleton, elements, chunk: maxElementsPerBatch)))
        }
        let f = skeleton.family, t = skeleton.name
        let first = SluiceIR.create(skeleton)
        try prepareToCommit()
        if expectedGeneration == nil { expectedGeneration = try socket.currentGeneration() }
        let known = Ruleset(tables: [skeleton.withoutElements])
        var batches: [BatchStats] = []
        func send(_ ops: [SluiceIR.Operation]) throws {
            guard !ops.isEmpty else { return }
            let stats = try socket.commit(ops, known: [known], generation: expectedGeneration, tableFlags: ownership.flags)
            if stats.messages > 0 { expectedGeneration = expectedGeneration.map { $0 &+ 1 } }
            batches.append(stats)
            if tracksElements || batches.count == 1 {
                committed.apply(Transaction(tracksElements ? ops : ops.filter { !$0.isElementOperation }))
            }
        }
        // Streamed sets in batch order: explicit order, then data maps, other sets, gates.
        let usage = setUsage(known)
        let declared = Dictionary(skeleton.sets.enumerated().map { ($1.name, ($0, $1)) }, uniquingKeysWith: { a, _ in a })
        let names = elements.setNames.filter { declared[$0] != nil && elements.count(of: $0) > 0 }
        func rank(_ name: String) -> (Int, Int) {
            if let i = elementOrder.firstIndex(of: name) { return (i, declared[name]!.0) }
            return (elementOrder.count + (usage["\(f) \(t) \(name)"] ?? 1), declared[name]!.0)
        }
        let ordered = names.sorted { rank($0) < rank($1) }
        do {
            try send(first)
            var current: [SluiceIR.Operation] = [], count = 0
            func add(_ decl: SetDecl, _ chunk: [Element]) throws {
                if count + chunk.count > maxElementsPerBatch {
                    try send(current)
                    current = []
                    count = 0
                }
                current.append(.addElements(f, t, set: decl, chunk))
                count += chunk.count
            }
            for name in ordered {
                let decl = declared[name]!.1
                if decl.flags.contains(.interval) {
                    // Interval encodings depend on neighbouring elements: one sorted piece.
                    var all: [Element] = []
                    elements.forEachChunk(of: name, maxCount: maxElementsPerBatch) { all += $0 }
                    try add(decl, all.sorted())
                } else {
                    try elements.forEachChunk(of: name, maxCount: maxElementsPerBatch) { try add(decl, $0) }
                }
            }
            try send(current)
        } catch {
            // Part of the table may be in; the in-memory state no longer matches then.
            recover(after: error, tables: [(f, t)], partial: !batches.isEmpty)
            throw error
        }
        let r = ApplyReport(transaction: Transaction(first), batches: batches)
        lastReport = r
        return r
    }

    /// Deletes elements of a dynamic set or map (one the datapath fills with `update`) that
    /// `isValid` rejects: reads the set over netlink, then commits the deletions as one
    /// batch. Dynamic elements are not part of the committed state. Returns how many were
    /// deleted.
    @discardableResult
    public func purgeDynamicElements(_ family: Family, _ table: String, set decl: SetDecl,
                                     isValid: ([Datum], [Datum]) -> Bool) throws -> Int {
        let current = try socket.readElements(family, table, set: decl)
        let stale = current.filter { !isValid($0.key, $0.value) }.map { Element($0.key, decl.isMap ? $0.value : nil) }
        guard !stale.isEmpty else { return 0 }
        do {
            _ = try socket.commit([.deleteElements(family, table, set: decl, stale.sorted())], known: [committed],
                                  generation: expectedGeneration)
            if expectedGeneration != nil { expectedGeneration = expectedGeneration.map { $0 &+ 1 } }
        } catch let e as NetlinkError where e.kind == .kernel && e.errno == ENOENT_ {
            // An entry expired between the read and the delete: nothing to do.
            return 0
        }
        return stale.count
    }

    /// Splits a large transaction into batches that keep every intermediate state valid:
    /// 1. skeleton: everything except element operations and final removals;
    /// 2. element deletes, dispatching sets first (reverse `elementOrder`);
    /// 3. element adds in `elementOrder`, then by usage rank (data maps, other sets, gates):
    ///    endpoint slots before the sets that make a service reachable; at most
    ///    `maxElementsPerBatch` elements per batch;
    /// 4. removals of chains and sets that the new state no longer has.
    public func chunked(_ tx: Transaction, desired: Ruleset) -> [[SluiceIR.Operation]] {
        var skeleton: [SluiceIR.Operation] = [], removals: [SluiceIR.Operation] = []
        var deletes: [SluiceIR.Operation] = [], adds: [SluiceIR.Operation] = []
        let removedChains = Set(tx.operations.compactMap { op -> String? in
            if case .deleteChain(let f, let t, let c) = op { return "\(f) \(t) \(c)" }
            return nil
        })
        for op in tx.operations {
            switch op {
            case .addElements: adds.append(op)
            case .deleteElements: deletes.append(op)
            case .deleteChain, .deleteSet: removals.append(op)
            case .flushChain(let f, let t, let c) where removedChains.contains("\(f) \(t) \(c)"): removals.append(op)
            default: skeleton.append(op)
            }
        }
        let usage = setUsage(desired)
        let rank = { (op: SluiceIR.Operation) -> Int in
            switch op {
            case .addElements(let f, let t, let s, _), .deleteElements(let f, let t, let s, _):
                if let i = self.elementOrder.firstIndex(of: s.name) { return i }
                return self.elementOrder.count + (usage["\(f) \(t) \(s.name)"] ?? 1)
            default: return 0
            }
        }
        let orderedAdds = adds.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
        let orderedDeletes = deletes.enumerated().sorted { (-rank($0.element), $0.offset) < (-rank($1.element), $1.offset) }.map(\.element)
        var out: [[SluiceIR.Operation]] = [skeleton]
        out += split(orderedDeletes)
        out += split(orderedAdds)
        out.append(removals)
        return out
    }

    /// 0 for maps that rules only read data from, 2 for sets rules test with `@set`
    /// (dispatch and marking gates), 1 for everything else; keyed by "family table set".
    private func setUsage(_ rs: Ruleset) -> [String: Int] {
        var out: [String: Int] = [:]
        for t in rs.tables {
            var data = Set<String>(), gates = Set<String>()
            for rule in t.chains.flatMap(\.rules) {
                for st in rule.statements {
                    switch st {
                    case .lookup(let e, let set, _): gates.insert(set); data.formUnion(e.mapReferences)
                    case .dnatMap(_, let key, let map): data.insert(map); data.formUnion(key.mapReferences)
                    case .match(let e, _, _): data.formUnion(e.mapReferences)
                    default: break
                    }
                }
            }
            for s in t.sets {
                out["\(t.family) \(t.name) \(s.name)"] = gates.contains(s.name) ? 2 : (data.contains(s.name) ? 0 : 1)
            }
        }
        return out
    }

    /// Packs element operations into batches of at most `maxElementsPerBatch` elements,
    /// splitting a single large operation where needed.
    private func split(_ ops: [SluiceIR.Operation]) -> [[SluiceIR.Operation]] {
        var out: [[SluiceIR.Operation]] = []
        var current: [SluiceIR.Operation] = [], count = 0
        func flush() { if !current.isEmpty { out.append(current); current = []; count = 0 } }
        for op in ops {
            var pieces: [SluiceIR.Operation] = []
            switch op {
            case .addElements(let f, let t, let s, let e):
                pieces = stride(from: 0, to: e.count, by: maxElementsPerBatch).map {
                    .addElements(f, t, set: s, Array(e[$0..<min($0 + maxElementsPerBatch, e.count)]))
                }
            case .deleteElements(let f, let t, let s, let e):
                pieces = stride(from: 0, to: e.count, by: maxElementsPerBatch).map {
                    .deleteElements(f, t, set: s, Array(e[$0..<min($0 + maxElementsPerBatch, e.count)]))
                }
            default: pieces = [op]
            }
            for p in pieces {
                if count + p.objectCount > maxElementsPerBatch { flush() }
                current.append(p)
                count += p.objectCount
            }
        }
        flush()
        return out
    }

    /// Reads the given tables back from the kernel and takes them as committed state, so
    /// the next `apply` reconciles without flushing (restart adoption). Elements of dynamic
    /// sets (affinity entries the datapath recorded) are not committed state: they are left
    /// out, so reconciling keeps them (`purgeDynamicElements` removes stale ones). Tables that do not
    /// exist are left out. Returns foreign content that the IR cannot express (such content
    /// is ignored by the diff and would be lost only if its table is replaced).
    ///
    /// With `desired`, kernel defaults that the IR leaves implicit are mapped back: the
    /// kernel reports `size 65535` for a dynamic set declared without a size.
    @discardableResult
    public func adopt(tables: [(Family, String)], desired: Ruleset? = nil) throws -> [String] {
        if socket.isClosed { try reopenSocket() }
        var generation = try socket.currentGeneration()
        // Without tracked elements nothing but the structure is kept: read nothing else.
        let (read, foreign) = try readTables(tables, desired: desired, elements: tracksElements)
        committed = tracksElements ? read : read.withoutElements
        if ownership.isOwner, try claim(read.tables) { generation = try socket.currentGeneration() }
        expectedGeneration = generation
        uncertainTables.subtract(tables.map { TableKey(family: $0.0, name: $0.1) })
        return foreign
    }

    /// Reads tables back from the kernel (missing ones are left out).
    private func readTables(_ tables: [(Family, String)], desired: Ruleset? = nil,
                            elements: Bool = true) throws -> (ruleset: Ruleset, foreign: [String]) {
        var seen = Set<String>()
        var result: [Table] = []
        var foreign: [String] = []
        for (f, name) in tables where seen.insert("\(f) \(name)").inserted {
            guard var rb = try socket.readTable(f, name, dynamicElements: false, elements: elements) else { continue }
            if let want = desired?.table(f, name) { rb.table.sets = rb.table.sets.map { normalize($0, against: want.set(named: $0.name)) } }
            result.append(rb.table)
            foreign += rb.foreign
        }
        return (Ruleset(tables: result), foreign)
    }

    func normalize(_ read: SetDecl, against want: SetDecl?) -> SetDecl {
        guard let want, want.size == nil, read.size == 65535, read.flags.contains(.dynamic) else { return read }
        var r = read
        r.size = nil
        return r
    }

    /// Deletes every table this applier has committed (one batch).
    public func deleteOwnTables() throws {
        let ops = committed.tables.map { SluiceIR.Operation.deleteTable($0.family, $0.name) }
        if !ops.isEmpty { _ = try socket.commit(ops) }
        committed = Ruleset()
        expectedGeneration = nil
    }

    /// Deletes `ip kube-proxy` and `ip6 kube-proxy` (each its own batch; missing tables
    /// are fine). Returns the tables that were deleted.
    @discardableResult
    public func deleteKubeProxyTables() throws -> [Family] {
        try deleteTablesIgnoringMissing([(.ip, "kube-proxy"), (.ip6, "kube-proxy")])
    }

    /// Deletes tables one batch each, ignoring ENOENT.
    @discardableResult
    public func deleteTablesIgnoringMissing(_ tables: [(Family, String)]) throws -> [Family] {
        var deleted: [Family] = []
        for (f, t) in tables {
            do {
                _ = try socket.commit([.deleteTable(f, t)])
                deleted.append(f)
            } catch let e as NetlinkError where e.kind == .kernel && e.errno == ENOENT_ {
                continue
            }
        }
        let gone = Set(tables.map { "\($0.0) \($0.1)" })
        committed = Ruleset(tables: committed.tables.filter { !gone.contains("\($0.family) \($0.name)") })
        expectedGeneration = try? socket.currentGeneration()
        return deleted
    }
}

let ENOENT_: Int32 = 2
