import CNftnl
import Glibc
import SluiceIR

/// One conntrack entry as ctnetlink reports it: the original and reply tuples.
/// Addresses are raw network-order bytes (4 or 16).
public struct ConntrackFlow: Sendable, Hashable, CustomStringConvertible {
    public var family: Family
    public var proto: UInt8
    public var origSrc: [UInt8], origDst: [UInt8]
    public var origSrcPort: UInt16, origDstPort: UInt16
    public var replySrc: [UInt8], replyDst: [UInt8]
    public var replySrcPort: UInt16, replyDstPort: UInt16
    public var zone: UInt16

    /// True when the reply comes from somewhere else than the original destination (DNAT).
    public var isDNATed: Bool { replySrc != origDst || replySrcPort != origDstPort }

    public var description: String {
        "proto \(proto) \(addressText(origSrc)):\(origSrcPort) → \(addressText(origDst)):\(origDstPort) (reply from \(addressText(replySrc)):\(replySrcPort))"
    }
}

/// Text form of raw address bytes.
public func addressText(_ bytes: [UInt8]) -> String {
    var out = [CChar](repeating: 0, count: 64)
    let af = bytes.count == 4 ? AF_INET : AF_INET6
    _ = bytes.withUnsafeBytes { inet_ntop(af, $0.baseAddress, &out, 64) }
    return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The conntrack table over ctnetlink (raw libmnl messages, no libnetfilter_conntrack):
/// dump the flows of one family and protocol, delete one flow by its original tuple.
extension NetlinkSocket {
    private static var ctGet: UInt8 { UInt8(IPCTNL_MSG_CT_GET.rawValue) }
    private static var ctDelete: UInt8 { UInt8(IPCTNL_MSG_CT_DELETE.rawValue) }

    /// Every conntrack entry of `family` whose protocol is `proto` (e.g. 17 for UDP).
    public func conntrackFlows(family: Family, proto: UInt8) throws -> [ConntrackFlow] {
        var buf = [UInt8](repeating: 0, count: 256)
        let seq = seq()
        let af = UInt8(family == .ip ? AF_INET : AF_INET6)
        let len = buf.withUnsafeMutableBytes { b -> Int in
            let h = sluice_ct_msg(b.baseAddress!, Self.ctGet, UInt16(NLM_F_DUMP), af, seq)!
            return Int(h.pointee.nlmsg_len)
        }
        var flows: [ConntrackFlow] = []
        try dump(request: Array(buf[..<len]), seq: seq, operation: "IPCTNL_MSG_CT_GET dump") { h in
            if let f = Self.parseFlow(h, family: family), f.proto == proto { flows.append(f) }
        }
        return flows
    }

    /// Deletes one flow (by its original tuple and zone). Returns false if it was already gone.
    @discardableResult
    public func deleteConntrack(_ flow: ConntrackFlow) throws -> Bool {
        var buf = [UInt8](repeating: 0, count: 512)
        let seq = seq()
        let af = UInt8(flow.family == .ip ? AF_INET : AF_INET6)
        let len = buf.withUnsafeMutableBytes { b -> Int in
            let h = sluice_ct_msg(b.baseAddress!, Self.ctDelete, UInt16(NLM_F_ACK), af, seq)!
            let tuple = mnl_attr_nest_start(h, UInt16(CTA_TUPLE_ORIG.rawValue))
            let ip = mnl_attr_nest_start(h, UInt16(CTA_TUPLE_IP.rawValue))
            let v4 = flow.family == .ip
            flow.origSrc.withUnsafeBytes { mnl_attr_put(h, UInt16(v4 ? CTA_IP_V4_SRC.rawValue : CTA_IP_V6_SRC.rawValue), $0.count, $0.baseAddress) }
            flow.origDst.withUnsafeBytes { mnl_attr_put(h, UInt16(v4 ? CTA_IP_V4_DST.rawValue : CTA_IP_V6_DST.rawValue), $0.count, $0.baseAddress) }
            mnl_attr_nest_end(h, ip)
            let proto = mnl_attr_nest_start(h, UInt16(CTA_TUPLE_PROTO.rawValue))
            mnl_attr_put_u8(h, UInt16(CTA_PROTO_NUM.rawValue), flow.proto)
            mnl_attr_put_u16(h, UInt16(CTA_PROTO_SRC_PORT.rawValue), flow.origSrcPort.bigEndian)
            mnl_attr_put_u16(h, UInt16(CTA_PROTO_DST_PORT.rawValue), flow.origDstPort.bigEndian)
            mnl_attr_nest_end(h, proto)
            mnl_attr_nest_end(h, tuple)
            if flow.zone != 0 { mnl_attr_put_u16(h, UInt16(CTA_ZONE.rawValue), flow.zone.bigEndian) }
            return Int(h.pointee.nlmsg_len)
        }
        try send(Array(buf[..<len]))
        var result: NetlinkReply?
        while result == nil {
            try receive { h in
                guard h.pointee.nlmsg_seq == seq, Int32(h.pointee.nlmsg_type) == NLMSG_ERROR else { return }
                result = NetlinkReply(h)
            }
        }
        if result!.error == 0 { return true }
        if result!.error == ENOENT { return false }
        throw NetlinkError(kind: .kernel, errno: result!.error, operation: "IPCTNL_MSG_CT_DELETE", kernelMessage: result!.message)
    }

    /// Parses one IPCTNL_MSG_CT_NEW dump reply.
    static func parseFlow(_ h: UnsafePointer<nlmsghdr>, family: Family) -> ConntrackFlow? {
        let payload = UnsafeRawPointer(mnl_nlmsg_get_payload(h)!).advanced(by: Int(sluice_nlmsg_align(UInt32(MemoryLayout<nfgenmsg>.size))))
        let total = Int(h.pointee.nlmsg_len) - Int(sluice_nlmsg_hdrlen()) - Int(sluice_nlmsg_align(UInt32(MemoryLayout<nfgenmsg>.size)))
        var orig: Tuple?, reply: Tuple?
        var zone: UInt16 = 0
        forEachAttribute(payload, total) { type, attr in
            switch type {
            case UInt16(CTA_TUPLE_ORIG.rawValue): orig = parseTuple(attr)
            case UInt16(CTA_TUPLE_REPLY.rawValue): reply = parseTuple(attr)
            case UInt16(CTA_ZONE.rawValue): zone = UInt16(bigEndian: mnl_attr_get_u16(attr))
            default: break
            }
        }
        guard let orig, let reply else { return nil }
        return ConntrackFlow(family: family, proto: orig.proto, origSrc: orig.src, origDst: orig.dst,
                             origSrcPort: orig.sport, origDstPort: orig.dport, replySrc: reply.src, replyDst: reply.dst,
                             replySrcPort: reply.sport, replyDstPort: reply.dport, zone: zone)
    }

    struct Tuple {
        var src: [UInt8] = [], dst: [UInt8] = []
        var proto: UInt8 = 0
        var sport: UInt16 = 0, dport: UInt16 = 0
    }

    static func parseTuple(_ nest: UnsafePointer<nlattr>) -> Tuple {
        var t = Tuple()
        forEachAttribute(mnl_attr_get_payload(nest)!, Int(mnl_attr_get_payload_len(nest))) { type, attr in
            switch type {
            case UInt16(CTA_TUPLE_IP.rawValue):
                forEachAttribute(mnl_attr_get_payload(attr)!, Int(mnl_attr_get_payload_len(attr))) { t2, a in
                    let bytes = Array(UnsafeRawBufferPointer(start: mnl_attr_get_payload(a), count: Int(mnl_attr_get_payload_len(a))))
                    switch t2 {
                    case UInt16(CTA_IP_V4_SRC.rawValue), UInt16(CTA_IP_V6_SRC.rawValue): t.src = bytes
                    case UInt16(CTA_IP_V4_DST.rawValue), UInt16(CTA_IP_V6_DST.rawValue): t.dst = bytes
                    default: break
                    }
                }
            case UInt16(CTA_TUPLE_PROTO.rawValue):
                forEachAttribute(mnl_attr_get_payload(attr)!, Int(mnl_attr_get_payload_len(attr))) { t2, a in
                    switch t2 {
                    case UInt16(CTA_PROTO_NUM.rawValue): t.proto = mnl_attr_get_u8(a)
                    case UInt16(CTA_PROTO_SRC_PORT.rawValue): t.sport = UInt16(bigEndian: mnl_attr_get_u16(a))
                    case UInt16(CTA_PROTO_DST_PORT.rawValue): t.dport = UInt16(bigEndian: mnl_attr_get_u16(a))
                    default: break
                    }
                }
            default: break
            }
        }
        return t
    }

    /// Calls `body(type, attr)` for each attribute in a TLV region (type without flag bits).
    static func forEachAttribute(_ start: UnsafeRawPointer, _ length: Int, _ body: (UInt16, UnsafePointer<nlattr>) -> Void) {
        var attr = sluice_attr_first(start)
        var remaining = Int32(length)
        while remaining > 0, sluice_attr_ok(attr, remaining) != 0 {
            body(mnl_attr_get_type(attr), attr!)
            let next = sluice_attr_next(attr)!
            remaining -= Int32(UnsafeRawPointer(next) - UnsafeRawPointer(attr!))
            attr = next
        }
    }
}
