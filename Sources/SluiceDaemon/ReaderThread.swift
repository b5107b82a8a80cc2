import Foundation
import NIOConcurrencyHelpers
import ServiceLifecycle

/// A service's blocking netlink reader on a thread of its own (a socket wait would block a
/// cooperative thread). `read` runs on the thread until `stopped()` turns true (its waits
/// time out every half second to look); each `signal()` it sends runs `onSignal` on the
/// service's task, several signals sent meanwhile counting as one. The service is stopped by
/// graceful shutdown or cancellation; `run` returns once the thread's `read` did.
enum ReaderThread {
    typealias Read = @Sendable (_ stopped: @Sendable () -> Bool, _ signal: @Sendable () -> Void) -> Void

    static func run(name: String, read: @escaping Read, onSignal: () async -> Void = {}) async {
        let stopped = NIOLockedValueBox(false)
        let (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let thread = Thread {
            read({ stopped.withLockedValue { $0 } }, { signal.yield() })
            signal.finish()
        }
        thread.name = name
        thread.start()
        @Sendable func stop() { stopped.withLockedValue { $0 = true } }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                for await _ in signals { await onSignal() }
            } onCancel: {
                stop()
            }
        } onGracefulShutdown: {
            stop()
        }
    }
}
