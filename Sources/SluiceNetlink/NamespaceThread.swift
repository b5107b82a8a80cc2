import Foundation
import CNftnl

/// Runs work inside another network namespace without moving any of the caller's threads:
/// a dedicated thread `setns`es into the namespace, runs the work and exits. A socket
/// keeps the namespace it was created in, so sockets made this way (netlink, or a test
/// server's listener) can then be used from any thread.
public enum NamespaceThread {
    /// Runs `body` on a new thread inside the network namespace at `path` (for example
    /// `/run/netns/NAME`) and returns its result; waits for the thread to finish.
    public static func run<T: Sendable>(inNetworkNamespace path: String, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            box.result = Result { try enter(path); return try body() }
            done.signal()
        }
        thread.name = "sluice-netns"
        thread.start()
        done.wait()
        return try box.result!.get()
    }

    /// Joins `path`'s network namespace on the calling (dedicated) thread.
    private static func enter(_ path: String) throws {
        let nsfd = open(path, O_RDONLY | O_CLOEXEC)
        guard nsfd >= 0 else { throw NetlinkError(kind: .system, errno: errno, operation: "open(\(path))") }
        defer { close(nsfd) }
        guard sluice_setns_net(nsfd) == 0 else { throw NetlinkError(kind: .system, errno: errno, operation: "setns(\(path))") }
    }

    /// Carries the thread's result back (written before the semaphore is signalled).
    private final class ResultBox<T>: @unchecked Sendable {
        var result: Result<T, any Error>?
    }
}
