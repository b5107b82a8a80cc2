import Foundation
import SluiceCompiler
import SluiceKubeFake
import SluiceModel
import SluiceNetlink

/// Where a change is written: the fake API server (a watch event) or a manifest file.
protocol ChangeSink: Sendable {
    func write(service i: Int, _ cluster: DaemonCluster) throws
    /// Writes several changes; returns the moment they were all queued for the daemon.
    func writeQueued(services: [Int], _ cluster: DaemonCluster) throws -> Double
    /// Writes one change; returns the moment the daemon could first see it.
    func writeTimed(service i: Int, _ cluster: DaemonCluster) throws -> Double
}

extension ChangeSink {
    /// A file edit: the clock starts before the file is written.
    func writeTimed(service i: Int, _ cluster: DaemonCluster) throws -> Double {
        let t0 = CommitMonitor.now()
        try write(service: i, cluster)
        return t0
    }

    func writeQueued(services: [Int], _ cluster: DaemonCluster) throws -> Double {
        let t0 = CommitMonitor.now()
        for i in services { try write(service: i, cluster) }
        return t0
    }
}

struct APISink: ChangeSink {
    let server: FakeAPIServer
    func write(service i: Int, _ cluster: DaemonCluster) throws {
        try server.applyJSON(.endpointSlices, cluster.sliceJSON(i))
    }

    /// The clock starts when the fake server has stored the change and queued its watch
    /// event (its own stamp, taken under its lock: a clock read after the write returns
    /// can come after the commit on 2 busy cores): its JSON parsing and storing (≈ 0.6 ms
    /// here) is no part of the proxy's latency.
    func writeTimed(service i: Int, _ cluster: DaemonCluster) throws -> Double {
        try write(service: i, cluster)
        return server.lastEventQueuedAt
    }

    /// The writes' watch events go out together when the batch ends, as a burst of queued
    /// events reaches a real proxy (the fake server's write path is slower than a commit).
    func writeQueued(services: [Int], _ cluster: DaemonCluster) throws -> Double {
        var queued = 0.0
        try server.batch {
            for i in services { try write(service: i, cluster) }
        }
        queued = server.lastEventQueuedAt
        return queued
    }
}

struct DirectorySink: ChangeSink {
    let files: ManifestFiles
    func write(service i: Int, _ cluster: DaemonCluster) throws {
        try files.rewrite(service: i, cluster)
    }
}

/// Runs an async body to completion from synchronous code (the worker's main thread is not
/// one of the cooperative pool's threads).
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let sem = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        sem.signal()
    }
    sem.wait()
    return try box.result!.get()
}

final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
    init() {}
}

/// IPv4 elements of the table the daemon should build for `scale` (same plans and node
/// context as the engine benchmark).
public func expectedElementCount(_ scale: Scale) -> Int {
    Compiler.compile(FamilyPlan(context: Generator.context(), servicePorts: Generator.services(scale))).table.elementCount
}

/// The newest change (`DaemonCluster.changeID`) an added element of this commit carries.
func newestChange(in e: CommitEvent) -> Int? {
    e.elements.lazy.filter(\.added).compactMap {
        max(DaemonCluster.changeID(inElementBytes: $0.key) ?? -1, DaemonCluster.changeID(inElementBytes: $0.data) ?? -1)
    }.filter { $0 >= 0 }.max()
}

/// The commit that carries change `id` (or a newer one): its time and how many commits were read.
func waitForChange(_ id: Int, _ monitor: CommitMonitor, timeout: Double) -> (time: Double, commits: Int)? {
    let deadline = CommitMonitor.now() + timeout
    var commits = 0
    while case let left = deadline - CommitMonitor.now(), left > 0, let e = monitor.next(timeout: left) {
        commits += 1
        if let n = newestChange(in: e), n >= id { return (e.time, commits) }
    }
    return nil
}

/// Process start → the commit after which the kernel holds `expected` IPv4 elements (counted
/// from the element notifications). If the count never matches, the daemon's /metrics decide
/// once it reports a first sync with the kernel's count and no commit came for a second.
func waitFirstSync(_ monitor: CommitMonitor, _ daemon: DaemonProcess, expected: Int, timeout: Double) throws -> FirstSync {
    var sync = FirstSync(seconds: nil, detection: "timeout", commits: 0, expectedElements: expected, kernelElements: 0)
    var lastCommit: Double?
    let deadline = daemon.startTime + timeout
    while CommitMonitor.now() < deadline {
        guard daemon.isRunning else { throw BenchError("sluice run exited (status \(daemon.process.terminationStatus)):\n\(daemon.logTail())") }
        guard let e = monitor.next(timeout: 1) else {
            // Lost notifications (a full receive buffer) make the kernel count unreliable: then
            // the daemon's first full sync and a quiet second decide alone.
            if let last = lastCommit, let m = daemon.metrics(), (m["sluice_syncs_total{kind=\"full\"}"] ?? 0) >= 1,
               monitor.overruns > 0 || Int(m["sluice_nftables_elements{ip_family=\"IPv4\"}"] ?? -1) == sync.kernelElements {
                sync.seconds = last - daemon.startTime
                sync.detection = "metrics"
                return sync
            }
            continue
        }
        sync.commits += 1
        sync.kernelElements += (e.elementsAdded[.ip] ?? 0) - (e.elementsDeleted[.ip] ?? 0)
        if sync.firstCommitSeconds == nil { sync.firstCommitSeconds = e.time - daemon.startTime }
        lastCommit = e.time
        if sync.kernelElements == expected {
            sync.seconds = e.time - daemon.startTime
            sync.detection = "elementCount"
            return sync
        }
    }
    return sync
}

/// Process start → the end of the daemon's first full sync, read from its /metrics (polled
/// every 50 ms; the time is the daemon's `kubeproxy_sync_proxy_rules_last_timestamp_seconds`,
/// stamped after the kernel acknowledged the last batch, not the poll's), once it reports
/// `expected` IPv4 elements.
func waitFirstSyncMetrics(_ daemon: DaemonProcess, expected: Int, timeout: Double) throws -> FirstSync {
    var sync = FirstSync(seconds: nil, detection: "timeout", commits: 0, expectedElements: expected, kernelElements: 0)
    let deadline = daemon.startTime + timeout
    while CommitMonitor.now() < deadline {
        guard daemon.isRunning else { throw BenchError("sluice run exited (status \(daemon.process.terminationStatus)):\n\(daemon.logTail())") }
        if let m = daemon.metrics(), (m["sluice_syncs_total{kind=\"full\"}"] ?? 0) >= 1,
           let elements = m["sluice_nftables_elements{ip_family=\"IPv4\"}"], Int(elements) == expected,
           let end = m["kubeproxy_sync_proxy_rules_last_timestamp_seconds"] {
            sync.seconds = end - daemon.startWallTime
            sync.detection = "metrics"
            sync.commits = Int(m["sluice_syncs_total{kind=\"full\"}"] ?? 0)
            sync.kernelElements = Int(elements)
            return sync
        }
        usleep(50_000)
    }
    return sync
}

/// `n` single endpoint changes, one at a time: write → the commit carrying it.
func singleChanges(_ n: Int, _ cluster: inout DaemonCluster, _ sink: ChangeSink, _ monitor: CommitMonitor,
                   timeout: Double, progress: ProgressSink) throws -> (Metric, Summary?, missed: Int) {
    var latencies: [Double] = [], commits: [Double] = []
    var missed = 0
    _ = monitor.drain()
    for k in 0..<n {
        if k % 10 == 0 { progress("event → kernel", k, n) }
        let i = Generator.pick(k + 1, services: cluster.scale.services)
        let id = cluster.change(service: i)
        let t0 = try sink.writeTimed(service: i, cluster)
        guard let (t, c) = waitForChange(id, monitor, timeout: timeout) else { missed += 1; continue }
        latencies.append(t - t0)
        commits.append(Double(c))
    }
    return (.latency(latencies, complete: missed == 0, wanted: n), Summary(commits), missed)
}

/// `n` changes written back to back → the commit carrying the last one.
func burst(_ n: Int, _ cluster: inout DaemonCluster, _ sink: ChangeSink, _ monitor: CommitMonitor, timeout: Double) throws -> DaemonBurst {
    _ = monitor.drain()
    var last = 0
    var changed: [Int] = []
    for k in 0..<n {
        let i = Generator.pick(k + 5_000_000, services: cluster.scale.services)
        last = cluster.change(service: i)
        changed.append(i)
    }
    // Every write then carries the cluster's final state of its slice: the last change wins.
    let t0 = try sink.writeQueued(services: changed, cluster)
    guard let (t, c) = waitForChange(last, monitor, timeout: timeout) else { return DaemonBurst(changes: n, seconds: nil, commits: 0) }
    return DaemonBurst(changes: n, seconds: t - t0, commits: c)
}
