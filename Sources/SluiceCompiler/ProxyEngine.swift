import Foundation
import SluiceIR
import SluiceModel

/// The incremental engine: the planner (objects → plans, held once) and one
/// `IncrementalCompiler` per family (plans → packed elements), mutated in place.
///
/// `apply(_:)` turns a batch of object changes into the transaction that takes the kernel
/// from the previous state to the new one, in time and memory proportional to the change:
/// no table-sized copy is made (`IncrementalCompiler.storageIdentity` lets tests check it).
/// When only the NodePort addresses change (the host's addresses, `setHostAddresses`, or
/// the Node's), the transaction updates the `nodeport-ips` set and nothing else.
/// When the node context changes otherwise every plan is new: the compilers are reloaded and the
/// caller reconciles each table with its compiler (`skeleton`, `serviceElements`); on the
/// first sync it can instead stream the table into an empty kernel with `loadStreamed`.
/// `desiredRuleset` materializes the whole table (tests, review).
///
/// Pure: the kernel is the caller's business (`SluiceDaemon`'s sync loop, the CLI, the bench).
public struct ProxyEngine: Sendable {
    public private(set) var planner: IncrementalPlanner
    public private(set) var compilers: [IPFamily: IncrementalCompiler] = [:]
    /// True after a context change until `load` or `loadStreamed` ran.
    public private(set) var needsLoad = false

    /// `plansFromPods`: see `IncrementalPlanner.plansFromPods`.
    public init(options: NodeOptions, hostAddresses: [IPAddress]? = nil, plansFromPods: Bool = true) {
        planner = IncrementalPlanner(options: options, hostAddresses: hostAddresses, plansFromPods: plansFromPods)
    }

    /// Replaces the host's interface addresses (`IncrementalPlanner.setHostAddresses`); the
    /// next `apply` carries the change, usually as `nodeport-ips` element updates only.
    public mutating func setHostAddresses(_ addresses: [IPAddress]?) {
        planner.setHostAddresses(addresses)
    }

    /// What one `apply` produced: the planner's changes (`full`, counts, diagnostics with the
    /// compilers' conflicts added, trigger times, conntrack targets, read through as members)
    /// and the transaction.
    @dynamicMemberLookup
    public struct Outcome: Sendable {
        public var planned: IncrementalPlanner.Changes
        /// The O(change) transaction (both families), when `full` is false. When `full` is
        /// true (the node context changed) the caller reconciles every table instead, or
        /// streams it into an empty kernel (`loadStreamed`).
        public var transaction = Transaction([])
        /// Time the planner took (objects → plans).
        public var planSeconds = 0.0
        /// Time the compilers took (plans → the transaction, or a whole load when `loadNow`).
        public var compileSeconds = 0.0

        public subscript<T>(dynamicMember member: KeyPath<IncrementalPlanner.Changes, T>) -> T { planned[keyPath: member] }
    }

    public var accepted: AcceptedServices { planner.accepted }
    public var nodeContext: NodeContext? { planner.nodeContext }
    public var healthChecks: [ServiceName: HealthCheckTarget] { planner.healthChecks }
    public var noLocalEndpoints: [String: Int] { planner.noLocalEndpoints }
    public var nodeEligible: Bool { planner.nodeEligible }

    /// Applies a batch of object changes. With `loadNow: false` a context change leaves the
    /// compilers empty (`needsLoad`) for the caller to `load` or `loadStreamed`.
    public mutating func apply(_ changes: ObjectChanges, loadNow: Bool = true) -> Outcome {
        let start = ContinuousClock.now
        var out = Outcome(planned: planner.apply(changes))
        let planned = ContinuousClock.now
        compile(&out, loadNow: loadNow)
        out.planSeconds = (planned - start).inSeconds
        out.compileSeconds = (ContinuousClock.now - planned).inSeconds
        return out
    }

    /// The compilers' part of `apply`: the transaction for the planner's changes, or a reload.
    private mutating func compile(_ out: inout Outcome, loadNow: Bool) {
        if out.full { resetCompilers() } else if out.nodePortAddressesChanged && needsLoad { _ = followNodePortAddresses() }
        if needsLoad {
            // The compilers are (re)loaded from the planner's plans, whole: no transaction;
            // the caller reconciles every table (`full`).
            out.planned.full = true
            if loadNow { out.planned.diagnostics += load() }
            return
        }
        var ops = followNodePortAddresses()
        for family in out.ports.keys.sorted() where compilers[family] != nil {
            // In place: a copy of the compiler would copy its whole store on write.
            let tx = compilers[family]!.update(planChanges: out.ports[family]!)
            out.planned.diagnostics += conflictDiagnostics(family)
            ops += tx.operations
        }
        out.transaction = Transaction(ops)
    }

    /// Takes a part of a first state that is still arriving (`IncrementalPlanner.stage`):
    /// validated, stored and, once this Node is known, planned; nothing is compiled. The
    /// compilers are loaded whole afterwards (`needsLoad`), by `apply`, `load` or
    /// `loadStreamed` (staging after a load costs a reload: it is meant for the first state).
    public mutating func stage(_ changes: ObjectChanges) -> IncrementalPlanner.Changes {
        let staged = planner.stage(changes)
        // Plans changed and no transaction says so: the compilers are loaded anew.
        if staged.full || (!needsLoad && (!staged.ports.isEmpty || staged.nodePortAddressesChanged)) { resetCompilers() }
        if staged.nodePortAddressesChanged { _ = followNodePortAddresses() }
        return staged
    }

    /// Gives each compiler the planner's NodePort addresses where they differ (after a
    /// `nodePortAddressesChanged`); returns the `nodeport-ips` element operations.
    private mutating func followNodePortAddresses() -> [SluiceIR.Operation] {
        var ops: [SluiceIR.Operation] = []
        for family in compilers.keys.sorted() {
            guard let wanted = planner.nodeContext?.context(for: family)?.nodePortAddresses,
                  compilers[family]!.context.nodePortAddresses != wanted else { continue }
            ops += compilers[family]!.updateNodePortAddresses(wanted).operations
        }
        return ops
    }

    /// Empty compilers for the families of the current context.
    private mutating func resetCompilers() {
        compilers = [:]
        for fc in planner.nodeContext?.families ?? [] {
            compilers[fc.family] = IncrementalCompiler(context: fc, keepsPlans: false)
        }
        needsLoad = true
    }

    /// Loads every compiler with the planner's plans; returns conflict diagnostics.
    @discardableResult
    public mutating func load() -> [Diagnostic] {
        var out: [Diagnostic] = []
        for family in compilers.keys.sorted() {
            compilers[family]!.load(planner.servicePorts(family))
            out += conflictDiagnostics(family)
        }
        needsLoad = false
        return out
    }

    /// Loads every compiler and hands `emit` the transactions that create each family's
    /// table from nothing (`IncrementalCompiler.load(_:maxElementsPerTransaction:emit:)`):
    /// each holds whole service ports, so every intermediate state is valid.
    public mutating func loadStreamed(maxElementsPerTransaction: Int,
                                      emit: (IPFamily, Transaction) throws -> Void) rethrows -> [Diagnostic] {
        var out: [Diagnostic] = []
        for family in compilers.keys.sorted() {
            try compilers[family]!.load(planner.servicePorts(family), maxElementsPerTransaction: maxElementsPerTransaction) {
                try emit(family, $0)
            }
            out += conflictDiagnostics(family)
        }
        needsLoad = false
        return out
    }

    private func conflictDiagnostics(_ family: IPFamily) -> [Diagnostic] {
        (compilers[family]?.lastConflicts ?? []).map { Diagnostic(severity: .warning, message: $0) }
    }

    /// The whole desired ruleset (O(table)): a reference for tests and review.
    public var desiredRuleset: Ruleset {
        precondition(!needsLoad, "ProxyEngine: load() before desiredRuleset")
        return Ruleset(tables: compilers.keys.sorted().map { compilers[$0]!.table })
    }

    /// Elements of one family's table (node context's and services').
    public func elementCount(_ family: IPFamily) -> Int { compilers[family]?.elementCount ?? 0 }
}
