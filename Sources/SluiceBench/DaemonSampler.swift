import Foundation
import SluiceNetlink

/// One sample of the daemon's resources during the soak.
public struct SoakSample: Codable, Sendable {
    /// Seconds since the soak started.
    public var seconds: Double
    public var rssBytes: Int?
    public var openFiles: Int?
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

    /// Records one sample now (also callable after `stop()`).
    @discardableResult
    func sample() -> SoakSample {
        let s = SoakSample(seconds: CommitMonitor.now() - start, rssBytes: daemon.status("VmRSS"),
                           openFiles: daemon.openFiles().map { $0.values.reduce(0, +) })
        lock.lock()
        taken.append(s)
        lock.unlock()
        return s
    }
}
