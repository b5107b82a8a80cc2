import Foundation
import SluiceNetlink
#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket created inside a named network namespace, for a server whose
/// clients live in that namespace (the cluster test's control plane): created and bound on
/// a short-lived thread inside the namespace (`NamespaceThread`). A socket keeps the
/// namespace it was created in, so event loops in any namespace can serve it, and no other
/// thread of the process ever changes namespace.
enum NamespaceSocket {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A bound IPv4 TCP socket on `host:port` inside `netns` (a name under /run/netns or a path).
    static func bound(netns: String, host: String, port: Int) throws -> CInt {
        let path = netns.contains("/") ? netns : "/run/netns/\(netns)"
        return try NamespaceThread.run(inNetworkNamespace: path) { try bind(host: host, port: port, in: path) }
    }

    /// Runs on the namespace's thread.
    private static func bind(host: String, port: Int, in path: String) throws -> CInt {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw Failure(description: "not an IPv4 address: \(host)") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "bind \(host):\(port) in \(path): \(message)")
        }
        return fd
    }
}
