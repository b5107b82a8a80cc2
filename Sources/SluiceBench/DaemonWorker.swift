import Foundation
import SluiceKubeFake
import SluiceNetlink
import SluiceModel

/// The daemon scenario of one source at one scale, run by a worker process inside the
/// benchmark's network namespace (`sluice bench --daemon-worker SOURCE`): the fake API server
/// (or the manifest directory), a commit monitor, and a `sluice run` child, stopped at the end.
public final class DaemonWorker {
    let source: DaemonSource
    let scale: Scale
    let options: DaemonBenchOptions
    let executable: String
    let progress: ProgressSink
    /// Called with the daemon's pid right after the spawn (the parent kills it on Ctrl-C).
    let onDaemonStart: (Int32) -> Void
    let dir: String
    var cluster: DaemonCluster
    var server: FakeAPIServer?
    /// The soak's faults (`options.soak`), set up with the server.
    var faults: SoakFaultInjector?

    public init(source: DaemonSource, scale: Scale, options: DaemonBenchOptions, executable: String,
                progress: @escaping ProgressSink, onDaemonStart: @escaping (Int32) -> Void) {
        self.source = source
        self.scale = scale
        self.options = options
        self.executable = executable
        self.progress = progress
        self.onDaemonStart = onDaemonStart
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-bench-daemon-\(randomTag(8))").path
        cluster = DaemonCluster(scale: scale)
    }

    public func run() -> DaemonSourceResult {
        var result = DaemonSourceResult(source: source)
        defer {
            if let server { _ = try? blocking { try await server.shutdown() } }
            // SLUICE_BENCH_KEEP=1 keeps the daemon's log and manifests for a look afterwards.
            if ProcessInfo.processInfo.environment["SLUICE_BENCH_KEEP"] == nil {
                try? FileManager.default.removeItem(atPath: dir)
            } else {
                FileHandle.standardError.write(Data("sluice bench: kept \(dir)\n".utf8))
            }
        }
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            progress("preparing \(source.rawValue) objects", 0, 1)
            let (sink, args) = try prepareSource()
            let expected = expectedElementCount(scale)
            let daemon = try DaemonProcess(executable: executable, arguments: Self.nodeArguments + args,
                                           logPath: "\(dir)/sluice-run.log", metricsPort: 10249)
            defer { daemon.stop() }
            let monitor = try measureFirstSync(daemon, expected: expected, into: &result)
            defer { monitor.stop() }
            try measure(daemon, monitor, sink, into: &result)
            result.monitorOverruns = monitor.overruns
            if let f = monitor.failure { result.notes.append("commit monitor: \(f)") }
        } catch {
            result.error = "\(error)"
        }
        return result
    }

    /// Node flags of the daemon: the same node context as the engine benchmark's.
    /// The daemon's node flags (`KernelComparison` compiles with the same ones).
    static let nodeFlags = NodeOptionFlags(hostnameOverride: DaemonCluster.nodeName, clusterCIDR: "10.244.0.0/16", nodeIPs: ["10.200.1.1"])
    static let nodeArguments = ["--hostname-override", nodeFlags.hostnameOverride!, "--cluster-cidr", nodeFlags.clusterCIDR!]
        + nodeFlags.nodeIPs.flatMap { ["--node-ip", $0] }

    /// Starts the daemon and waits for its first sync. By default the commit monitor joins
    /// NFNLGRP_NFTABLES only afterwards: while anyone listens, the kernel builds a
    /// notification for every element committed, which a daemon on a node does not pay
    /// (`options.firstSyncFromKernel` keeps the listener on and counts the elements instead).
    func measureFirstSync(_ daemon: DaemonProcess, expected: Int, into result: inout DaemonSourceResult) throws -> CommitMonitor {
        progress("first sync", 0, 1)
        var monitor: CommitMonitor? = options.firstSyncFromKernel ? try CommitMonitor(receiveBufferBytes: 256 << 20) : nil
        try daemon.start(clock: CommitMonitor.now)
        onDaemonStart(daemon.pid)
        let first = try monitor.map { try waitFirstSync($0, daemon, expected: expected, timeout: options.timeout) }
            ?? waitFirstSyncMetrics(daemon, expected: expected, timeout: options.timeout)
        result.firstSync = first
        result.rssAfterFirstSyncBytes = daemon.status("VmHWM")
        guard first.seconds != nil else {
            monitor?.stop()
            throw BenchError("first sync not seen within \(options.timeout) s:\n\(daemon.logTail())")
        }
        if monitor == nil { monitor = try CommitMonitor(receiveBufferBytes: 256 << 20) }
        return monitor!
    }

    /// A scrape that already counts `syncs` more syncs than `before`: the daemon records a
    /// sync's metrics just after its commit, which the commit monitor may see first.
    /// Gives up after the timeout and returns the last scrape.
    func metricsAfterSyncs(_ daemon: DaemonProcess, before: [String: Double], syncs: Int) -> [String: Double] {
        let key = DaemonSyncAccount.sync + "_count"
        let deadline = Date().addingTimeInterval(min(options.timeout, 60))
        var after = daemon.metrics() ?? [:]
        while (after[key] ?? 0) - (before[key] ?? 0) < Double(syncs) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
            after = daemon.metrics() ?? [:]
        }
        return after
    }

    func measure(_ daemon: DaemonProcess, _ monitor: CommitMonitor, _ sink: ChangeSink,
                 into result: inout DaemonSourceResult) throws {
        monitor.captureElements = true
        let n = source == .api ? options.samples : options.directorySamples
        if n > 0 {
            let before = daemon.metrics() ?? [:]
            let (m, commits, missed) = try singleChanges(n, &cluster, sink, monitor, timeout: min(options.timeout, 60), progress: progress)
            result.singleChangeSyncs = DaemonSyncAccount(before: before, after: metricsAfterSyncs(daemon, before: before, syncs: n - missed))
            result.eventToKernel = m
            result.commitsPerChange = commits
            result.missedChanges = missed
        }
        if source == .api { try churnAndBurst(daemon, sink, monitor, into: &result) }
        if let server, let faults {
            result.soak = try SoakRunner(daemon: daemon, monitor: monitor, server: server, faults: faults, progress: progress).run(&cluster, sink)
        }
        result.peakRSSBytes = daemon.status("VmHWM")
        result.rssAtEndBytes = daemon.status("VmRSS")
        result.daemonMetrics = (daemon.metrics() ?? [:]).filter { k, _ in Self.keptMetrics.contains { k.hasPrefix($0) } }
        if !daemon.isRunning { result.notes.append("sluice run exited early:\n\(daemon.logTail())") }
    }

    func churnAndBurst(_ daemon: DaemonProcess, _ sink: ChangeSink, _ monitor: CommitMonitor,
                       into result: inout DaemonSourceResult) throws {
        if options.burst > 0 {
            progress("burst of \(options.burst)", 0, 1)
            let before = daemon.metrics() ?? [:]
            var b = try burst(options.burst, &cluster, sink, monitor, timeout: options.timeout)
            if b.seconds != nil {
                b.syncs = DaemonSyncAccount(before: before, after: metricsAfterSyncs(daemon, before: before, syncs: b.commits))
            }
            result.burst = b
        }
        if options.churnSeconds > 0 {
            result.churn = try churn(rate: options.churnRate, seconds: options.churnSeconds, maxLag: options.churnMaxLag,
                                     &cluster, sink, monitor, timeout: options.timeout, progress: progress)
        }
    }

    static let keptMetrics = ["sluice_nftables_elements", "sluice_syncs_total", "kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
                              "kubeproxy_sync_proxy_rules_endpoint_changes_total", "kubeproxy_sync_proxy_rules_duration_seconds_sum",
                              "kubeproxy_sync_proxy_rules_duration_seconds_count", "sluice_commit_duration_seconds_sum",
                              "sluice_commit_duration_seconds_count", "sluice_sync_phase_duration_seconds_sum",
                              "sluice_sync_phase_duration_seconds_count"]

    /// Loads the objects into the fake API server (and writes a kubeconfig for it), or writes
    /// the manifest files; returns where changes go and the daemon's source flags.
    func prepareSource() throws -> (ChangeSink, [String]) {
        switch source {
        case .api:
            // The default history window (10k events): the server trims it on every write.
            var configuration = FakeAPIServer.Configuration()
            configuration.watchList = true   // 1.34+: the daemon lists by watch (KUBE_FEATURE_WatchListClient=false: paged lists)
            let fixed = configuration
            let server = try blocking { try await FakeAPIServer.start(fixed) }
            self.server = server
            try server.applyJSON(.nodes, DaemonCluster.nodeJSON)
            try server.applyJSON(.serviceCIDRs, DaemonCluster.serviceCIDRJSON)
            for i in 0..<scale.services {
                try server.applyJSON(.services, cluster.serviceJSON(i))
                try server.applyJSON(.endpointSlices, cluster.sliceJSON(i))
            }
            let kubeconfig = "\(dir)/kubeconfig"
            var user = "token: bench"
            var extraArguments: [String] = []
            if let soak = options.soak {
                // The soak rotates the token: the daemon reads it from a file, as a projected one.
                let tokenFile = "\(dir)/token"
                faults = try SoakFaultInjector(server: server, tokenFile: tokenFile, options: soak)
                user = "tokenFile: \(tokenFile)"
                extraArguments = ["--watch-progress-timeout", "\(soak.watchProgressTimeout)"]
            }
            try Self.kubeconfig(server: server.url, user: user).write(toFile: kubeconfig, atomically: true, encoding: .utf8)
            return (APISink(server: server), ["--kubeconfig", kubeconfig] + extraArguments)
        case .directory:
            let files = ManifestFiles(dir: "\(dir)/manifests", json: options.jsonManifests)
            try files.writeAll(cluster)
            return (DirectorySink(files: files), ["--source", files.dir])
        }
    }

    /// A kubeconfig for the fake server; `user` is the user's credential line.
    static func kubeconfig(server: String, user: String) -> String {
        """
        apiVersion: v1
        kind: Config
        current-context: bench
        contexts:
        - name: bench
          context: {cluster: bench, user: bench}
        clusters:
        - name: bench
          cluster:
            server: \(server)
        users:
        - name: bench
          user:
            \(user)

        """
    }
}
