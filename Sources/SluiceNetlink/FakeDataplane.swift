import Foundation
import SluiceIR

/// A `Dataplane` that behaves like the kernel, in memory: each transaction is applied
/// atomically by `Ruleset.applying` (the fake kernel: dangling references and deletions of
/// missing objects are refused, and the state is then unchanged), every committed
/// transaction is recorded, and the generation id moves with each commit, ours or a
/// `tamper`ing one. Thread-safe: tests read it while the daemon commits.
public final class FakeDataplane: Dataplane, @unchecked Sendable {
    private let lock = NSLock()
    private var kernel = Ruleset()
    private var generation: UInt32 = 1
    private var recorded: [Transaction] = []
    private var believed = Ruleset()
    private var lastGeneration: UInt32?
    private var failures: [Error] = []
    /// Called (outside the lock) before each commit reaches the fake kernel: a test can
    /// block here to hold a commit "in flight".
    public var beforeCommit: (@Sendable () -> Void)?

    public init() {}

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// What the fake kernel holds now.
    public var kernelState: Ruleset { locked { kernel } }
    /// Every transaction committed, in order (tampering ones included).
    public var transactions: [Transaction] { locked { recorded } }
    /// Number of commits so far.
    public var commitCount: Int { locked { recorded.count } }

    /// Makes the next commit fail with `error` (before it changes anything).
    public func failNextCommit(with error: Error) { locked { failures.append(error) } }

    /// Someone else writes to the kernel (`nft delete …`): the generation id moves.
    public func tamper(_ tx: Transaction) throws {
        try locked {
            kernel = try kernel.applying(tx)
            generation &+= 1
            recorded.append(tx)
        }
    }

    public var committed: Ruleset { locked { believed } }
    public var expectedGeneration: UInt32? { locked { lastGeneration } }
    /// The fake owns nothing: others may write its kernel (`nft`-style edits in tests).
    public var ownsTables: Bool { false }
    public var ownershipLost: String? { nil }
    public func currentGeneration() throws -> UInt32 { locked { generation } }

    @discardableResult
    public func adopt(tables: [(Family, String)], desired: Ruleset?) throws -> [String] {
        locked {
            let wanted = Set(tables.map { "\($0.0) \($0.1)" })
            believed = Ruleset(tables: kernel.tables.filter { wanted.contains("\($0.family) \($0.name)") }.map(Self.withoutDynamic))
            lastGeneration = generation
        }
        return []
    }

    @discardableResult
    public func reconcile(_ skeleton: Table, elements: some ElementSource) throws -> ApplyReport {
        let full = NftablesApplier.materialize(skeleton, elements, chunk: 50_000)
        let tx = locked {
            let current = kernel.table(skeleton.family, skeleton.name).map { Ruleset(tables: [Self.withoutDynamic($0)]) } ?? Ruleset()
            return diff(current, Ruleset(tables: [full]))
        }
        return try apply(transaction: tx)
    }

    @discardableResult
    public func apply(transaction tx: Transaction) throws -> ApplyReport {
        if tx.isEmpty { return ApplyReport(transaction: tx, batches: []) }
        beforeCommit?()
        try locked {
            if !failures.isEmpty { throw failures.removeFirst() }
            let next = try kernel.applying(tx)
            kernel = next
            believed = Ruleset(tables: next.tables.map(Self.withoutDynamic))
            generation &+= 1
            lastGeneration = generation
            recorded.append(tx)
        }
        var stats = BatchStats()
        stats.messages = tx.operations.count
        return ApplyReport(transaction: tx, batches: [stats])
    }

    @discardableResult
    public func applyStreamed(depth: Int, tables: [(Family, String)],
                              _ produce: (_ send: (Transaction) throws -> Void) throws -> Void) throws -> ApplyReport {
        var batches: [BatchStats] = []
        try produce { tx in batches += try apply(transaction: tx).batches }
        return ApplyReport(transaction: Transaction(), batches: batches)
    }

    public func purgeDynamicElements(_ family: Family, _ table: String, set: SetDecl,
                                     isValid: ([Datum], [Datum]) -> Bool) throws -> Int { 0 }

    /// What `readCounters` reports, by set name (the datapath's counting, simulated).
    public var counters: [String: [[Datum]: ElementCounter]] {
        get { locked { simulatedCounters } }
        set { locked { simulatedCounters = newValue } }
    }
    private var simulatedCounters: [String: [[Datum]: ElementCounter]] = [:]
    /// Counter reads so far (tests check the caching of scrapes).
    public var counterReads: Int { locked { reads } }
    private var reads = 0

    public func readCounters(_ family: Family, _ table: String, set: SetDecl) throws -> [[Datum]: ElementCounter] {
        try locked {
            reads += 1
            guard kernel.table(family, table)?.sets.contains(where: { $0.name == set.name }) == true else {
                throw NetlinkError.unsupported("no set \(set.name) in \(family.rawValue) \(table)")
            }
            return simulatedCounters[set.name] ?? [:]
        }
    }

    public func conntrackFlows(family: Family, proto: UInt8) throws -> [ConntrackFlow] { [] }

    public func deleteConntrack(_ flow: ConntrackFlow) throws -> Bool { false }

    public func deleteTablesIgnoringMissing(_ tables: [(Family, String)]) throws -> [Family] {
        let present = locked { tables.filter { kernel.table($0.0, $0.1) != nil } }
        if !present.isEmpty { try apply(transaction: Transaction(present.map { .deleteTable($0.0, $0.1) })) }
        return present.map(\.0)
    }

    /// Dynamic sets' elements are runtime state, never read back as configuration.
    private static func withoutDynamic(_ t: Table) -> Table {
        var t = t
        for set in t.sets where set.flags.contains(.dynamic) { t.elements[set.name] = nil }
        return t
    }
}
