import CNftnl
import Glibc

/// One address of one of the host's interfaces, as rtnetlink reports it (`RTM_NEWADDR`).
public struct InterfaceAddress: Sendable, Hashable, CustomStringConvertible {
    /// The interface (`ifa_index`).
    public var interfaceIndex: UInt32
    /// The address in text form (`10.0.0.1`, `fd00::1`): `IFA_LOCAL` for IPv4 (the local
    /// end of a point-to-point link), else `IFA_ADDRESS`.
    public var address: String
    public var prefixLength: UInt8
    /// `IFA_F_*` flags (`IFA_FLAGS` when present, else `ifa_flags`).
    public var flags: UInt32
    /// `IFA_LABEL` (IPv4 only), e.g. `eth0:1`.
    public var label: String?

    public init(interfaceIndex: UInt32, address: String, prefixLength: UInt8, flags: UInt32 = 0, label: String? = nil) {
        self.interfaceIndex = interfaceIndex
        self.address = address
        self.prefixLength = prefixLength
        self.flags = flags
        self.label = label
    }

    /// Duplicate address detection has not finished (`IFA_F_TENTATIVE`): the address does
    /// not accept traffic yet.
    public var isTentative: Bool { flags & UInt32(IFA_F_TENTATIVE) != 0 }
    /// Duplicate address detection failed (`IFA_F_DADFAILED`): the address never will.
    public var isDadFailed: Bool { flags & UInt32(IFA_F_DADFAILED) != 0 }
    /// The address accepts traffic (neither tentative nor failed DAD).
    public var isUsable: Bool { !isTentative && !isDadFailed }

    public var description: String { "\(address)/\(prefixLength) dev #\(interfaceIndex)" }
}

/// Reads the host's interface addresses over rtnetlink (`NETLINK_ROUTE`, an `RTM_GETADDR`
/// dump of every family) in the caller's network namespace or a named one.
public enum InterfaceAddresses {
    /// Every address of every interface of the namespace (`/run/netns/<namespace>`, or the
    /// caller's), loopback included, in the kernel's order.
    public static func dump(namespace: String? = nil) throws -> [InterfaceAddress] {
        let socket = try NetlinkSocket(namespace: namespace, bus: .route)
        return try socket.dumpAddresses()
    }

    /// Decodes one `RTM_NEWADDR` / `RTM_DELADDR` message (nil for another message type or
    /// an address family other than IPv4/IPv6).
    static func parse(_ h: UnsafePointer<nlmsghdr>) -> InterfaceAddress? {
        let type = Int(h.pointee.nlmsg_type)
        guard type == Int(RTM_NEWADDR) || type == Int(RTM_DELADDR),
              Int(h.pointee.nlmsg_len) >= Int(sluice_ifaddr_payload_offset()) else { return nil }
        let ifa = UnsafeRawPointer(mnl_nlmsg_get_payload(h)!).loadUnaligned(as: ifaddrmsg.self)
        guard ifa.ifa_family == UInt8(AF_INET) || ifa.ifa_family == UInt8(AF_INET6) else { return nil }
        var attributes = Attributes()
        let start = UnsafeRawPointer(h).advanced(by: Int(sluice_ifaddr_payload_offset()))
        forEachAttribute(start, Int(h.pointee.nlmsg_len) - Int(sluice_ifaddr_payload_offset())) { attributes.read($0, $1) }
        guard let bytes = attributes.local ?? attributes.address, let text = addressText(family: ifa.ifa_family, bytes) else { return nil }
        return InterfaceAddress(interfaceIndex: ifa.ifa_index, address: text, prefixLength: ifa.ifa_prefixlen,
                                flags: attributes.flags ?? UInt32(ifa.ifa_flags), label: attributes.label)
    }

    /// The attributes of an address message that matter here.
    private struct Attributes {
        var address: [UInt8]?
        var local: [UInt8]?
        var flags: UInt32?
        var label: String?

        mutating func read(_ type: UInt16, _ attr: UnsafePointer<nlattr>) {
            switch Int(type) {
            case Int(IFA_ADDRESS): address = payload(attr)
            case Int(IFA_LOCAL): local = payload(attr)
            case Int(IFA_FLAGS): flags = mnl_attr_get_u32(attr)
            case Int(IFA_LABEL): label = String(cString: mnl_attr_get_str(attr))
            default: break
            }
        }

        private func payload(_ attr: UnsafePointer<nlattr>) -> [UInt8] {
            Array(UnsafeRawBufferPointer(start: mnl_attr_get_payload(attr), count: Int(mnl_attr_get_payload_len(attr))))
        }
    }

    /// `inet_ntop` of a 4- or 16-byte address.
    static func addressText(family: UInt8, _ bytes: [UInt8]) -> String? {
        guard bytes.count == (family == UInt8(AF_INET) ? 4 : 16) else { return nil }
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = bytes.withUnsafeBytes { inet_ntop(Int32(family), $0.baseAddress, &out, socklen_t(out.count)) } != nil
        return ok ? String(cString: out) : nil
    }
}

extension NetlinkSocket {
    /// Runs an `RTM_GETADDR` dump on this (`NETLINK_ROUTE`) socket. A dump the kernel marks
    /// inconsistent (`NLM_F_DUMP_INTR`: addresses changed while it ran) is run again.
    func dumpAddresses() throws -> [InterfaceAddress] {
        for _ in 0..<10 {
            if let addresses = try dumpAddressesOnce() { return addresses }
        }
        throw NetlinkError(kind: .system, errno: EAGAIN, operation: "RTM_GETADDR", detail: "the address dump stayed inconsistent")
    }

    /// One dump; nil when it was interrupted by a change.
    private func dumpAddressesOnce() throws -> [InterfaceAddress]? {
        var request = [UInt8](repeating: 0, count: 64)
        let seq = self.seq()
        let length = request.withUnsafeMutableBytes { Int(sluice_getaddr_dump($0.baseAddress, seq).pointee.nlmsg_len) }
        try send(Array(request[..<length]))
        var out: [InterfaceAddress] = [], done = false, interrupted = false
        while !done {
            try receive { h in
                guard h.pointee.nlmsg_seq == seq, h.pointee.nlmsg_pid == portID || h.pointee.nlmsg_pid == 0 else { return }
                if h.pointee.nlmsg_flags & UInt16(NLM_F_DUMP_INTR) != 0 { interrupted = true }
                switch Int32(h.pointee.nlmsg_type) {
                case NLMSG_DONE: done = true
                case NLMSG_ERROR:
                    let reply = NetlinkReply(h)
                    guard reply.error == 0 else {
                        throw NetlinkError(kind: .kernel, errno: reply.error, operation: "RTM_GETADDR", kernelMessage: reply.message)
                    }
                default:
                    if let a = InterfaceAddresses.parse(h) { out.append(a) }
                }
            }
        }
        return interrupted ? nil : out
    }
}
