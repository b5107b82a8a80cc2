import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket created inside a named network namespace, for a server whose
/// clients live in that namespace (the cluster test's control plane): a short-lived thread
/// joins the namespace (`setns(2)`), creates and binds the socket there and exits. A socket
/// keeps the namespace it was created in, so event loops in any namespace can serve it,
/// and no other thread of the process ever changes namespace.
enum NamespaceSocket {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A bound IPv4 TCP socket on `host:port` inside `netns` (a name under /run/netns or a path).
    static func bound(netns: String, host: String, port: Int) throws -> CInt {
        let path = netns.contains("/") ? netns : "/run/netns/\(netns)"
        let result = ResultBox()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            result.value = Result { try bindInNamespace(path: path, host: host, port: port) }
            done.signal()
        }
        thread.name = "fake-apiserver-netns"
        thread.start()
        done.wait()
        return try result.value!.get()
    }

    /// Runs on the dedicated thread, which exits afterwards (still in `path`'s namespace).
    private static func bindInNamespace(path: String, host: String, port: Int) throws -> CInt {
        let nsfd = open(path, O_RDONLY | O_CLOEXEC)
        guard nsfd >= 0 else { throw Failure(description: "open \(path): \(String(cString: strerror(errno)))") }
        defer { close(nsfd) }
        guard joinNetworkNamespace(nsfd) == 0 else { throw Failure(description: "setns \(path): \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw Failure(description: "not an IPv4 address: \(host)") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "bind \(host):\(port) in \(path): \(message)")
        }
        return fd
    }

    /// `setns(fd, CLONE_NEWNET)`: Glibc's module map leaves the GNU-only `setns` out, so it
    /// is looked up by name in the C library (this target has no C of its own).
    private static func joinNetworkNamespace(_ fd: CInt) -> CInt {
        typealias SetNS = @convention(c) (CInt, CInt) -> CInt
        let cloneNewNet: CInt = 0x4000_0000  // CLONE_NEWNET
        guard let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, "setns") else {
            errno = ENOSYS
            return -1
        }
        return unsafeBitCast(symbol, to: SetNS.self)(fd, cloneNewNet)
    }

    /// Carries the thread's result back (written before the semaphore is signalled).
    private final class ResultBox: @unchecked Sendable {
        var value: Result<CInt, any Error>?
    }
}
