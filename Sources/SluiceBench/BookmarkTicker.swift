import Foundation
import SluiceKubeFake

/// Has the fake server send a bookmark on every open watch every `interval` seconds, as
/// kube-apiserver's watch cache does about every minute, until `stop()`.
final class BookmarkTicker {
    private let stopFlag = ManagedFlag()
    private let thread: Thread

    init(_ server: FakeAPIServer, interval: Double) {
        let flag = stopFlag
        thread = Thread {
            var next = Date(timeIntervalSinceNow: interval)
            while !flag.value {
                if Date() >= next { server.sendBookmarks(); next = Date(timeIntervalSinceNow: interval) }
                usleep(20_000)
            }
        }
        thread.start()
    }

    /// Stops the thread and waits for it; safe to call twice.
    func stop() {
        stopFlag.value = true
        while !thread.isFinished { usleep(1000) }
    }
}
