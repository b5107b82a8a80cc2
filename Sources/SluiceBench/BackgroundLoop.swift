import Foundation
import SluiceNetlink

/// A bench thread that runs `body` until `stop()`: `body` loops while `stopped()` is false
/// (waiting at most a short poll between checks). The commit reader, the soak's bookmark
/// ticker and its resource sampler are each one of these.
final class BackgroundLoop: @unchecked Sendable {
    private let stopFlag = StopFlag()
    private let thread: Thread

    init(_ body: @escaping @Sendable (_ stopped: () -> Bool) -> Void) {
        let flag = stopFlag
        thread = Thread { body { flag.value } }
        thread.start()
    }

    /// Runs `action` every `interval` seconds (the first after one interval) until `stop()`.
    static func every(_ interval: Double, _ action: @escaping @Sendable () -> Void) -> BackgroundLoop {
        BackgroundLoop { stopped in
            var next = CommitMonitor.now() + interval
            while !stopped() {
                if CommitMonitor.now() >= next { action(); next += interval }
                usleep(20_000)
            }
        }
    }

    /// Stops the thread and waits for it; safe to call twice.
    func stop() {
        stopFlag.value = true
        while !thread.isFinished { usleep(1000) }
    }

    private final class StopFlag: @unchecked Sendable {
        private let lock = NSLock()
        private var v = false
        var value: Bool {
            get { lock.lock(); defer { lock.unlock() }; return v }
            set { lock.lock(); v = newValue; lock.unlock() }
        }
    }
}
