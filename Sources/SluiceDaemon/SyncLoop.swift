import Foundation
import Logging
import SluiceCompiler
import SluiceIR
import SluiceModel
import SluiceNetlink

/// The sync loop: owns the engine and the dataplane, and commits.
///
/// - Sources call `receive` (non-blocking, from any thread): changes are merged into the
///   pending set and the loop is woken. The loop runs on its own serial executor, so while
///   a commit is in flight (or `minSyncPeriod` has not passed since the last one) the
///   sources keep delivering, and everything that arrived goes out together in the next
///   commit.
/// - Nothing is committed until every source has reported `synced`; what arrives before is
///   staged in the planner (`ProxyEngine.stage`) as it comes.
/// - The first commit adopts the existing tables. With none in the kernel it streams the
///   table in (`ProxyEngine.loadStreamed` + `Dataplane.applyStreamed`: atomic transactions
///   of whole services, elements held once, in the engine); with a table (a restart) it
///   reconciles by diff, so a restart never flushes.
/// - Routine commits are O(change): `ProxyEngine.apply` → `Dataplane.apply(transaction:)`.
///   Context changes, failures and drift reconcile each table set by set.
actor SyncLoop {
    let dataplane: any Dataplane
    var engine: ProxyEngine
    let logger: Logger
    let metrics: DaemonMetrics
    let health: ProxyHealth
    let healthChecks: HealthCheckServers
    let minSyncPeriod: Duration
    let retryPeriod: Duration
    /// Elements per streamed cold-start transaction.
    let coldStartChunk: Int

    nonisolated let inbox: Inbox
    private let executor = QueueExecutor(label: "sluice.sync")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private(set) var initialized = false
    private var reportedOwnershipLoss = false
    private var needFull = true
    private var lastCommit: ContinuousClock.Instant?
    private var pendingTriggerTimes: [Date] = []
    /// Trigger times from before this moment are not observed (kube-proxy's
    /// `trackerStartTime`): after a restart the first lists carry every slice's last change,
    /// often days old, which is no latency of this process.
    private let startedAt = Date()
    private let wakeStream: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    /// Commits done (tests wait on it).
    private(set) var commits = 0
    /// Heap trims after large batches (tests check the policy).
    private(set) var heapTrims = 0
    private(set) var lastError: String?
    /// Time spent staging before the first sync (logged with it).
    private var stagedTime = Duration.zero

    init(dataplane: any Dataplane, options: NodeOptions, hostAddresses: [IPAddress]?, sources: Int, logger: Logger,
         metrics: DaemonMetrics, health: ProxyHealth, healthChecks: HealthCheckServers,
         minSyncPeriod: Duration, retryPeriod: Duration, coldStartChunk: Int = 50_000, plansFromPods: Bool = true) {
        self.dataplane = dataplane
        engine = ProxyEngine(options: options, hostAddresses: hostAddresses, plansFromPods: plansFromPods)
        inbox = Inbox(sources: sources)
        if let hostAddresses {
            // Known from the start: the watch's first read of the same set is no change.
            _ = inbox.setHostAddresses(hostAddresses)
            _ = inbox.takeHostAddresses()
        }
        self.logger = logger
        self.metrics = metrics
        self.health = health
        self.healthChecks = healthChecks
        self.minSyncPeriod = minSyncPeriod
        self.retryPeriod = retryPeriod
        self.coldStartChunk = coldStartChunk
        (wakeStream, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Takes a source's delta (merging sources: the first source that has a key wins).
    /// Never waits for the loop.
    nonisolated func receive(source index: Int, _ delta: SourceDelta) {
        for d in delta.diagnostics { log(d) }
        if inbox.merge(source: index, delta) {
            logger.info("source synced", metadata: ["source": "\(index)"].merging(memoryMetadata()) { a, _ in a })
        }
        if !delta.isEmpty {
            metrics.markQueued()
            health.queued(inbox.families)
        }
        wake.yield()
    }

    /// Objects waiting in the inbox beyond which a source pauses (`roomForChanges`) while
    /// the first state arrives: four list parts. Staging keeps up with decoding then, and
    /// decoded objects never pile up while the first lists arrive.
    static let initialStateBacklog = 2000

    /// The same once every source is synced: a relist (every Service and EndpointSlice
    /// again after a 410) or a stalled watch's backlog is committed in batches of about
    /// this many objects, not as one. Each batch's working set (the decoded objects, their
    /// plans and compiled elements) is what RSS rises by (the soak at 10k×10: +100 MB at a
    /// relist of ≈ 5000 changed slices in one batch); a commit's own cost is small beside it.
    static let changeBacklog = 500

    /// Returns once the inbox holds at most `initialStateBacklog` objects before the first
    /// sync's inputs are complete, `changeBacklog` after (after the loop's next take), or
    /// when cancelled. Sources await it between the parts they receive.
    nonisolated func roomForChanges() async {
        let synced = inbox.allSynced
        await inbox.waitForRoom(below: synced ? Self.changeBacklog : Self.initialStateBacklog, afterSync: true)
    }

    /// Takes the host's interface addresses (`HostAddressWatchService`); a change is
    /// committed like an object change (usually `nodeport-ips` elements only). Never waits.
    nonisolated func receiveHostAddresses(_ addresses: [IPAddress]) {
        guard inbox.setHostAddresses(addresses) else { return }
        logger.info("host addresses", metadata: ["addresses": "\(addresses.map(\.description).joined(separator: " "))"])
        wake.yield()
    }

    /// Runs until cancelled.
    func run() async {
        for await _ in wakeStream {
            if Task.isCancelled { break }
            guard inbox.allSynced else {
                stage()
                continue
            }
            if let last = lastCommit, minSyncPeriod > .zero {
                let due = last + minSyncPeriod
                if due > .now { try? await Task.sleep(until: due, clock: .continuous) }
                if Task.isCancelled { break }
            }
            await sync()
        }
    }

    /// Before the first sync: hands what arrived so far to the planner (validated, stored
    /// and, once this Node is known, planned), so the first lists are never held whole as
    /// decoded objects, and that work runs while the sources still receive.
    func stage() {
        if let addresses = inbox.takeHostAddresses() { engine.setHostAddresses(addresses) }
        let changes = inbox.take()
        guard !changes.isEmpty else { return }
        let start = ContinuousClock.now
        account(engine.stage(changes))
        stagedTime += ContinuousClock.now - start
    }

    private func account(_ planned: IncrementalPlanner.Changes) {
        for d in planned.diagnostics { log(d) }
        pendingTriggerTimes += planned.triggerTimes.filter { $0 > startedAt }
        metrics.serviceChanges.increment(by: planned.serviceChanges)
        metrics.endpointChanges.increment(by: planned.endpointSliceChanges)
    }

    /// Whether the tables are owned (nobody else can write them): drift checks are skipped.
    var ownsTables: Bool { dataplane.ownsTables }

    /// A batch of this many objects (a relist, a backlog after a stalled or cut watch) is a
    /// transient peak of decoded objects, plans and elements: once it is committed the heap's
    /// free pages go back to the OS (`FreeMemory.trim`), or RSS would climb a step with each
    /// such batch and stay there (the soak: 109 → 214 MB at one relist of 10k×10).
    static let largeBatch = 1000

    private func trimHeap() {
        FreeMemory.trim()
        heapTrims += 1
    }

    /// Commits what is pending.
    func sync() async {
        let addresses = inbox.takeHostAddresses()
        if let addresses { engine.setHostAddresses(addresses) }
        var changes = inbox.take()
        if changes.isEmpty && addresses == nil && !needFull { return }
        let start = ContinuousClock.now
        let batchSize = changes.count
        let outcome = engine.apply(changes, loadNow: !needFull)
        let planned = ContinuousClock.now
        // The raw objects are not needed any more (the engine keeps what it uses): free them
        // before a cold start, whose end hands freed memory back to the OS.
        changes = [:]
        defer { if batchSize >= Self.largeBatch { trimHeap() } }
        account(outcome.planned)
        let families = engine.nodeContext?.families.map(\.family) ?? []
        inbox.families = families.isEmpty ? [.ipv4] : families
        do {
            let full = needFull || outcome.full
            let report = full ? try commitFull() : try dataplane.apply(transaction: outcome.transaction)
            (full ? metrics.fullSyncs : metrics.partialSyncs).increment()
            needFull = false
            lastError = nil
            if !initialized {
                logger.info("first sync applied", metadata: [
                    "batches": "\(report.batches.count)", "services": "\(engine.accepted.count)",
                    "elements": "\(families.map { engine.elementCount($0) }.reduce(0, +))",
                    "stageSeconds": "\(seconds(stagedTime))", "planSeconds": "\(seconds(planned - start))", "commitSeconds": "\(seconds(ContinuousClock.now - planned))",
                ].merging(memoryMetadata()) { a, _ in a })
            }
            initialized = true
            commits += 1
            lastCommit = .now
            recordMetrics(report, elapsed: ContinuousClock.now - start, families: families)
            recordPhases(outcome, report)
            logger.debug("synced", metadata: [
                "kind": "\(full ? "full" : "partial")", "operations": "\(report.transaction.operations.count)",
                "services": "\(outcome.replanned.count)",
                "ms": "\(String(format: "%.2f", Double(nanoseconds(ContinuousClock.now - start)) / 1e6))",
            ])
            if !outcome.conntrackTargets.isEmpty { clearStaleConntrack(outcome.conntrackTargets) }
            purgeStaleAffinity(full ? nil : AffinityValidity.Impact(of: outcome.transaction))
            await healthChecks.sync(engine.healthChecks)
        } catch {
            failed(error)
        }
    }

    /// The tables Sluice owns, as nf_tables families and names.
    private var ownTables: [(Family, String)] { Family.allCases.map { ($0, Layout.tableName) } }

    /// A full commit: the first sync, a context change, or a retry after a failure. The
    /// first reads what is really in the kernel (structure only); with no Sluice table
    /// there, the table is streamed in, else each family's table is reconciled set by set
    /// against the engine's store. Either way the elements are held once, in the engine.
    private func commitFull() throws -> ApplyReport {
        if needFull {
            let foreign: [String]
            do {
                foreign = try dataplane.adopt(tables: ownTables, desired: nil)
            } catch let e as NetlinkError where e.isOwnedElsewhere {
                throw DaemonError("Sluice's table is owned by another process (is another `sluice run` using this network namespace?): \(e)")
            }
            if let reason = dataplane.ownershipLost, !reportedOwnershipLoss {
                reportedOwnershipLoss = true
                logger.warning("tables not owned: watching commits and repairing drift instead", metadata: ["reason": "\(reason)"])
            }
            for f in foreign { logger.warning("foreign content in Sluice's table will be rewritten", metadata: ["content": "\(f)"]) }
            if engine.needsLoad && dataplane.committed.tables.isEmpty { return try coldStart() }
        }
        if engine.needsLoad { for d in engine.load() { log(d) } }
        return try reconcileAll()
    }

    /// Reconciles every family's table with the engine; deletes the table of a family
    /// no longer in use.
    private func reconcileAll() throws -> ApplyReport {
        var reports: [ApplyReport] = []
        for family in engine.compilers.keys.sorted() {
            let compiler = engine.compilers[family]!
            reports.append(try dataplane.reconcile(compiler.skeleton, elements: compiler.serviceElements))
        }
        let inUse = Set(engine.compilers.keys.map { Layout($0).family })
        let unused = ownTables.filter { !inUse.contains($0.0) && dataplane.committed.table($0.0, $0.1) != nil }
        if !unused.isEmpty {
            _ = try dataplane.deleteTablesIgnoringMissing(unused)
            reports.append(ApplyReport(transaction: Transaction(unused.map { .deleteTable($0.0, $0.1) }), batches: [BatchStats()]))
        }
        return ApplyReport.merged(reports)
    }

    /// Streams every family's table into a kernel that has none.
    private func coldStart() throws -> ApplyReport {
        let tables = (engine.nodeContext?.families ?? []).map { (Layout($0.family).family, Layout.tableName) }
        var diagnostics: [Diagnostic] = []
        let pause = ColdStartPauseHook.fromEnvironment()
        var sent = 0
        let report = try dataplane.applyStreamed(depth: 1, tables: tables) { send in
            diagnostics = try engine.loadStreamed(maxElementsPerTransaction: coldStartChunk) { _, tx in
                if let pause, sent == pause.after { pause.wait(logger: logger) }
                try send(tx)
                sent += 1
            }
        }
        for d in diagnostics { log(d) }
        return report
    }

    private func failed(_ error: Error) {
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

    /// Where the sync's time went: planning and compiling (the engine's own clock), encoding
    /// and the kernel (each batch's).
    private func recordPhases(_ outcome: ProxyEngine.Outcome, _ report: ApplyReport) {
        metrics.record(.plan, seconds: outcome.planSeconds)
        metrics.record(.compile, seconds: outcome.compileSeconds)
        guard !report.isNoOp else { return }
        metrics.record(.encode, seconds: report.buildSeconds)
        metrics.record(.kernel, seconds: report.kernelSeconds)
    }

    private func recordMetrics(_ report: ApplyReport, elapsed: Duration, families: [IPFamily]) {
        metrics.syncDuration.recordNanoseconds(nanoseconds(elapsed))
        metrics.lastSync.record(Date().timeIntervalSince1970)
        if !report.isNoOp {
            metrics.commitDuration.recordNanoseconds(Int64(report.seconds * 1e9))
            metrics.operationsPerTransaction.record(report.transaction.operations.count)
        }
        for f in IPFamily.allCases { metrics.elements[f]?.record(engine.elementCount(f)) }
        metrics.noLocalInternal.record(engine.noLocalEndpoints["internal"] ?? 0)
        metrics.noLocalExternal.record(engine.noLocalEndpoints["external"] ?? 0)
        let now = Date()
        for t in pendingTriggerTimes where now >= t {
            metrics.networkProgramming.recordNanoseconds(Int64(now.timeIntervalSince(t) * 1e9))
        }
        pendingTriggerTimes = []
        health.keepOnly(families)
        health.updated(families)
        health.setNodeEligible(engine.nodeEligible)
    }

    /// Checks cheaply (generation id) whether anyone touched the tables; if so re-reads them
    /// and repairs the difference. Returns the number of repair operations (0: nothing to do).
    @discardableResult
    func checkDrift() -> Int {
        guard initialized, !needFull, !ownsTables else { return 0 }
        // A writer still at work (e.g. flushing sets one command at a time) moves the
        // generation under the repair: the repair's batch is refused and the check runs again.
        for attempt in 0..<3 {
            do {
                return try repairDrift(force: attempt > 0)
            } catch let e as NetlinkError where e.kind == .generationMismatch {
                continue
            } catch {
                return driftCheckFailed(error)
            }
        }
        return driftCheckFailed(DaemonError("the tables kept changing during three repairs"))
    }

    private func driftCheckFailed(_ error: Error) -> Int {
        needFull = true
        metrics.syncFailures.increment()
        logger.error("drift check failed; a full resync follows", metadata: ["error": "\(error)"])
        wake.yield()
        return 0
    }

    /// One drift check: generation id, then read back and reconcile if it moved (`force`:
    /// after a refused repair, whose read-back already took the new generation as expected).
    private func repairDrift(force: Bool) throws -> Int {
        let generation = try dataplane.currentGeneration()
        if !force && generation == dataplane.expectedGeneration { return 0 }
        try dataplane.adopt(tables: ownTables, desired: nil)
        let report = try reconcileAll()
        if report.isNoOp { return 0 }
        metrics.driftRepairs.increment()
        purgeStaleAffinity(nil)
        logger.warning("repaired tables changed by someone else", metadata: [
            "operations": "\(report.transaction.operations.count)", "objects": "\(report.transaction.objectCount)",
        ])
        return report.transaction.operations.count
    }

    /// Deletes conntrack entries of UDP flows whose endpoint went away (one dump per
    /// family). Failures are logged; they never fail the sync.
    func clearStaleConntrack(_ targets: [ConntrackTarget]) {
        for family in Set(targets.map(\.family)) {
            let mine = targets.filter { $0.family == family }
            do {
                var deleted = 0
                for flow in try dataplane.conntrackFlows(family: Layout(family).family, proto: 17) {
                    guard let dst = IPAddress(addressText(flow.origDst)), let src = IPAddress(addressText(flow.replySrc)) else { continue }
                    let origDst = EndpointAddress(ip: dst, port: flow.origDstPort)
                    let replySrc = EndpointAddress(ip: src, port: flow.replySrcPort)
                    guard mine.contains(where: { $0.isStale(origDst: origDst, replySrc: replySrc, dnated: flow.isDNATed) }) else { continue }
                    if try dataplane.deleteConntrack(flow) { deleted += 1 }
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
    /// The kernel's connection counters, named by the accepted Services (one dump of each
    /// family's two counter sets); empty before the first sync or with counters off.
    func connectionCounts() -> ConnectionCounts {
        var counts = ConnectionCounts()
        guard initialized else { return counts }
        readCounters("connection", of: \.connectionCounters) { family, names in
            try counts.read(family, services: names) { try dataplane.readCounters($0, $1, set: $2) }
        }
        return counts
    }

    /// The kernel's traffic counters (`service-traffic`), named by the accepted Services; nil
    /// when no family counts traffic (`--traffic-counters` off) or before the first sync.
    func trafficCounts() -> TrafficCounts? {
        guard initialized, engine.compilers.values.contains(where: { $0.context.trafficCounters }) else { return nil }
        var counts = TrafficCounts()
        readCounters("traffic", of: \.trafficCounters) { family, names in
            try counts.read(family, services: names) { try dataplane.readCounters($0, $1, set: $2) }
        }
        return counts
    }

    /// Runs `read` for every family whose table has the counters (`has`), with the accepted
    /// Services' port names; a failed read is logged and never fails the caller.
    private func readCounters(_ what: String, of has: (FamilyContext) -> Bool, _ read: (IPFamily, ServicePortNames) throws -> Void) {
        let names = ServicePortNames(engine.accepted.values)
        for (family, compiler) in engine.compilers where has(compiler.context) {
            do {
                try read(family, names)
            } catch {
                logger.warning("reading \(what) counters failed", metadata: ["family": "\(family.rawValue)", "error": "\(error)"])
            }
        }
    }

    func purgeStaleAffinity(_ impact: AffinityValidity.Impact?) {
        if let impact, impact.isEmpty { return }
        for (family, compiler) in engine.compilers {
            let validity = impact.map { AffinityValidity(table: compiler, impact: $0) } ?? AffinityValidity(table: compiler)
            guard validity.mayRejectEntries else { continue }
            let skeleton = compiler.skeleton
            do {
                var purged = 0
                if let decl = skeleton.set(named: AffinityValidity.serviceMap) {
                    purged += try dataplane.purgeDynamicElements(skeleton.family, skeleton.name, set: decl) {
                        validity.isValidServiceEntry(key: $0, data: $1)
                    }
                }
                if let decl = skeleton.set(named: AffinityValidity.nodePortMap) {
                    purged += try dataplane.purgeDynamicElements(skeleton.family, skeleton.name, set: decl) {
                        validity.isValidNodePortEntry(key: $0, data: $1)
                    }
                }
                if purged > 0 {
                    metrics.affinityPurged.increment(by: purged)
                    logger.info("deleted stale ClientIP-affinity entries", metadata: ["family": "\(family.rawValue)", "entries": "\(purged)"])
                }
            } catch {
                logger.warning("affinity cleanup failed", metadata: ["family": "\(family.rawValue)", "error": "\(error)"])
            }
        }
    }

    /// Deletes Sluice's tables (`--cleanup-on-exit`).
    func cleanup() throws -> [Family] {
        try dataplane.deleteTablesIgnoringMissing(ownTables)
    }

    nonisolated func stopWaking() { wake.finish() }

    private nonisolated func log(_ d: Diagnostic) {
        if d.isError {
            metrics.invalidObjects.increment()
            logger.error("\(d.description)")
        } else {
            logger.warning("\(d.description)")
        }
    }
}

/// A test hook (`SLUICE_TEST_COLD_START_PAUSE=<file>`): once a streamed cold start has sent
/// `after` transactions (`SLUICE_TEST_COLD_START_PAUSE_AFTER`, default 1), it logs "cold
/// start paused (test hook)" and waits until `file` exists before sending the next. The
/// transactions sent are committed (the last perhaps still in flight), none after them, so a
/// test can kill the daemon in the middle of a cold start without racing it
/// (`ColdStartKillTests`). Unset (always, outside tests), it costs one `getenv` per cold
/// start.
struct ColdStartPauseHook {
    let file: String
    let after: Int

    static func fromEnvironment() -> ColdStartPauseHook? {
        guard let file = getenv("SLUICE_TEST_COLD_START_PAUSE").map({ String(cString: $0) }), !file.isEmpty else { return nil }
        let after = getenv("SLUICE_TEST_COLD_START_PAUSE_AFTER").flatMap { Int(String(cString: $0)) } ?? 1
        return ColdStartPauseHook(file: file, after: max(1, after))
    }

    /// Blocks the sync loop's thread until `file` exists (polled every 20 ms: a test hook).
    func wait(logger: Logger) {
        logger.warning("cold start paused (test hook)", metadata: ["transactionsSent": "\(after)", "until": "\(file)"])
        while access(file, F_OK) != 0 { usleep(20_000) }
        logger.warning("cold start resumed (test hook)")
    }
}

/// The process's resident memory now and at its peak (`VmRSS`, `VmHWM` of
/// `/proc/self/status`, one read), in MB, as log metadata.
func memoryMetadata() -> Logger.Metadata {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return [:] }
    var out: Logger.Metadata = [:]
    for line in status.split(separator: "\n") {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count >= 2, let kb = Int(words[1]) else { continue }
        if words[0] == "VmRSS:" { out["rssMB"] = "\(kb / 1024)" }
        if words[0] == "VmHWM:" { out["peakRSSMB"] = "\(kb / 1024)" }
    }
    return out
}

func seconds(_ d: Duration) -> String { String(format: "%.3f", Double(nanoseconds(d)) / 1e9) }

func nanoseconds(_ d: Duration) -> Int64 {
    d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
}
