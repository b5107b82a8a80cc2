import Foundation
import Logging
import SluiceCompiler
import SluiceIR
import SluiceModel
import SluiceNetlink

/// The sync loop: owns the proxy state and the netlink applier, and commits.
///
/// - Sources call `receive`; changes are merged into `pending` and the loop is woken. While
///   a commit is in flight (or `minSyncPeriod` has not passed since the last one) further
///   changes keep accumulating and go out together in the next commit.
/// - Nothing is committed until every source has reported `synced`.
/// - The first commit adopts the existing tables (`adopt`) and reconciles by diff, so a
///   restart never flushes.
/// - Routine commits are O(change): `ProxyState.apply` → `IncrementalCompiler.update` →
///   `applier.apply(transaction:)`. Context changes, failures and drift use the full diff.
actor SyncLoop {
    let applier: NftablesApplier
    var state: ProxyState
    let logger: Logger
    let metrics: DaemonMetrics
    let health: ProxyHealth
    let healthChecks: HealthCheckServers
    let minSyncPeriod: Duration
    let retryPeriod: Duration

    private var pending: [ProxyObjectKey: SourcedObject?] = [:]
    /// Per source: what it delivered (for first-source-wins merging) and whether it synced.
    private var sourceObjects: [[ProxyObjectKey: SourcedObject]]
    private var sourceSynced: [Bool]
    private(set) var initialized = false
    private var needFull = true
    private var lastCommit: ContinuousClock.Instant?
    private var pendingTriggerTimes: [Date] = []
    private let wakeStream: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    /// Commits done (tests wait on it).
    private(set) var commits = 0
    private(set) var lastError: String?

    init(netns: String?, options: NodeOptions, hostAddresses: [IPAddress]?, sources: Int, logger: Logger,
         metrics: DaemonMetrics, health: ProxyHealth, healthChecks: HealthCheckServers,
         minSyncPeriod: Duration, retryPeriod: Duration) throws {
        applier = try NftablesApplier(namespace: netns)
        state = ProxyState(options: options, hostAddresses: hostAddresses)
        self.logger = logger
        self.metrics = metrics
        self.health = health
        self.healthChecks = healthChecks
        self.minSyncPeriod = minSyncPeriod
        self.retryPeriod = retryPeriod
        sourceObjects = Array(repeating: [:], count: sources)
        sourceSynced = Array(repeating: false, count: sources)
        (wakeStream, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Takes a source's delta (merging sources: the first source that has a key wins).
    func receive(source index: Int, _ delta: SourceDelta) {
        for d in delta.diagnostics { log(d) }
        for (key, new) in delta.changes {
            sourceObjects[index][key] = new ?? nil
            let winner = sourceObjects.lazy.compactMap { $0[key] }.first
            pending[key] = winner
        }
        if delta.synced && !sourceSynced[index] {
            sourceSynced[index] = true
            logger.info("source synced", metadata: ["source": "\(index)"])
        }
        if !delta.isEmpty {
            metrics.markQueued()
            health.queued(state.nodeContext?.families.map(\.family) ?? [.ipv4])
        }
        wake.yield()
    }

    /// Runs until cancelled.
    func run() async {
        for await _ in wakeStream {
            if Task.isCancelled { break }
            guard sourceSynced.allSatisfy({ $0 }) else { continue }
            if let last = lastCommit, minSyncPeriod > .zero {
                let due = last + minSyncPeriod
                if due > .now { try? await Task.sleep(until: due, clock: .continuous) }
                if Task.isCancelled { break }
            }
            await sync()
        }
    }

    /// Commits what is pending.
    func sync() async {
        let changes = pending
        pending = [:]
        if changes.isEmpty && !needFull { return }
        let start = ContinuousClock.now
        let outcome = state.apply(changes)
        for d in outcome.diagnostics { log(d) }
        pendingTriggerTimes += outcome.triggerTimes
        metrics.serviceChanges.increment(by: outcome.serviceChanges)
        metrics.endpointChanges.increment(by: outcome.endpointSliceChanges)
        let families = state.nodeContext?.families.map(\.family) ?? []
        do {
            let report: ApplyReport
            let full = needFull || outcome.full
            if full {
                let desired = state.desiredRuleset
                if needFull {
                    // First sync, or after a failure: read what is really there, then diff.
                    let foreign = try applier.adopt(tables: Family.allCases.map { ($0, Layout.tableName) }, desired: desired)
                    for f in foreign { logger.warning("foreign content in Sluice's table will be rewritten", metadata: ["content": "\(f)"]) }
                }
                report = try applier.apply(desired)
                metrics.fullSyncs.increment()
            } else {
                report = try applier.apply(transaction: outcome.transaction)
                metrics.partialSyncs.increment()
            }
            let elapsed = ContinuousClock.now - start
            needFull = false
            lastError = nil
            if !initialized {
                logger.info("first sync applied", metadata: [
                    "operations": "\(report.transaction.operations.count)", "services": "\(state.accepted.count)",
                ])
            }
            initialized = true
            commits += 1
            lastCommit = .now
            metrics.syncDuration.recordNanoseconds(nanoseconds(elapsed))
            metrics.lastSync.record(Date().timeIntervalSince1970)
            if !report.isNoOp {
                metrics.commitDuration.recordNanoseconds(Int64(report.seconds * 1e9))
                metrics.operationsPerTransaction.record(report.transaction.operations.count)
            }
            for f in IPFamily.allCases {
                let t = applier.committed.table(f == .ipv4 ? .ip : .ip6, Layout.tableName)
                metrics.elements[f]?.record(t?.elementCount ?? 0)
            }
            metrics.noLocalInternal.record(state.noLocalEndpoints["internal"] ?? 0)
            metrics.noLocalExternal.record(state.noLocalEndpoints["external"] ?? 0)
            let now = Date()
            for t in pendingTriggerTimes where now >= t {
                metrics.networkProgramming.recordNanoseconds(Int64(now.timeIntervalSince(t) * 1e9))
            }
            pendingTriggerTimes = []
            health.keepOnly(families)
            health.updated(families)
            health.setNodeEligible(state.nodeEligible)
            logger.debug("synced", metadata: [
                "kind": "\(full ? "full" : "partial")", "operations": "\(report.transaction.operations.count)",
                "services": "\(outcome.replanned.count)", "ms": "\(String(format: "%.2f", Double(nanoseconds(elapsed)) / 1e6))",
            ])
            if !outcome.conntrackTargets.isEmpty { clearStaleConntrack(outcome.conntrackTargets) }
            purgeStaleAffinity(full ? nil : AffinityValidity.Impact(of: outcome.transaction))
            await healthChecks.sync(state.healthChecks)
        } catch {
            needFull = true
            lastError = "\(error)"
            metrics.syncFailures.increment()
            logger.error("sync failed; retrying with a full resync", metadata: ["error": "\(error)", "retryIn": "\(retryPeriod)"])
            let wake = self.wake, retry = retryPeriod
            Task {
                try? await Task.sleep(for: retry)
                wake.yield()
            }
        }
    }

    /// Checks cheaply (generation id) whether anyone touched the tables; if so re-reads them
    /// and repairs the difference. Returns the number of repair operations (0: nothing to do).
    @discardableResult
    func checkDrift() -> Int {
        guard initialized, !needFull else { return 0 }
        do {
            let generation = try applier.currentGeneration()
            if generation == applier.expectedGeneration { return 0 }
            let desired = state.desiredRuleset
            try applier.adopt(tables: Family.allCases.map { ($0, Layout.tableName) }, desired: desired)
            let report = try applier.apply(desired)
            if report.isNoOp { return 0 }
            metrics.driftRepairs.increment()
            purgeStaleAffinity(nil)
            logger.warning("repaired tables changed by someone else", metadata: [
                "operations": "\(report.transaction.operations.count)", "objects": "\(report.transaction.objectCount)",
            ])
            return report.transaction.operations.count
        } catch {
            needFull = true
            metrics.syncFailures.increment()
            logger.error("drift check failed; a full resync follows", metadata: ["error": "\(error)"])
            wake.yield()
            return 0
        }
    }

    /// Deletes conntrack entries of UDP flows whose endpoint went away (one dump per
    /// family). Failures are logged; they never fail the sync.
    func clearStaleConntrack(_ targets: [ConntrackTarget]) {
        for family in Set(targets.map(\.family)) {
            let mine = targets.filter { $0.family == family }
            do {
                var deleted = 0
                for flow in try applier.socket.conntrackFlows(family: family == .ipv4 ? .ip : .ip6, proto: 17) {
                    guard let dst = IPAddress(addressText(flow.origDst)), let src = IPAddress(addressText(flow.replySrc)) else { continue }
                    let origDst = EndpointAddress(ip: dst, port: flow.origDstPort)
                    let replySrc = EndpointAddress(ip: src, port: flow.replySrcPort)
                    guard mine.contains(where: { $0.isStale(origDst: origDst, replySrc: replySrc, dnated: flow.isDNATed) }) else { continue }
                    if try applier.socket.deleteConntrack(flow) { deleted += 1 }
                }
                if deleted > 0 {
                    metrics.conntrackDeleted.increment(by: deleted)
                    logger.info("deleted stale UDP conntrack entries", metadata: ["family": "\(family.rawValue)", "entries": "\(deleted)"])
                }
            } catch {
                logger.warning("conntrack cleanup failed", metadata: ["family": "\(family.rawValue)", "error": "\(error)"])
            }
        }
    }

    /// Deletes ClientIP-affinity entries whose endpoint left the service, or whose service lost
    /// affinity (kube-proxy deletes the endpoint's affinity set at once). `impact` limits the
    /// check to the tuples a partial commit touched; nil judges every entry (full syncs).
    /// The dynamic maps are read only when an entry can be stale. Failures are logged; they
    /// never fail the sync.
    func purgeStaleAffinity(_ impact: AffinityValidity.Impact?) {
        if let impact, impact.isEmpty { return }
        for table in applier.committed.tables where table.name == Layout.tableName {
            let validity = impact.map { AffinityValidity(table: table, impact: $0) } ?? AffinityValidity(table: table)
            guard validity.mayRejectEntries else { continue }
            do {
                var purged = 0
                if let decl = table.set(named: AffinityValidity.serviceMap) {
                    purged += try applier.purgeDynamicElements(table.family, table.name, set: decl) {
                        validity.isValidServiceEntry(key: $0, data: $1)
                    }
                }
                if let decl = table.set(named: AffinityValidity.nodePortMap) {
                    purged += try applier.purgeDynamicElements(table.family, table.name, set: decl) {
                        validity.isValidNodePortEntry(key: $0, data: $1)
                    }
                }
                if purged > 0 {
                    metrics.affinityPurged.increment(by: purged)
                    logger.info("deleted stale ClientIP-affinity entries", metadata: ["family": "\(table.family)", "entries": "\(purged)"])
                }
            } catch {
                logger.warning("affinity cleanup failed", metadata: ["family": "\(table.family)", "error": "\(error)"])
            }
        }
    }

    /// Deletes Sluice's tables (`--cleanup-on-exit`).
    func cleanup() throws -> [Family] {
        try applier.deleteTablesIgnoringMissing(Family.allCases.map { ($0, Layout.tableName) })
    }

    func stopWaking() { wake.finish() }

    private func log(_ d: Diagnostic) {
        if d.isError {
            metrics.invalidObjects.increment()
            logger.error("\(d.description)")
        } else {
            logger.warning("\(d.description)")
        }
    }
}

func nanoseconds(_ d: Duration) -> Int64 {
    d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
}
