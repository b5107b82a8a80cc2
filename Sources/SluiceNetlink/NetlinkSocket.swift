import CNftnl
import Glibc

/// A netlink socket (libmnl `struct mnl_socket`): `NETLINK_NETFILTER` (nf_tables,
/// conntrack) or `NETLINK_ROUTE` (interface addresses), optionally created inside a named
/// network namespace (`/run/netns/NAME`). A socket stays in the namespace it was created
/// in, so only its creation happens on a helper thread that entered the namespace.
/// System calls interrupted by a signal (EINTR) are retried.
///
/// Tests can attach a `NetlinkFaultInjector` (`faults`) to make its batch sends and
/// receives fail as the system or the kernel would; unset, it costs one nil check per call.
///
/// Not thread-safe: use one socket from one thread (or one actor) at a time.
public final class NetlinkSocket {
    let nl: OpaquePointer
    let fd: Int32
    let portID: UInt32
    private var nextSeq: UInt32
    private var receiveBuffer: [UInt8]
    /// Where the socket was opened (nil: the caller's namespace), so it can be reopened.
    let namespacePath: String?
    let bus: Bus
    /// Faults to inject (tests only; nil in production).
    var faults: NetlinkFaultInjector?
    /// True once an injected fault closed the socket: every call fails with EBADF.
    var isClosed = false

    /// The netlink protocol a socket speaks.
    enum Bus {
        case netfilter
        case route

        var number: Int32 { self == .netfilter ? NETLINK_NETFILTER : NETLINK_ROUTE }
    }

    /// Opens a `NETLINK_NETFILTER` socket in the caller's network namespace, or in
    /// `namespacePath` (a file such as `/run/netns/NAME` or `/proc/PID/ns/net`).
    public convenience init(namespacePath: String? = nil) throws {
        try self.init(namespacePath: namespacePath, bus: .netfilter)
    }

    /// Opens a socket of `bus` in the caller's namespace or in `namespacePath`.
    init(namespacePath: String?, bus: Bus) throws {
        let opened: OpaquePointer
        if let namespacePath {
            opened = try Self.openInNamespace(namespacePath, bus: bus)
        } else {
            opened = try Self.openHere(bus: bus)
        }
        nl = opened
        self.namespacePath = namespacePath
        self.bus = bus
        fd = mnl_socket_get_fd(opened)
        portID = mnl_socket_get_portid(opened)
        nextSeq = UInt32(truncatingIfNeeded: time(nil))
        receiveBuffer = [UInt8](repeating: 0, count: 1 << 20)
        do {
            try configure()
        } catch {
            mnl_socket_close(opened)
            throw error
        }
    }

    /// Opens a `NETLINK_NETFILTER` socket in the namespace `/run/netns/<name>`, or in the
    /// caller's namespace when `name` is nil.
    public convenience init(namespace name: String?) throws {
        try self.init(namespace: name, bus: .netfilter)
    }

    /// Opens a socket of `bus` in `/run/netns/<name>`, or in the caller's namespace.
    convenience init(namespace name: String?, bus: Bus) throws {
        try self.init(namespacePath: name.map { "/run/netns/\($0)" }, bus: bus)
    }

    deinit { mnl_socket_close(nl) }

    /// A new socket of the same bus in the same namespace, with the same fault injector:
    /// what replaces a socket that was closed under its user.
    func reopened() throws -> NetlinkSocket {
        let s = try NetlinkSocket(namespacePath: namespacePath, bus: bus)
        s.faults = faults
        return s
    }

    /// Allocates the next sequence number.
    func seq() -> UInt32 {
        nextSeq &+= 1
        return nextSeq
    }

    private static func openHere(bus: Bus) throws -> OpaquePointer {
        let nl = try cAlloc("mnl_socket_open(\(bus == .netfilter ? "NETLINK_NETFILTER" : "NETLINK_ROUTE"))") { mnl_socket_open(bus.number) }
        if mnl_socket_bind(nl, 0, pid_t(MNL_SOCKET_AUTOPID)) < 0 {
            let e = NetlinkError(kind: .system, errno: errno, operation: "mnl_socket_bind")
            mnl_socket_close(nl)
            throw e
        }
        return nl
    }

    /// Creates the socket in the namespace at `path` (`NamespaceThread`: no thread of the
    /// caller ever changes namespace).
    private static func openInNamespace(_ path: String, bus: Bus) throws -> OpaquePointer {
        try NamespaceThread.run(inNetworkNamespace: path) { SocketHandle(pointer: try openHere(bus: bus)) }.pointer
    }

    /// A new, not yet shared socket handed from the namespace thread to its caller.
    private struct SocketHandle: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    /// NETLINK_CAP_ACK (errors do not echo the request), NETLINK_EXT_ACK (error strings),
    /// a receive timeout so a lost reply cannot hang the caller.
    private func configure() throws {
        var one: Int32 = 1
        try cCheck("setsockopt(NETLINK_CAP_ACK)",
                   setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, socklen_t(MemoryLayout<Int32>.size)))
        try cCheck("setsockopt(NETLINK_EXT_ACK)",
                   setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, socklen_t(MemoryLayout<Int32>.size)))
        var tv = timeval(tv_sec: 120, tv_usec: 0)
        try cCheck("setsockopt(SO_RCVTIMEO)",
                   setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size)))
    }

    /// Raises the send buffer to hold `bytes` (SO_SNDBUFFORCE needs CAP_NET_ADMIN and
    /// ignores `wmem_max`; the kernel rejects a batch longer than sndbuf - 32 with EMSGSIZE).
    func ensureSendBuffer(_ bytes: Int) throws {
        var size = Int32(clamping: bytes + 65536)
        try cCheck("setsockopt(SO_SNDBUFFORCE)",
                   setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)))
    }

    /// Joins a netlink multicast group (`NETLINK_ADD_MEMBERSHIP`), e.g. `NFNLGRP_NFTABLES`.
    func joinGroup(_ group: UInt32) throws {
        var g = Int32(bitPattern: group)
        try cCheck("setsockopt(NETLINK_ADD_MEMBERSHIP)",
                   setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, socklen_t(MemoryLayout<Int32>.size)))
    }

    /// Raises the receive buffer (SO_RCVBUFFORCE ignores `rmem_max`; needs CAP_NET_ADMIN), so
    /// bursts of notifications fit.
    func forceReceiveBuffer(_ bytes: Int) throws {
        var size = Int32(clamping: bytes)
        try cCheck("setsockopt(SO_RCVBUFFORCE)",
                   setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)))
    }

    /// Sets how long a blocking `receive` waits before failing with EAGAIN.
    func setReceiveTimeout(seconds: Double) throws {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        try cCheck("setsockopt(SO_RCVTIMEO)",
                   setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size)))
    }

    /// Sends iovecs as one `sendmsg` to the kernel (an nf_tables batch).
    func send(_ iov: inout [iovec]) throws {
        let prepared = try faults.map { try injectBeforeBatch($0, &iov) }
        defer { if let prepared { injectAfterBatch(prepared) } }
        var addr = sockaddr_nl()
        addr.nl_family = sa_family_t(AF_NETLINK)
        let total = iov.reduce(0) { $0 + $1.iov_len }
        let sent = try withUnsafeMutablePointer(to: &addr) { ap in
            try iov.withUnsafeMutableBufferPointer { ib in
                var msg = msghdr()
                msg.msg_name = UnsafeMutableRawPointer(ap)
                msg.msg_namelen = socklen_t(MemoryLayout<sockaddr_nl>.size)
                msg.msg_iov = ib.baseAddress
                msg.msg_iovlen = ib.count
                return try cCheck("sendmsg", retryingEINTR {
                    if let faults, let e = faults.sendErrno() { return Self.fail(e) }
                    return sendmsg(fd, &msg, 0)
                })
            }
        }
        guard sent == total else {
            throw NetlinkError(kind: .system, errno: EMSGSIZE, operation: "sendmsg", detail: "short send \(sent)/\(total)")
        }
    }

    /// Sets errno to `e` and returns -1, as a failed system call does (fault injection).
    private static func fail(_ e: Int32) -> Int {
        Glibc.errno = e
        return -1
    }

    /// Sends one plain message (a request outside a batch).
    func send(_ bytes: [UInt8]) throws {
        if faults != nil { try failIfClosed("mnl_socket_sendto") }
        let n = bytes.withUnsafeBytes { b in retryingEINTR { mnl_socket_sendto(nl, b.baseAddress, b.count) } }
        try cCheck("mnl_socket_sendto", n)
    }

    /// Receives one datagram and calls `body` for every netlink message in it.
    /// Returns false when nothing was pending (`dontWait`).
    @discardableResult
    func receive(dontWait: Bool = false, _ body: (UnsafePointer<nlmsghdr>) throws -> Void) throws -> Bool {
        let n = receiveBuffer.withUnsafeMutableBytes { b in
            retryingEINTR {
                if let faults, let e = injectedReceiveErrno(faults) { return Self.fail(e) }
                return recv(fd, b.baseAddress, b.count, dontWait ? Int32(MSG_DONTWAIT) : 0)
            }
        }
        if n < 0 {
            if dontWait && (errno == EAGAIN || errno == EWOULDBLOCK) { return false }
            throw NetlinkError(kind: .system, errno: errno, operation: "recv")
        }
        try receiveBuffer.withUnsafeBytes { buf in
            var len = Int32(n)
            var h = UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: nlmsghdr.self)
            while mnl_nlmsg_ok(h, len) {
                try body(h)
                h = UnsafePointer(mnl_nlmsg_next(h, &len))
            }
        }
        return true
    }
}

/// A decoded `NLMSG_ERROR` reply: an ACK (`error == 0`) or an error for message `seq`.
struct NetlinkReply {
    var seq: UInt32
    var error: Int32
    var message: String?

    /// Parses an NLMSG_ERROR message (with NETLINK_CAP_ACK: nlmsgerr + extended-ack TLVs).
    init(_ h: UnsafePointer<nlmsghdr>) {
        seq = h.pointee.nlmsg_seq
        let payload = UnsafeRawPointer(mnl_nlmsg_get_payload(h)!)
        let err = payload.loadUnaligned(as: Int32.self)
        error = -err
        message = nil
        // NLM_F_ACK_TLVS (0x200): TLVs follow nlmsgerr (error + the request's header).
        guard h.pointee.nlmsg_flags & 0x200 != 0 else { return }
        let errSize = MemoryLayout<Int32>.size + MemoryLayout<nlmsghdr>.size
        let capped = h.pointee.nlmsg_flags & 0x100 != 0   // NLM_F_CAPPED
        var offset = errSize
        if !capped {
            let inner = payload.advanced(by: MemoryLayout<Int32>.size).loadUnaligned(as: nlmsghdr.self)
            offset = MemoryLayout<Int32>.size + Int(sluice_nlmsg_align(inner.nlmsg_len))
        }
        let total = Int(h.pointee.nlmsg_len) - Int(sluice_nlmsg_hdrlen())
        var attr = sluice_attr_first(payload.advanced(by: offset))
        var remaining = Int32(total - offset)
        while remaining > 0, sluice_attr_ok(attr, remaining) != 0 {
            if mnl_attr_get_type(attr) == UInt16(NLMSGERR_ATTR_MSG.rawValue) {
                message = String(cString: mnl_attr_get_str(attr))
            }
            let next = sluice_attr_next(attr)!
            remaining -= Int32(UnsafeRawPointer(next) - UnsafeRawPointer(attr!))
            attr = next
        }
    }
}

/// Calls `body` for each attribute of the TLV region `start ..< start + len`.
func forEachAttribute(_ start: UnsafeRawPointer, _ len: Int, _ body: (UInt16, UnsafePointer<nlattr>) -> Void) {
    var attr = sluice_attr_first(start)
    var remaining = Int32(len)
    while remaining > 0, let a = attr, sluice_attr_ok(a, remaining) != 0 {
        body(mnl_attr_get_type(a), a)
        let next = sluice_attr_next(a)!
        remaining -= Int32(UnsafeRawPointer(next) - UnsafeRawPointer(a))
        attr = next
    }
}
