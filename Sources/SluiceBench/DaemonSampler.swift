import Foundation
import SluiceNetlink

/// One sample of the daemon's resources during the soak.
public struct SoakSample: Codable, Sendable, Equatable {
    /// Seconds since the soak started.
    public var seconds: Double
    public var rssBytes: Int?
    public var openFiles: Int?
    /// The daemon's relists so far (`sluice_api_relists_total`, every resource; nil when
    /// its metrics did not answer).
    public var relists: Int?
}

/// Samples the daemon's RSS and open files every `interval` seconds on its own thread.
final class DaemonSampler: @unchecked Sendable {
    let daemon: DaemonProcess
    let interval: Double
    let start: Double
    private let lock = NSLock()
    private var taken: [SoakSample] = []
    private var loop: BackgroundLoop?

    init(_ daemon: DaemonProcess, interval: Double, start: Double) {
        self.daemon = daemon
        self.interval = interval
        self.start = start
    }

    /// Takes a sample now and then one every `interval` until `stop()`.
    func run() {
        sample()
        loop = BackgroundLoop.every(interval) { [self] in sample() }
    }

    /// Stops sampling; returns every sample, in order.
    func stop() -> [SoakSample] {
        loop?.stop()
        lock.lock()
        defer { lock.unlock() }
        return taken
    }

    /// Relists of every resource in a `/metrics` scrape.
    static func relists(_ metrics: [String: Double]) -> Int {
        Int(metrics.filter { $0.key.hasPrefix("sluice_api_relists_total") }.values.reduce(0, +))
    }

    /// After convergence: samples every `interval` until RSS stops falling (`SettledSampler`),
    /// starting from `end`; the samples after `end`, and the settled one.
    func settle(from end: SoakSample, interval: Double, maxSeconds: Double = 30) -> SettledSampler.Outcome {
        let settler = SettledSampler(maxSamples: Int(maxSeconds / max(interval, 0.01)) + 1)
        return settler.settle(from: end) {
            usleep(useconds_t(interval * 1e6))
            return sample()
        }
    }

    /// Records one sample now (also callable after `stop()`).
    @discardableResult
    func sample() -> SoakSample {
        let s = SoakSample(seconds: CommitMonitor.now() - start, rssBytes: daemon.status("VmRSS"),
                           openFiles: daemon.openFiles().map { $0.values.reduce(0, +) },
                           relists: daemon.metrics().map(Self.relists))
        lock.lock()
        taken.append(s)
        lock.unlock()
        return s
    }
}
