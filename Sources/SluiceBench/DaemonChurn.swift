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

/// Endpoint changes through the watch at `rate` for `seconds`; a reader thread matches the
/// kernel's commits to them. The producer stops early when a change waits longer than `maxLag`.
func churn(rate: Double, seconds: Double, maxLag: Double, _ cluster: inout DaemonCluster, _ sink: ChangeSink,
           _ monitor: CommitMonitor, timeout: Double, progress: ProgressSink) throws -> DaemonChurn {
    _ = monitor.drain()
    let ledger = ChurnLedger(firstID: cluster.nextChange)
    let stop = ManagedFlag()
    let reader = Thread {
        while !stop.value { if let e = monitor.next(timeout: 0.1) { ledger.record(e) } }
    }
    reader.start()
    defer { stop.value = true; while !reader.isFinished { usleep(1000) } }
    let t0 = CommitMonitor.now()
    var k = 0
    var stoppedEarly = false
    while true {
        let t = CommitMonitor.now() - t0
        if t >= seconds { break }
        if ledger.oldestPendingAge(now: t0 + t) > maxLag { stoppedEarly = true; break }
        let due = min(Int(t * rate) + 1, Int(seconds * rate))
        if due <= k { usleep(UInt32(max(50, min(1000, (Double(k) / rate - t) * 1e6)))); continue }
        if k % 1000 == 0 { progress("churn \(Int(rate))/s", Int(t), Int(seconds)) }
        // At most 64 writes between two checks of the clock and the lag.
        for _ in 0..<min(64, due - k) {
            let i = Generator.pick(k + 9_000_000, services: cluster.scale.services)
            _ = cluster.change(service: i)
            ledger.wrote(at: CommitMonitor.now())
            try sink.write(service: i, cluster)
            k += 1
        }
    }
    let lastWrite = CommitMonitor.now()
    let deadline = lastWrite + timeout
    while !ledger.drained && CommitMonitor.now() < deadline { usleep(1000) }
    stop.value = true
    while !reader.isFinished { usleep(1000) }
    let end = ledger.lastCommit
    return DaemonChurn(offeredRate: rate, seconds: seconds, written: k, writeSeconds: lastWrite - t0, writeRate: Double(k) / max(lastWrite - t0, 1e-9),
                       committedRate: end.map { Double(ledger.committed) / max($0 - t0, 1e-9) } ?? 0,
                       lag: Summary(ledger.lags), commits: ledger.commits,
                       sustained: !stoppedEarly && ledger.drained && (Summary(ledger.lags)?.max ?? .infinity) <= maxLag,
                       stoppedEarly: stoppedEarly, drainSeconds: ledger.drained ? end.map { $0 - lastWrite } : nil)
}

final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var v = false
    var value: Bool {
        get { lock.lock(); defer { lock.unlock() }; return v }
        set { lock.lock(); v = newValue; lock.unlock() }
    }
}
