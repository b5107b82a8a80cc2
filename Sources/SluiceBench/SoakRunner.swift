import Foundation
import SluiceKubeFake
import SluiceNetlink

/// Runs the soak against a daemon that finished its first sync: the paced producer writes
/// the changes while the injector breaks the server's connections, a reader matches the
/// kernel's commits to the changes, a sampler follows RSS and open files; at the end it
/// waits for the kernel to equal a fresh compile of the server's objects.
struct SoakRunner {
    let daemon: DaemonProcess
    let monitor: CommitMonitor
    let server: FakeAPIServer
    let faults: SoakFaultInjector
    let progress: ProgressSink
    var options: SoakOptions { faults.options }

    static let networkProgramming = "kubeproxy_network_programming_duration_seconds"

    func run(_ cluster: inout DaemonCluster, _ sink: ChangeSink) throws -> DaemonSoak {
        _ = monitor.drain()
        let before = daemon.metrics() ?? [:]
        let requestsBefore = server.requests.count
        let filesStart = daemon.openFiles() ?? [:]
        faults.begin()
        let t0 = CommitMonitor.now()
        let sampler = DaemonSampler(daemon, interval: options.sampleSeconds, start: t0)
        sampler.run()
        let bookmarks = BookmarkTicker(server, interval: options.bookmarkSeconds)
        let ledger = ChurnLedger(firstID: cluster.nextChange)
        let reader = CommitReader(monitor, into: ledger)
        defer { reader.stop(); _ = sampler.stop(); bookmarks.stop() }
        let producer = PacedProducer(rate: options.rate, total: options.changes, seed: 13_000_000, label: "soak \(Int(options.rate))/s")
        let (written, _) = try producer.run(from: t0, seconds: nil, &cluster, sink, ledger, progress: progress,
                                            beforeChange: faults.beforeChange)
        let lastWrite = CommitMonitor.now()
        try faults.finish()
        progress("soak: waiting for the kernel", 0, 1)
        let (outcome, convergeSeconds) = try converge(ledger)
        reader.stop()
        // Connections the faults cut are reopened by now; one more sample is the end, then
        // one a second until RSS stops falling (the last fault's transient handed back).
        let end = sampler.sample()
        _ = sampler.stop()
        progress("soak: waiting for RSS to settle", 0, 1)
        let settled = sampler.settle(from: end, interval: 1)
        let samples = sampler.stop()
        let warm = Self.warmSample(samples, soakSeconds: options.seconds)
        let after = daemon.metrics() ?? [:]
        let answers = server.requests.dropFirst(requestsBefore)
        let commitEnd = ledger.lastCommit
        return DaemonSoak(
            options: options, written: written, writeSeconds: lastWrite - t0, writeRate: Double(written) / max(lastWrite - t0, 1e-9),
            committedRate: commitEnd.map { Double(ledger.committed) / max($0 - t0, 1e-9) } ?? 0,
            lag: Summary(ledger.lags), commits: ledger.commits, drained: ledger.drained,
            drainSeconds: ledger.drained ? commitEnd.map { $0 - lastWrite } : nil,
            faults: Dictionary(uniqueKeysWithValues: faults.injected.map { ($0.key.rawValue, $0.value) }),
            stallRecoveries: faults.stallRecoveries,
            serverAnswers: Dictionary(grouping: answers, by: { String($0.status) }).mapValues(\.count),
            watchesOpened: answers.filter(\.isWatch).count,
            samples: samples, warmSample: warm, endSample: end, settledSample: settled.last, settled: settled.settled,
            rss: SoakRSS(samples: samples, warm: warm, end: end, settled: settled.last),
            openFilesStart: filesStart, openFilesEnd: daemon.openFiles() ?? [:],
            convergeSeconds: convergeSeconds, kernelEqualsCompile: outcome.equal, kernelDifferences: outcome.differences,
            networkProgramming: PrometheusHistogram(Self.networkProgramming, before: before, after: after),
            syncs: DaemonSyncAccount(before: before, after: after))
    }

    /// Waits for the ledger to drain (checking the kernel every 5 s meanwhile, in case
    /// notifications were lost), then for the kernel to equal the compile; the outcome and
    /// the seconds since the call.
    func converge(_ ledger: ChurnLedger) throws -> (KernelComparison.Outcome, Double) {
        let start = CommitMonitor.now()
        let deadline = start + options.convergeTimeout
        let comparison = try KernelComparison(server: server)
        var nextCheck = start + 5
        while !ledger.drained && CommitMonitor.now() < deadline {
            if CommitMonitor.now() >= nextCheck {
                if try comparison.check().equal { break }
                nextCheck = CommitMonitor.now() + 5
            }
            usleep(10_000)
        }
        let (outcome, _) = try comparison.waitEqual(timeout: max(0, deadline - CommitMonitor.now()))
        return (outcome, CommitMonitor.now() - start)
    }

    /// The first sample after the warm-up (a tenth of the soak, at most 60 s).
    static func warmSample(_ samples: [SoakSample], soakSeconds: Double) -> SoakSample? {
        let warm = min(60, soakSeconds / 10)
        return samples.first { $0.seconds >= warm } ?? samples.last
    }
}
