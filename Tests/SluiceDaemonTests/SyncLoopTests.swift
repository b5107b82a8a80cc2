import Dispatch
import Foundation
import NIOConcurrencyHelpers
import SluiceCompiler
import SluiceDaemon
import SluiceIR
import SluiceModel
import ServiceLifecycle
import ServiceLifecycleTestKit
import SluiceNetlink
import Testing

/// A source the test drives: each `send` is delivered in order; `delivered` counts the
/// deltas the daemon has accepted.
final class ScriptedSource: ObjectSource, @unchecked Sendable {
    let name = "scripted"
    private let stream: AsyncStream<SourceDelta>
    private let continuation: AsyncStream<SourceDelta>.Continuation
    private let count = NIOLockedValueBox(0)

    init() { (stream, continuation) = AsyncStream.makeStream(of: SourceDelta.self) }

    func send(_ delta: SourceDelta) { continuation.yield(delta) }
    var delivered: Int { count.withLockedValue { $0 } }

    func run(deliver: @escaping @Sendable (SourceDelta) -> Void) async throws {
        for await delta in stream {
            deliver(delta)
            count.withLockedValue { $0 += 1 }
        }
    }
}

/// Objects of a YAML text as one upsert delta.
func delta(_ yaml: String, synced: Bool = true) -> SourceDelta {
    let loaded = ManifestLoader().parse(text: yaml, file: "m.yaml")
    var upserts: [ProxyObjectKey: SourcedObject] = [:]
    for s in loaded.objects.services { upserts[ProxyObject.service(s.object).key] = SourcedObject(.service(s.object), file: "m.yaml") }
    for s in loaded.objects.endpointSlices {
        upserts[ProxyObject.endpointSlice(s.object).key] = SourcedObject(.endpointSlice(s.object), file: "m.yaml")
    }
    return SourceDelta(upserts: upserts, synced: synced)
}

/// A gate a commit waits at: `hold()` makes the next commits block until `release()`.
final class CommitGate: @unchecked Sendable {
    private let state = NIOLockedValueBox((holding: false, waiting: 0))
    private let semaphore = DispatchSemaphore(value: 0)

    func hold() { state.withLockedValue { $0.holding = true } }
    var waiting: Int { state.withLockedValue { $0.waiting } }

    /// Called on the sync loop's thread before each commit.
    func arrive() {
        let block = state.withLockedValue { s -> Bool in
            if s.holding { s.waiting += 1 }
            return s.holding
        }
        if block { semaphore.wait() }
    }

    func release() {
        let n = state.withLockedValue { s -> Int in
            s.holding = false
            defer { s.waiting = 0 }
            return s.waiting
        }
        for _ in 0..<n { semaphore.signal() }
    }
}

@Suite("Sync loop with the fake dataplane (no kernel)", .timeLimit(.minutes(2)))
struct SyncLoopTests {
    func config(_ source: ScriptedSource, _ fake: FakeDataplane, chunk: Int? = nil) -> DaemonConfiguration {
        var c = DaemonConfiguration(options: testOptions(), sources: [source], healthzBindAddress: "127.0.0.1:0",
                                    metricsBindAddress: "127.0.0.1:0", healthCheckBindHost: "127.0.0.1")
        c.dataplane = { fake }
        c.watchCommits = false  // no kernel here: nothing to listen to
        if let chunk { c.coldStartChunk = chunk }
        return c
    }

    func services(_ n: Int, from first: Int = 0, endpoints: Int = 2) -> String {
        (first..<(first + n)).map { i in
            serviceYAML("s\(i)", clusterIP: "10.96.1.\(i + 1)") + "---\n"
                + sliceYAML("s\(i)-1", service: "s\(i)", ips: (0..<endpoints).map { "10.244.\(i).\($0 + 1)" })
        }.joined(separator: "---\n")
    }

    func batch(_ yaml: String) -> Ruleset {
        Pipeline.compile(objects: ManifestLoader().parse(text: yaml, file: "m.yaml").objects, options: testOptions()).ruleset
    }

    /// `sluice_sync_phase_duration_seconds{phase}`: one observation per phase for each sync that
    /// committed, and planning plus compiling within the sync's own time.
    @Test("each sync records its plan, compile, encode and kernel phases")
    func syncPhases() async throws {
        let source = ScriptedSource(), fake = FakeDataplane()
        source.send(delta(services(2)))
        try await withDaemon(config(source, fake)) { daemon in
            _ = try await waitUntil("first sync") { await daemon.commits() == 1 }
            let port = try await boundMetricsPort(daemon)
            func scrape() throws -> String { try httpGet(port: port, path: "/metrics").body }
            func phase(_ m: String, _ p: String, _ s: String) -> Double {
                metricValue(m, "sluice_sync_phase_duration_seconds_\(s){phase=\"\(p)\"}") ?? 0
            }
            let before = try scrape()
            source.send(delta(sliceYAML("s0-1", service: "s0", ips: ["10.244.0.9"])))
            _ = try await waitUntil("the change's sync") { await daemon.commits() == 2 }
            // The sync's metrics follow its commit: wait for the sync's own observation.
            let sync = "kubeproxy_sync_proxy_rules_duration_seconds"
            var after = ""
            _ = try await waitUntil("the sync recorded") {
                after = try scrape()
                return (metricValue(after, sync + "_count") ?? 0) > (metricValue(before, sync + "_count") ?? 0)
            }
            for p in ["plan", "compile", "encode", "kernel"] {
                #expect(phase(after, p, "count") - phase(before, p, "count") == 1, "phase \(p)")
            }
            let planAndCompile = ["plan", "compile"].reduce(0.0) { $0 + phase(after, $1, "sum") - phase(before, $1, "sum") }
            let syncTime = (metricValue(after, sync + "_sum") ?? 0) - (metricValue(before, sync + "_sum") ?? 0)
            #expect(planAndCompile > 0 && planAndCompile <= syncTime, "plan + compile \(planAndCompile) s, sync \(syncTime) s")
        }
    }

    /// A relist or a backlog after a stalled watch arrives as one large batch; its transient
    /// peak is handed back to the OS once committed, while small batches never pay for it.
    @Test("the heap is trimmed after a batch of at least 1000 objects, not after small ones")
    func heapTrimmedAfterLargeBatches() async throws {
        let source = ScriptedSource(), fake = FakeDataplane()
        source.send(delta(services(10)))
        try await withDaemon(config(source, fake)) { daemon in
            _ = try await waitUntil("first sync") { await daemon.commits() == 1 }
            source.send(delta(sliceYAML("s0-1", service: "s0", ips: ["10.244.0.9"])))
            _ = try await waitUntil("a small change's sync") { await daemon.commits() == 2 }
            // 500 more services and their slices: 1000 objects in one delta, one batch.
            let large = (10..<510).map { i in
                let (a, b) = (i / 250, i % 250 + 1)
                return serviceYAML("s\(i)", clusterIP: "10.96.\(2 + a).\(b)") + "---\n"
                    + sliceYAML("s\(i)-1", service: "s\(i)", ips: ["10.245.\(a).\(b)"])
            }.joined(separator: "---\n")
            source.send(delta(large))
            _ = try await waitUntil("the large batch trimmed") { await daemon.heapTrims() >= 1 }
            // Syncs run one at a time: the first two (10 and 1 objects) ended before this one began.
            let (trims, commits) = (await daemon.heapTrims(), await daemon.commits())
            #expect(trims == 1 && commits == 3)
            let s0 = serviceYAML("s0", clusterIP: "10.96.1.1") + "---\n" + sliceYAML("s0-1", service: "s0", ips: ["10.244.0.9"])
            #expect(diff(fake.kernelState, batch([s0, services(9, from: 1), large].joined(separator: "---\n"))).isEmpty)
        }
    }

    /// kube-proxy observes a slice's `last-change-trigger-time` only if it is later than the
    /// proxy's start (`trackerStartTime`): after a restart the first lists carry every slice's
    /// last change, often days old, which is no latency of this process.
    @Test("network programming latency: trigger times from before the start are not observed, later ones are")
    func triggerTimesBeforeTheStartAreNotObserved() async throws {
        let source = ScriptedSource(), fake = FakeDataplane()
        let old = ["endpoints.kubernetes.io/last-change-trigger-time": "2020-01-01T00:00:00Z"]
        source.send(delta(serviceYAML("web", clusterIP: "10.96.1.1") + "---\n"
            + sliceYAML("web-1", service: "web", ips: ["10.244.0.1"], annotations: old)))
        try await withDaemon(config(source, fake)) { daemon in
            _ = try await waitUntil("first sync") { await daemon.commits() == 1 }
            let port = try await boundMetricsPort(daemon)
            func observed() throws -> Double? {
                metricValue(try httpGet(port: port, path: "/metrics").body, "kubeproxy_network_programming_duration_seconds_count")
            }
            #expect(try observed() ?? 0 == 0, "the first list's trigger time from 2020 was observed")
            source.send(delta(sliceYAML("web-1", service: "web", ips: ["10.244.0.1", "10.244.0.2"], annotations: await freshTriggerTime())))
            _ = try await waitUntil("the update's sync") { await daemon.commits() == 2 }
            #expect(try observed() == 1)
            let sum = try #require(metricValue(try httpGet(port: port, path: "/metrics").body,
                                               "kubeproxy_network_programming_duration_seconds_sum"))
            #expect(sum >= 0 && sum < 3600, "the update's latency is its own, not the 2020 one: \(sum) s")
        }
    }

    @Test("changes that arrive while a commit is in flight go out together in the next commit")
    func coalescesWhileCommitting() async throws {
        let source = ScriptedSource(), fake = FakeDataplane(), gate = CommitGate()
        fake.beforeCommit = { gate.arrive() }
        source.send(delta(services(3)))
        try await withDaemon(config(source, fake)) { daemon in
            _ = try await waitUntil("first sync") { await daemon.commits() == 1 }
            let afterFirst = fake.commitCount
            gate.hold()
            // One change starts a commit, which the gate holds in flight.
            source.send(delta(sliceYAML("s0-1", service: "s0", ips: ["10.244.0.9"])))
            _ = try await waitUntil("commit in flight") { gate.waiting == 1 }
            // 40 more changes arrive while it is held.
            for i in 0..<40 {
                let yaml = sliceYAML("s\(i % 3)-1", service: "s\(i % 3)", ips: ["10.244.\(i % 3).\(100 + i)"])
                source.send(delta(yaml))
            }
            _ = try await waitUntil("all delivered") { source.delivered == 42 }
            gate.release()
            _ = try await waitUntil("coalesced commit") { await daemon.commits() == 3 }
            #expect(fake.commitCount == afterFirst + 2, "41 changes: one held commit plus one coalesced commit")
            let last = (0..<3).map { s in (0..<40).last { $0 % 3 == s }! }
            let expected = (0..<3).map { s in
                serviceYAML("s\(s)", clusterIP: "10.96.1.\(s + 1)") + "---\n"
                    + sliceYAML("s\(s)-1", service: "s\(s)", ips: ["10.244.\(s).\(100 + last[s])"])
            }.joined(separator: "---\n")
            #expect(diff(fake.kernelState, batch(expected)).isEmpty)
        }
    }

    @Test("first sync into an empty kernel is streamed: several atomic transactions of whole services, no diff")
    func firstSyncStreams() async throws {
        let source = ScriptedSource(), fake = FakeDataplane()
        let text = services(12, endpoints: 3)
        source.send(delta(text))
        try await withDaemon(config(source, fake, chunk: 10)) { daemon in
            _ = try await waitUntil("first sync") { await daemon.commits() == 1 }
            let txs = fake.transactions
            #expect(txs.count > 3, "12 services × (3 slots + VIP) elements in chunks of ~10: \(txs.count) transactions")
            #expect(txs.first?.operations.contains { if case .addTable = $0 { return true }; return false } == true)
            // Each later transaction only adds elements of whole services (no deletes, no flushes).
            for tx in txs.dropFirst() {
                #expect(tx.operations.allSatisfy { if case .addElements = $0 { return true }; return false })
            }
            #expect(diff(fake.kernelState, batch(text)).isEmpty)
            // The element-count metric comes from the engine's store.
            let body = try httpGet(port: try await boundMetricsPort(daemon), path: "/metrics").body
            let elements = batch(text).tables.first { $0.family == .ip }!.elementCount
            #expect(metricValue(body, "sluice_nftables_elements{ip_family=\"\(IPFamily.ipv4.rawValue)\"}") == Double(elements))
        }
    }

    @Test("parts that arrive before the source is synced are staged (validated and counted), not committed; the first sync plans and commits them all")
    func stagesBeforeSynced() async throws {
        let source = ScriptedSource(), fake = FakeDataplane()
        source.send(delta(services(4), synced: false))
        source.send(delta(services(4, from: 4), synced: false))
        try await withDaemon(config(source, fake)) { daemon in
            // Staged: the planner counted every service of both parts; nothing went to the kernel.
            _ = try await waitUntil("two parts staged") {
                daemon.metrics.exposition().contains("kubeproxy_sync_proxy_rules_service_changes_total 8")
            }
            #expect(fake.commitCount == 0 && fake.transactions.isEmpty)
            #expect(await daemon.commits() == 0)
            source.send(delta(services(4, from: 8), synced: true))
            _ = try await waitUntil("first sync") { await daemon.commits() == 1 }
            #expect(diff(fake.kernelState, batch(services(12))).isEmpty)
            #expect(daemon.metrics.exposition().contains("kubeproxy_sync_proxy_rules_service_changes_total 12"))
        }
    }

    @Test("a failed commit is retried as a full resync and converges")
    func failedCommitConverges() async throws {
        let source = ScriptedSource(), fake = FakeDataplane()
        var c = config(source, fake)
        c.retryPeriod = .milliseconds(10)
        source.send(delta(services(2)))
        try await withDaemon(c) { daemon in
            _ = try await waitUntil("first sync") { await daemon.commits() == 1 }
            fake.failNextCommit(with: DaemonError("injected"))
            let changed = sliceYAML("s1-1", service: "s1", ips: ["10.244.1.50"])
            source.send(delta(changed))
            let want = batch(serviceYAML("s0", clusterIP: "10.96.1.1") + "---\n" + sliceYAML("s0-1", service: "s0", ips: ["10.244.0.1", "10.244.0.2"])
                             + "---\n" + serviceYAML("s1", clusterIP: "10.96.1.2") + "---\n" + changed)
            _ = try await waitUntil("converged") { diff(fake.kernelState, want).isEmpty }
            #expect(daemon.metrics.exposition().contains("kubeproxy_sync_proxy_rules_nftables_sync_failures_total 1"))
        }
    }

    /// With `refusedOnce`, the repair's first batch is refused because someone is still writing
    /// (the generation moved): the check runs again instead of counting a sync failure.
    @Test("drift: a table deleted by someone else is repaired on the next check (also when the first repair is refused)",
          arguments: [false, true])
    func driftRepaired(refusedOnce: Bool) async throws {
        let source = ScriptedSource(), fake = FakeDataplane()
        let text = services(2)
        source.send(delta(text))
        try await withDaemon(config(source, fake)) { daemon in
            _ = try await waitUntil("first sync") { await daemon.commits() == 1 }
            try fake.tamper(Transaction([.deleteTable(.ip, Layout.tableName)]))
            if refusedOnce {
                fake.failNextCommit(with: NetlinkError(kind: .generationMismatch, errno: ERESTART, operation: "NFNL_MSG_BATCH_BEGIN"))
            }
            #expect(await daemon.checkDrift() > 0)
            #expect(diff(fake.kernelState, batch(text)).isEmpty)
            let body = try httpGet(port: try await boundMetricsPort(daemon), path: "/metrics").body
            #expect(metricValue(body, "sluice_drift_repairs_total") == 1)
            #expect(metricValue(body, "kubeproxy_sync_proxy_rules_nftables_sync_failures_total") == 0)
        }
    }

    @Test("graceful shutdown: sources stop, the servers close, the rules stay (and go with cleanupOnExit)", arguments: [false, true])
    func gracefulShutdownStops(cleanupOnExit: Bool) async throws {
        let source = ScriptedSource(), fake = FakeDataplane()
        var c = config(source, fake)
        c.cleanupOnExit = cleanupOnExit
        source.send(delta(services(2)))
        let daemon = Daemon(configuration: c, logger: testLogger)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await daemon.run() }
                _ = try await waitUntil("first sync") { await daemon.commits() == 1 }
                let port = try await boundHealthzPort(daemon)
                #expect(try httpGet(port: port, path: "/healthz").status == 200)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
                #expect(throws: (any Error).self) { try httpGet(port: port, path: "/healthz") }
            }
        }
        #expect((fake.kernelState.table(.ip, Layout.tableName) == nil) == cleanupOnExit)
    }
}
