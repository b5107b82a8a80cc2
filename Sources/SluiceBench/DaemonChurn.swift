import Foundation
import SluiceNetlink

/// Write times of the churn's changes and what the kernel committed of them. Changes are
/// committed in write order (one watch stream), so a commit carrying change m commits every
/// change up to m.
final class ChurnLedger: @unchecked Sendable {
    private let lock = NSLock()
    let firstID: Int
    private var writeTimes: [Double] = []
    private(set) var committed = 0
    private(set) var lags: [Double] = []
    private(set) var commits = 0
    private(set) var lastCommit: Double?

    init(firstID: Int) { self.firstID = firstID }

    func wrote(at t: Double) { lock.lock(); writeTimes.append(t); lock.unlock() }

    func record(_ e: CommitEvent) {
        lock.lock()
        defer { lock.unlock() }
        commits += 1
        guard let m = newestChange(in: e), m - firstID >= committed, m - firstID < writeTimes.count else { return }
        for idx in committed...(m - firstID) { lags.append(e.time - writeTimes[idx]) }
        committed = m - firstID + 1
        lastCommit = e.time
    }

    /// Age of the oldest change not committed yet.
    func oldestPendingAge(now t: Double) -> Double {
        lock.lock()
        defer { lock.unlock() }
        return committed < writeTimes.count ? t - writeTimes[committed] : 0
    }

    var written: Int { lock.lock(); defer { lock.unlock() }; return writeTimes.count }
    var drained: Bool { lock.lock(); defer { lock.unlock() }; return committed == writeTimes.count }
}

/// Feeds the kernel's commits to a ledger on a reader thread until `stop()`.
struct CommitReader {
    private let loop: BackgroundLoop

    init(_ monitor: CommitMonitor, into ledger: ChurnLedger) {
        loop = BackgroundLoop { stopped in
            while !stopped() { if let e = monitor.next(timeout: 0.1) { ledger.record(e) } }
        }
    }

    /// Stops the thread and waits for it; safe to call twice.
    func stop() { loop.stop() }
}

/// Endpoint changes written at a steady rate, each logged in the ledger.
struct PacedProducer {
    let rate: Double
    /// Changes to write at most.
    let total: Int
    /// Offset of the changed services' sequence (`Generator.pick`).
    let seed: Int
    let label: String

    /// Writes until `total` changes or `seconds` (nil: no time limit) have passed, or
    /// `shouldStop(now)` holds; `beforeChange(k)` runs before change k. Returns the count
    /// written and whether `shouldStop` ended it.
    func run(from t0: Double, seconds: Double?, _ cluster: inout DaemonCluster, _ sink: ChangeSink, _ ledger: ChurnLedger,
             progress: ProgressSink, shouldStop: (Double) -> Bool = { _ in false },
             beforeChange: (Int) throws -> Void = { _ in }) throws -> (written: Int, stoppedEarly: Bool) {
        var k = 0
        let expected = Double(total) / rate
        while k < total {
            let now = CommitMonitor.now()
            let t = now - t0
            if let seconds, t >= seconds { break }
            if shouldStop(now) { return (k, true) }
            let due = min(Int(t * rate) + 1, total)
            if due <= k { usleep(UInt32(max(50, min(1000, (Double(k) / rate - t) * 1e6)))); continue }
            if k % 1000 == 0 { progress(label, Int(t), Int(seconds ?? expected)) }
            // At most 64 writes between two checks of the clock and the stop condition.
            for _ in 0..<min(64, due - k) {
                try beforeChange(k)
                let i = Generator.pick(k + seed, services: cluster.scale.services)
                _ = cluster.change(service: i)
                ledger.wrote(at: CommitMonitor.now())
                try sink.write(service: i, cluster)
                k += 1
            }
        }
        return (k, false)
    }
}

/// Waits until every change in the ledger is committed or `timeout` passes.
func waitDrained(_ ledger: ChurnLedger, timeout: Double) {
    let deadline = CommitMonitor.now() + timeout
    while !ledger.drained && CommitMonitor.now() < deadline { usleep(1000) }
}

/// Endpoint changes through the watch at `rate` for `seconds`; a reader thread matches the
/// kernel's commits to them. The producer stops early when a change waits longer than `maxLag`.
func churn(rate: Double, seconds: Double, maxLag: Double, _ cluster: inout DaemonCluster, _ sink: ChangeSink,
           _ monitor: CommitMonitor, timeout: Double, progress: ProgressSink) throws -> DaemonChurn {
    _ = monitor.drain()
    let ledger = ChurnLedger(firstID: cluster.nextChange)
    let reader = CommitReader(monitor, into: ledger)
    defer { reader.stop() }
    let t0 = CommitMonitor.now()
    let producer = PacedProducer(rate: rate, total: Int(seconds * rate), seed: 9_000_000, label: "churn \(Int(rate))/s")
    let (k, stoppedEarly) = try producer.run(from: t0, seconds: seconds, &cluster, sink, ledger, progress: progress,
                                             shouldStop: { ledger.oldestPendingAge(now: $0) > maxLag })
    let lastWrite = CommitMonitor.now()
    waitDrained(ledger, timeout: timeout)
    reader.stop()
    let end = ledger.lastCommit
    return DaemonChurn(offeredRate: rate, seconds: seconds, written: k, writeSeconds: lastWrite - t0, writeRate: Double(k) / max(lastWrite - t0, 1e-9),
                       committedRate: end.map { Double(ledger.committed) / max($0 - t0, 1e-9) } ?? 0,
                       lag: Summary(ledger.lags), commits: ledger.commits,
                       sustained: !stoppedEarly && ledger.drained && (Summary(ledger.lags)?.max ?? .infinity) <= maxLag,
                       stoppedEarly: stoppedEarly, drainSeconds: ledger.drained ? end.map { $0 - lastWrite } : nil)
}
