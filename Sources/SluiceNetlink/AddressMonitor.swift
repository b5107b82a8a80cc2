import CNftnl
import Glibc

/// Follows the interface addresses of a network namespace: subscribes to rtnetlink's
/// address notifications (`RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV6_IFADDR`: `RTM_NEWADDR`,
/// `RTM_DELADDR`) and re-reads the whole address set on demand (a dump on a second socket).
///
/// Use: create it (subscribed from then on), read `addresses()`, then loop on
/// `waitForChange(timeout:)` and read `addresses()` again after each change. Notifications
/// lost to a full receive buffer count as a change, so nothing is missed. An address set is
/// small: re-reading it whole is simpler and as cheap as applying each notification.
///
/// Not thread-safe: one thread waits and reads.
public final class AddressMonitor: @unchecked Sendable {
    private let notifications: NetlinkSocket
    private let dumps: NetlinkSocket

    /// Subscribes in the caller's namespace, or in `/run/netns/<namespace>`.
    public init(namespace: String? = nil) throws {
        notifications = try NetlinkSocket(namespace: namespace, bus: .route)
        dumps = try NetlinkSocket(namespace: namespace, bus: .route)
        try notifications.joinGroup(UInt32(RTNLGRP_IPV4_IFADDR.rawValue))
        try notifications.joinGroup(UInt32(RTNLGRP_IPV6_IFADDR.rawValue))
    }

    /// Every address of the namespace now (`InterfaceAddresses.dump`).
    public func addresses() throws -> [InterfaceAddress] {
        try dumps.dumpAddresses()
    }

    /// Waits up to `timeout` seconds for address notifications and consumes every one
    /// pending. True if an address was added, changed or removed (or notifications were lost).
    public func waitForChange(timeout: Double) throws -> Bool {
        var pfd = pollfd(fd: notifications.fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&pfd, 1, Int32(max(0, timeout * 1000)))
        if ready < 0 && errno != EINTR { throw NetlinkError(kind: .system, errno: errno, operation: "poll") }
        guard ready > 0 else { return false }
        return try drain()
    }

    /// Reads every pending notification without waiting.
    private func drain() throws -> Bool {
        var changed = false
        while true {
            do {
                let got = try notifications.receive(dontWait: true) { h in
                    if InterfaceAddresses.parse(h) != nil { changed = true }
                }
                if !got { return changed }
            } catch let e as NetlinkError where e.errno == ENOBUFS {
                changed = true   // notifications were lost: the caller re-reads
            }
        }
    }
}
