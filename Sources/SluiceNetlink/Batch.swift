import CNftnl
import Glibc
import SluiceIR

/// Counters of one committed batch (one `sendmsg`).
public struct BatchStats: Sendable, Equatable {
    /// Command messages (excluding NFNL_MSG_BATCH_BEGIN/END).
    public var messages: Int = 0
    /// NEWSETELEM/DELSETELEM messages among them.
    public var elementMessages: Int = 0
    /// Netlink message type of every command message, in order (`NFT_MSG_*`).
    public var messageTypes: [UInt16] = []
    /// Bytes handed to `sendmsg`, including begin/end markers.
    public var bytes: Int = 0
    /// iovecs (batch pages) used.
    public var iovecs: Int = 0
    /// Time to build the batch in userspace.
    public var buildSeconds: Double = 0
    /// Time from `sendmsg` to the last reply (the kernel's commit).
    public var kernelSeconds: Double = 0

    public init() {}
}

/// nf_tables message types (`enum nf_tables_msg_types`).
enum MsgType {
    static let newTable = UInt16(NFT_MSG_NEWTABLE.rawValue)
    static let getTable = UInt16(NFT_MSG_GETTABLE.rawValue)
    static let delTable = UInt16(NFT_MSG_DELTABLE.rawValue)
    static let newChain = UInt16(NFT_MSG_NEWCHAIN.rawValue)
    static let getChain = UInt16(NFT_MSG_GETCHAIN.rawValue)
    static let delChain = UInt16(NFT_MSG_DELCHAIN.rawValue)
    static let newRule = UInt16(NFT_MSG_NEWRULE.rawValue)
    static let getRule = UInt16(NFT_MSG_GETRULE.rawValue)
    static let delRule = UInt16(NFT_MSG_DELRULE.rawValue)
    static let newSet = UInt16(NFT_MSG_NEWSET.rawValue)
    static let getSet = UInt16(NFT_MSG_GETSET.rawValue)
    static let delSet = UInt16(NFT_MSG_DELSET.rawValue)
    static let newSetElem = UInt16(NFT_MSG_NEWSETELEM.rawValue)
    static let getSetElem = UInt16(NFT_MSG_GETSETELEM.rawValue)
    static let delSetElem = UInt16(NFT_MSG_DELSETELEM.rawValue)
    static let getGen = UInt16(NFT_MSG_GETGEN.rawValue)

    static func name(_ t: UInt16) -> String {
        let names: [UInt16: String] = [
            newTable: "NFT_MSG_NEWTABLE", delTable: "NFT_MSG_DELTABLE", newChain: "NFT_MSG_NEWCHAIN",
            delChain: "NFT_MSG_DELCHAIN", newRule: "NFT_MSG_NEWRULE", delRule: "NFT_MSG_DELRULE",
            newSet: "NFT_MSG_NEWSET", delSet: "NFT_MSG_DELSET", newSetElem: "NFT_MSG_NEWSETELEM",
            delSetElem: "NFT_MSG_DELSETELEM",
        ]
        return names[t] ?? "message type \(t)"
    }
}

/// One nf_tables transaction in libnftnl paged buffers (`struct nftnl_batch`):
/// NFNL_MSG_BATCH_BEGIN, one message per object (each with its own sequence number,
/// remembered with the IR operation that produced it), NFNL_MSG_BATCH_END.
/// NLM_F_ACK is set on the last command message only.
final class Batch {
    /// 1 MiB pages; the overrun must hold one full element message (64 KiB nest) plus slack.
    static let pageSize: UInt32 = 1 << 20
    static let pageOverrun: UInt32 = 65536 + 8192

    private let raw: OpaquePointer
    private let socket: NetlinkSocket
    private var lastLength: UInt32 = 0
    let beginSeq: UInt32
    private(set) var lastSeq: UInt32 = 0
    /// Sequence number of NFNL_MSG_BATCH_END (set by `finish`).
    private(set) var endSeq: UInt32 = 0
    /// seq → (index of the IR operation, netlink message type)
    private(set) var origins: [UInt32: (operation: Int, type: UInt16)] = [:]
    private(set) var stats = BatchStats()

    init(socket: NetlinkSocket, generation: UInt32?) throws {
        self.socket = socket
        raw = try cAlloc("nftnl_batch_alloc") { nftnl_batch_alloc(Self.pageSize, Self.pageOverrun) }
        beginSeq = socket.seq()
        let h = nftnl_batch_begin(cursor, beginSeq)!
        if let generation { sluice_batch_put_genid(h, generation) }
        try update()
    }

    deinit { nftnl_batch_free(raw) }

    var isEmpty: Bool { stats.messages == 0 }

    /// Whether `seq` numbers a message of this batch (begin marker to end marker): a reply
    /// with any other number is a late one, left over from an earlier request.
    func contains(_ seq: UInt32) -> Bool { seq &- beginSeq <= endSeq &- beginSeq }

    private var cursor: UnsafeMutablePointer<CChar> {
        nftnl_batch_buffer(raw).assumingMemoryBound(to: CChar.self)
    }

    private func update() throws {
        if nftnl_batch_update(raw) < 0 {
            throw NetlinkError(kind: .system, errno: errno, operation: "nftnl_batch_update")
        }
    }

    /// Appends one command message; `build` fills in the payload after the header.
    func add(_ type: UInt16, family: Family, flags: Int32, operation: Int,
             _ build: (UnsafeMutablePointer<nlmsghdr>) -> Void) throws {
        let seq = socket.seq()
        let h = nftnl_nlmsg_build_hdr(cursor, type, family.nfproto, UInt16(flags), seq)!
        build(h)
        lastLength = h.pointee.nlmsg_len
        try update()
        record(seq, type, operation)
    }

    /// Appends the element list of `set` as as many NEWSETELEM/DELSETELEM messages as the
    /// 64 KiB attribute limit requires. Sends nothing for an empty list (an empty
    /// DELSETELEM would flush the whole set).
    func addElements(_ type: UInt16, family: Family, set: NftnlSet, operation: Int) throws {
        let it = try NftnlElemIter(set)
        if it.isEmpty { return }
        let flags = type == MsgType.newSetElem ? NLM_F_CREATE : 0
        while true {
            let seq = socket.seq()
            let h = nftnl_nlmsg_build_hdr(cursor, type, family.nfproto, UInt16(flags), seq)!
            let more = nftnl_set_elems_nlmsg_build_payload_iter(h, it.raw)
            lastLength = h.pointee.nlmsg_len
            try update()
            record(seq, type, operation)
            stats.elementMessages += 1
            if more <= 0 { break }
        }
    }

    /// Appends elements of set `set` in table `table` as NEWSETELEM/DELSETELEM messages,
    /// written straight into the batch pages with libmnl: the same attributes, in the same
    /// order and split at the same 64 KiB nest limit as libnftnl's
    /// `nftnl_set_elems_nlmsg_build_payload_iter`, without a `nftnl_set_elem` object (and
    /// its allocations) per element. Sends nothing for an empty list.
    func addElements(_ type: UInt16, family: Family, table: String, set: String, count: Int, operation: Int,
                     element: (Int, UnsafeMutablePointer<nlmsghdr>) -> Void) throws {
        if count == 0 { return }
        let flags = type == MsgType.newSetElem ? NLM_F_CREATE : 0
        var next = 0
        while next < count {
            let seq = socket.seq()
            let h = nftnl_nlmsg_build_hdr(cursor, type, family.nfproto, UInt16(flags), seq)!
            mnl_attr_put_strz(h, UInt16(NFTA_SET_ELEM_LIST_SET.rawValue), set)
            mnl_attr_put_strz(h, UInt16(NFTA_SET_ELEM_LIST_TABLE.rawValue), table)
            let list = mnl_attr_nest_start(h, UInt16(NFTA_SET_ELEM_LIST_ELEMENTS.rawValue))!
            var index: UInt16 = 0
            while next < count {
                let before = h.pointee.nlmsg_len
                index &+= 1
                let nest = mnl_attr_nest_start(h, index)!
                element(next, h)
                mnl_attr_nest_end(h, nest)
                // The list nest's length is 16 bits: stop before it overflows.
                let listLength = UInt32(bitPattern: Int32(truncatingIfNeeded: UnsafeRawPointer(h).advanced(by: Int(h.pointee.nlmsg_len))
                    - UnsafeRawPointer(list)))
                if listLength > UInt32(UInt16.max) {
                    h.pointee.nlmsg_len = before
                    break
                }
                next += 1
            }
            mnl_attr_nest_end(h, list)
            lastLength = h.pointee.nlmsg_len
            try update()
            record(seq, type, operation)
            stats.elementMessages += 1
        }
    }

    /// The attributes of one element (inside its NFTA_LIST_ELEM nest), as
    /// `nftnl_set_elem_nlmsg_build_payload` writes them.
    static func put(_ e: KernelElement, into h: UnsafeMutablePointer<nlmsghdr>) {
        if e.intervalEnd { mnl_attr_put_u32(h, UInt16(NFTA_SET_ELEM_FLAGS.rawValue), UInt32(1).bigEndian) }
        func value(_ attr: UInt32, _ bytes: [UInt8]) {
            bytes.withUnsafeBytes { putValue(attr, $0.baseAddress!, $0.count, into: h) }
        }
        value(NFTA_SET_ELEM_KEY.rawValue, e.key)
        if let end = e.keyEnd { value(NFTA_SET_ELEM_KEY_END.rawValue, end) }
        if let data = e.data { value(NFTA_SET_ELEM_DATA.rawValue, data) }
        if let u = e.userdata {
            u.withUnsafeBytes { mnl_attr_put(h, UInt16(NFTA_SET_ELEM_USERDATA.rawValue), $0.count, $0.baseAddress) }
        }
    }

    /// Key (and data) of a plain set or map element from raw bytes.
    @inline(__always)
    static func put(key: UnsafeRawPointer, _ keyLength: Int, data: (UnsafeRawPointer, Int)?, into h: UnsafeMutablePointer<nlmsghdr>) {
        putValue(NFTA_SET_ELEM_KEY.rawValue, key, keyLength, into: h)
        if let (d, n) = data { putValue(NFTA_SET_ELEM_DATA.rawValue, d, n, into: h) }
    }

    @inline(__always)
    private static func putValue(_ attr: UInt32, _ p: UnsafeRawPointer, _ n: Int, into h: UnsafeMutablePointer<nlmsghdr>) {
        let nest = mnl_attr_nest_start(h, UInt16(attr))!
        mnl_attr_put(h, UInt16(NFTA_DATA_VALUE.rawValue), n, p)
        mnl_attr_nest_end(h, nest)
    }

    private func record(_ seq: UInt32, _ type: UInt16, _ operation: Int) {
        origins[seq] = (operation, type)
        lastSeq = seq
        stats.messages += 1
        stats.messageTypes.append(type)
    }

    /// Sets NLM_F_ACK on the last command message (it sits right before the write cursor),
    /// appends BATCH_END, and returns the iovecs of all pages.
    func finish() throws -> [iovec] {
        let last = UnsafeMutableRawPointer(cursor).advanced(by: -Int(lastLength)).assumingMemoryBound(to: nlmsghdr.self)
        last.pointee.nlmsg_flags |= UInt16(NLM_F_ACK)
        endSeq = socket.seq()
        _ = nftnl_batch_end(cursor, endSeq)
        try update()
        let n = nftnl_batch_iovec_len(raw)
        var iov = [iovec](repeating: iovec(), count: Int(n))
        nftnl_batch_iovec(raw, &iov, UInt32(n))
        stats.iovecs = iov.count
        stats.bytes = iov.reduce(0) { $0 + $1.iov_len }
        return iov
    }
}
