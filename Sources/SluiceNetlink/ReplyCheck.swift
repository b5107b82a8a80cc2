import CNftnl

/// A structural check of one nf_tables reply message against the attribute checks libnftnl
/// 1.2.4 makes when it parses it (`mnl_attr_validate` in its `*_parse_attr_cb` callbacks),
/// run before libnftnl sees the message. libnftnl answers an attribute of the wrong size with
/// `exit(1)` ("nf_tables kernel ABI is broken") and copies string attributes with `strdup`,
/// so a message that fails here is a `NetlinkError.malformed` and is never handed on.
/// Stricter than libnftnl where libnftnl would read out of bounds: strings must be
/// NUL-terminated, a set's concatenation has at most 16 fields, nesting is at most 16 deep.
enum ReplyCheck {
    /// How one attribute is checked.
    indirect enum Kind {
        case u8, u16, u32, u64, string, binary
        /// Nested attributes under their own policy.
        case nested(Policy)
        /// A data register (`NFTA_DATA_VALUE` or a verdict) that libnftnl parses as nested.
        case data
        /// One expression (`NFTA_EXPR_NAME`, `NFTA_EXPR_DATA`).
        case expression
        /// A list of expressions (`NFTA_LIST_ELEM`s).
        case expressions
        /// A hook's device names (`NFTA_DEVICE_NAME`s).
        case devices
        /// A set's concatenation description (`NFTA_LIST_ELEM`s of `NFTA_SET_FIELD_LEN`).
        case concat
        /// A verdict (`NFTA_VERDICT_CODE`, and `NFTA_VERDICT_CHAIN` for a jump or goto).
        case verdict
        /// A type libnftnl would store past the end of its attribute table.
        case refused
    }

    /// The kinds of the attribute types one callback checks; other types are not looked at.
    struct Policy {
        let kinds: [UInt16: Kind]
        init(_ kinds: [UInt16: Kind]) { self.kinds = kinds }
    }

    /// What one message has used up: libnftnl keeps adding concatenation fields to the same
    /// `field_len[16]` however many descriptions a message carries.
    private final class Tally {
        var concatFields = 0
    }

    /// Checks the attributes after the nfgenmsg header of message `h` (`what` names it in the error).
    static func message(_ h: UnsafePointer<nlmsghdr>, _ policy: Policy, _ what: String) throws {
        let tally = Tally()
        // libmnl walks attributes up to the aligned end of the message (mnl_nlmsg_get_payload_tail).
        let length = (Int(h.pointee.nlmsg_len) + 3) & ~3, offset = Int(sluice_nfgen_payload_offset())
        guard length >= offset else { throw NetlinkError.malformed("\(what): message of \(length) bytes") }
        try walk(UnsafeRawPointer(h) + offset, length - offset, policy, depth: 0, tally, what)
    }

    /// Walks attributes the way `mnl_attr_parse` does (stopping at the first one that does not
    /// fit) and checks each one whose type the policy names.
    private static func walk(_ start: UnsafeRawPointer, _ length: Int, _ policy: Policy, depth: Int, _ tally: Tally, _ what: String,
                             _ each: (UInt16, UnsafeRawPointer, Int) throws -> Void = { _, _, _ in }) throws {
        guard depth < 16 else { throw NetlinkError.malformed("\(what): attributes nested too deep") }
        var offset = 0
        while length - offset >= 4 {
            let attr = start + offset
            let size = Int(attr.loadUnaligned(as: UInt16.self))
            // NLA_TYPE_MASK: without NLA_F_NESTED and NLA_F_NET_BYTEORDER.
            let type = attr.loadUnaligned(fromByteOffset: 2, as: UInt16.self) & 0x3fff
            guard size >= 4, size <= length - offset else { return }
            if let kind = policy.kinds[type] { try check(attr + 4, size - 4, kind, depth: depth + 1, tally, what) }
            try each(type, attr + 4, size - 4)
            offset += (size + 3) & ~3
        }
    }

    private static func check(_ p: UnsafeRawPointer, _ n: Int, _ kind: Kind, depth: Int, _ tally: Tally, _ what: String) throws {
        func require(_ ok: Bool, _ detail: String) throws {
            guard ok else { throw NetlinkError.malformed("\(what): \(detail)") }
        }
        switch kind {
        case .u8: try require(n == 1, "8-bit attribute of \(n) bytes")
        case .u16: try require(n == 2, "16-bit attribute of \(n) bytes")
        case .u32: try require(n == 4, "32-bit attribute of \(n) bytes")
        case .u64: try require(n == 8, "64-bit attribute of \(n) bytes")
        case .string: try require(n > 0 && p.load(fromByteOffset: n - 1, as: UInt8.self) == 0, "string attribute without its NUL")
        case .binary: break
        case .refused: try require(false, "attribute type beyond what libnftnl has room for")
        case .nested(let policy):
            try require(n == 0 || n >= 4, "nested attribute of \(n) bytes")
            try walk(p, n, policy, depth: depth, tally, what)
        case .data: try check(p, n, .nested(dataPolicy), depth: depth, tally, what)
        case .expression:
            try require(n == 0 || n >= 4, "expression of \(n) bytes")
            try expression(p, n, depth: depth, tally, what)
        case .verdict:
            try require(n == 0 || n >= 4, "verdict of \(n) bytes")
            try verdict(p, n, depth: depth, tally, what)
        case .expressions, .devices, .concat:
            try require(n == 0 || n >= 4, "list of \(n) bytes")
            try list(p, n, kind, depth: depth, tally, what)
        }
    }

    /// The elements of a list attribute: expressions, device names or concatenation fields.
    private static func list(_ p: UnsafeRawPointer, _ n: Int, _ kind: Kind, depth: Int, _ tally: Tally, _ what: String) throws {
        try walk(p, n, Policy([:]), depth: depth, tally, what) { _, q, m in
            switch kind {
            case .expressions: try check(q, m, .expression, depth: depth + 1, tally, what)
            case .devices: try check(q, m, .string, depth: depth + 1, tally, what)
            default:
                try walk(q, m, Policy([A(NFTA_SET_FIELD_LEN): .u32]), depth: depth + 1, tally, what) { type, _, _ in
                    if type == A(NFTA_SET_FIELD_LEN) { tally.concatFields += 1 }
                }
                guard tally.concatFields <= 16 else { throw NetlinkError.malformed("\(what): concatenation of more than 16 fields") }
            }
        }
    }

    /// libnftnl's verdict parser reads an uninitialized attribute table: the code must be
    /// there, and so must the chain of a jump (-3) or goto (-4).
    private static func verdict(_ p: UnsafeRawPointer, _ n: Int, depth: Int, _ tally: Tally, _ what: String) throws {
        var code: UInt32?
        var chain = false
        try walk(p, n, verdictPolicy, depth: depth, tally, what) { type, q, _ in
            if type == A(NFTA_VERDICT_CODE) { code = UInt32(bigEndian: q.loadUnaligned(as: UInt32.self)) }
            if type == A(NFTA_VERDICT_CHAIN) { chain = true }
        }
        guard let code else { throw NetlinkError.malformed("\(what): verdict without a code") }
        if Int32(bitPattern: code) == -3 || Int32(bitPattern: code) == -4, !chain {
            throw NetlinkError.malformed("\(what): jump or goto without a chain")
        }
    }

    /// One expression: its name (required; the last one, as libnftnl keeps) selects the policy of its data.
    private static func expression(_ p: UnsafeRawPointer, _ n: Int, depth: Int, _ tally: Tally, _ what: String) throws {
        var name: String?
        var data: (UnsafeRawPointer, Int)?
        try walk(p, n, Policy([A(NFTA_EXPR_NAME): .string, A(NFTA_EXPR_DATA): .nested(Policy([:]))]), depth: depth, tally, what) { type, q, m in
            if type == A(NFTA_EXPR_NAME) { name = String(decoding: UnsafeRawBufferPointer(start: q, count: m).prefix { $0 != 0 }, as: UTF8.self) }
            if type == A(NFTA_EXPR_DATA) { data = (q, m) }
        }
        // libnftnl looks up the name without checking it is there (a NULL + 4 strcmp).
        guard let name else { throw NetlinkError.malformed("\(what): expression without a name") }
        guard let data else { return }
        if name == "osf" || name == "synproxy" { throw NetlinkError.malformed("\(what): expression \(name)") }
        guard let policy = expressions[name] else { return }   // libnftnl refuses an unknown name itself
        try walk(data.0, data.1, policy, depth: depth + 1, tally, what)
    }

    /// `NFTA_DATA_*` and the verdict inside.
    static let dataPolicy = Policy([
        A(NFTA_DATA_VALUE): .binary,
        A(NFTA_DATA_VERDICT): .verdict,
    ])

    /// The attributes of a verdict.
    static let verdictPolicy = Policy([A(NFTA_VERDICT_CODE): .u32, A(NFTA_VERDICT_CHAIN_ID): .u32, A(NFTA_VERDICT_CHAIN): .string])

    /// NEWTABLE.
    static let table = Policy([
        A(NFTA_TABLE_NAME): .string, A(NFTA_TABLE_HANDLE): .u64, A(NFTA_TABLE_FLAGS): .u32, A(NFTA_TABLE_USE): .u32,
        A(NFTA_TABLE_OWNER): .u32, A(NFTA_TABLE_USERDATA): .binary,
    ])

    /// NEWCHAIN, with its hook and counters.
    static let chain = Policy([
        A(NFTA_CHAIN_NAME): .string, A(NFTA_CHAIN_TABLE): .string, A(NFTA_CHAIN_TYPE): .string,
        A(NFTA_CHAIN_HOOK): .nested(Policy([A(NFTA_HOOK_HOOKNUM): .u32, A(NFTA_HOOK_PRIORITY): .u32, A(NFTA_HOOK_DEV): .string,
                                            A(NFTA_HOOK_DEVS): .devices])),
        A(NFTA_CHAIN_COUNTERS): .nested(Policy([A(NFTA_COUNTER_BYTES): .u64, A(NFTA_COUNTER_PACKETS): .u64])),
        A(NFTA_CHAIN_POLICY): .u32, A(NFTA_CHAIN_USE): .u32, A(NFTA_CHAIN_FLAGS): .u32, A(NFTA_CHAIN_ID): .u32,
        A(NFTA_CHAIN_HANDLE): .u64, A(NFTA_CHAIN_USERDATA): .binary,
    ])

    /// NEWRULE, with its expressions.
    static let rule = Policy([
        A(NFTA_RULE_TABLE): .string, A(NFTA_RULE_CHAIN): .string, A(NFTA_RULE_HANDLE): .u64, A(NFTA_RULE_POSITION): .u64,
        A(NFTA_RULE_COMPAT): .nested(Policy([A(NFTA_RULE_COMPAT_PROTO): .u32, A(NFTA_RULE_COMPAT_FLAGS): .u32])),
        A(NFTA_RULE_USERDATA): .binary, A(NFTA_RULE_ID): .u32, A(NFTA_RULE_POSITION_ID): .u32,
        A(NFTA_RULE_EXPRESSIONS): .expressions,
    ])

    /// NEWSET, with its description and expressions.
    static let set = Policy([
        A(NFTA_SET_TABLE): .string, A(NFTA_SET_NAME): .string, A(NFTA_SET_HANDLE): .u64, A(NFTA_SET_TIMEOUT): .u64,
        A(NFTA_SET_FLAGS): .u32, A(NFTA_SET_KEY_TYPE): .u32, A(NFTA_SET_KEY_LEN): .u32, A(NFTA_SET_DATA_TYPE): .u32,
        A(NFTA_SET_DATA_LEN): .u32, A(NFTA_SET_ID): .u32, A(NFTA_SET_POLICY): .u32, A(NFTA_SET_GC_INTERVAL): .u32,
        A(NFTA_SET_OBJ_TYPE): .u32, A(NFTA_SET_USERDATA): .binary,
        A(NFTA_SET_DESC): .nested(Policy([A(NFTA_SET_DESC_SIZE): .u32, A(NFTA_SET_DESC_CONCAT): .concat])),
        A(NFTA_SET_EXPR): .expression, A(NFTA_SET_EXPRESSIONS): .expressions,
    ])

    /// One set element. libnftnl 1.2.4 accepts types up to NFTA_SET_MAX (18) into a table of
    /// NFTA_SET_ELEM_MAX + 1 (12): types 12 to 18 would be written past it, on the stack.
    static let element = Policy([
        A(NFTA_SET_ELEM_FLAGS): .u32, A(NFTA_SET_ELEM_TIMEOUT): .u64, A(NFTA_SET_ELEM_EXPIRATION): .u64,
        A(NFTA_SET_ELEM_KEY): .data, A(NFTA_SET_ELEM_KEY_END): .data, A(NFTA_SET_ELEM_DATA): .data,
        A(NFTA_SET_ELEM_EXPR): .expression, A(NFTA_SET_ELEM_EXPRESSIONS): .expressions,
        A(NFTA_SET_ELEM_USERDATA): .binary, A(NFTA_SET_ELEM_OBJREF): .string,
    ].merging((12...18).map { ($0, Kind.refused) }) { a, _ in a })

    /// NEWSETELEM: the element list of one set.
    static let elements = Policy([
        A(NFTA_SET_ELEM_LIST_TABLE): .string, A(NFTA_SET_ELEM_LIST_SET): .string, A(NFTA_SET_ELEM_LIST_SET_ID): .u32,
        A(NFTA_SET_ELEM_LIST_ELEMENTS): .nested(Policy([A(NFTA_LIST_ELEM): .nested(element)])),
    ])

    /// The attributes of each expression libnftnl 1.2.4 knows (its `nftnl_expr_*_cb`), by name;
    /// `osf` and `synproxy` are left out: their callbacks check other attribute numbers than they read.
    static let expressions: [String: Policy] = [
        "bitwise": Policy([A(NFTA_BITWISE_SREG): .u32, A(NFTA_BITWISE_DREG): .u32, A(NFTA_BITWISE_OP): .u32, A(NFTA_BITWISE_LEN): .u32, A(NFTA_BITWISE_MASK): .data, A(NFTA_BITWISE_XOR): .data, A(NFTA_BITWISE_DATA): .data]),
        "byteorder": Policy([A(NFTA_BYTEORDER_SREG): .u32, A(NFTA_BYTEORDER_DREG): .u32, A(NFTA_BYTEORDER_OP): .u32, A(NFTA_BYTEORDER_LEN): .u32, A(NFTA_BYTEORDER_SIZE): .u32]),
        "cmp": Policy([A(NFTA_CMP_SREG): .u32, A(NFTA_CMP_OP): .u32, A(NFTA_CMP_DATA): .data]),
        "connlimit": Policy([A(NFTA_CONNLIMIT_COUNT): .u32, A(NFTA_CONNLIMIT_FLAGS): .u32]),
        "counter": Policy([A(NFTA_COUNTER_BYTES): .u64, A(NFTA_COUNTER_PACKETS): .u64]),
        "ct": Policy([A(NFTA_CT_KEY): .u32, A(NFTA_CT_DREG): .u32, A(NFTA_CT_SREG): .u32, A(NFTA_CT_DIRECTION): .u8]),
        "dup": Policy([A(NFTA_DUP_SREG_ADDR): .u32, A(NFTA_DUP_SREG_DEV): .u32]),
        "dynset": Policy([A(NFTA_DYNSET_SREG_KEY): .u32, A(NFTA_DYNSET_SREG_DATA): .u32, A(NFTA_DYNSET_SET_ID): .u32, A(NFTA_DYNSET_OP): .u32, A(NFTA_DYNSET_FLAGS): .u32, A(NFTA_DYNSET_TIMEOUT): .u64, A(NFTA_DYNSET_SET_NAME): .string, A(NFTA_DYNSET_EXPR): .expression, A(NFTA_DYNSET_EXPRESSIONS): .expressions]),
        "exthdr": Policy([A(NFTA_EXTHDR_TYPE): .u8, A(NFTA_EXTHDR_DREG): .u32, A(NFTA_EXTHDR_SREG): .u32, A(NFTA_EXTHDR_OFFSET): .u32, A(NFTA_EXTHDR_LEN): .u32, A(NFTA_EXTHDR_OP): .u32, A(NFTA_EXTHDR_FLAGS): .u32]),
        "fib": Policy([A(NFTA_FIB_RESULT): .u32, A(NFTA_FIB_DREG): .u32, A(NFTA_FIB_FLAGS): .u32]),
        "flow_offload": Policy([A(NFTA_FLOW_TABLE_NAME): .string]),
        "fwd": Policy([A(NFTA_FWD_SREG_DEV): .u32, A(NFTA_FWD_SREG_ADDR): .u32, A(NFTA_FWD_NFPROTO): .u32]),
        "hash": Policy([A(NFTA_HASH_SREG): .u32, A(NFTA_HASH_DREG): .u32, A(NFTA_HASH_LEN): .u32, A(NFTA_HASH_MODULUS): .u32, A(NFTA_HASH_SEED): .u32, A(NFTA_HASH_OFFSET): .u32, A(NFTA_HASH_TYPE): .u32]),
        "immediate": Policy([A(NFTA_IMMEDIATE_DREG): .u32, A(NFTA_IMMEDIATE_DATA): .data]),
        "last": Policy([A(NFTA_LAST_MSECS): .u64, A(NFTA_LAST_SET): .u32]),
        "limit": Policy([A(NFTA_LIMIT_RATE): .u64, A(NFTA_LIMIT_UNIT): .u64, A(NFTA_LIMIT_BURST): .u32, A(NFTA_LIMIT_TYPE): .u32, A(NFTA_LIMIT_FLAGS): .u32]),
        "log": Policy([A(NFTA_LOG_PREFIX): .string, A(NFTA_LOG_GROUP): .u16, A(NFTA_LOG_QTHRESHOLD): .u16, A(NFTA_LOG_SNAPLEN): .u32, A(NFTA_LOG_LEVEL): .u32, A(NFTA_LOG_FLAGS): .u32]),
        "lookup": Policy([A(NFTA_LOOKUP_SREG): .u32, A(NFTA_LOOKUP_DREG): .u32, A(NFTA_LOOKUP_SET_ID): .u32, A(NFTA_LOOKUP_FLAGS): .u32, A(NFTA_LOOKUP_SET): .string]),
        "masq": Policy([A(NFTA_MASQ_REG_PROTO_MIN): .u32, A(NFTA_MASQ_REG_PROTO_MAX): .u32, A(NFTA_MASQ_FLAGS): .u32]),
        // nft_compat.h (not in the shim): NFTA_MATCH_NAME / _REV / _INFO and NFTA_TARGET_* are 1, 2, 3.
        "match": Policy([1: .string, 2: .u32, 3: .binary]),
        "meta": Policy([A(NFTA_META_KEY): .u32, A(NFTA_META_DREG): .u32, A(NFTA_META_SREG): .u32]),
        "nat": Policy([A(NFTA_NAT_TYPE): .u32, A(NFTA_NAT_FAMILY): .u32, A(NFTA_NAT_REG_ADDR_MIN): .u32, A(NFTA_NAT_REG_ADDR_MAX): .u32, A(NFTA_NAT_REG_PROTO_MIN): .u32, A(NFTA_NAT_REG_PROTO_MAX): .u32, A(NFTA_NAT_FLAGS): .u32]),
        "numgen": Policy([A(NFTA_NG_DREG): .u32, A(NFTA_NG_MODULUS): .u32, A(NFTA_NG_TYPE): .u32, A(NFTA_NG_OFFSET): .u32]),
        "objref": Policy([A(NFTA_OBJREF_IMM_TYPE): .u32, A(NFTA_OBJREF_IMM_NAME): .string, A(NFTA_OBJREF_SET_NAME): .string, A(NFTA_OBJREF_SET_SREG): .u32, A(NFTA_OBJREF_SET_ID): .u32]),
        "payload": Policy([A(NFTA_PAYLOAD_SREG): .u32, A(NFTA_PAYLOAD_DREG): .u32, A(NFTA_PAYLOAD_BASE): .u32, A(NFTA_PAYLOAD_OFFSET): .u32, A(NFTA_PAYLOAD_LEN): .u32, A(NFTA_PAYLOAD_CSUM_TYPE): .u32, A(NFTA_PAYLOAD_CSUM_OFFSET): .u32, A(NFTA_PAYLOAD_CSUM_FLAGS): .u32]),
        "queue": Policy([A(NFTA_QUEUE_NUM): .u16, A(NFTA_QUEUE_TOTAL): .u16, A(NFTA_QUEUE_FLAGS): .u16, A(NFTA_QUEUE_SREG_QNUM): .u32]),
        "quota": Policy([A(NFTA_QUOTA_BYTES): .u64, A(NFTA_QUOTA_CONSUMED): .u64, A(NFTA_QUOTA_FLAGS): .u32]),
        "range": Policy([A(NFTA_RANGE_SREG): .u32, A(NFTA_RANGE_OP): .u32, A(NFTA_RANGE_FROM_DATA): .data, A(NFTA_RANGE_TO_DATA): .data]),
        "redir": Policy([A(NFTA_REDIR_REG_PROTO_MIN): .u32, A(NFTA_REDIR_REG_PROTO_MAX): .u32, A(NFTA_REDIR_FLAGS): .u32]),
        "reject": Policy([A(NFTA_REJECT_TYPE): .u32, A(NFTA_REJECT_ICMP_CODE): .u8]),
        "rt": Policy([A(NFTA_RT_KEY): .u32, A(NFTA_RT_DREG): .u32]),
        "socket": Policy([A(NFTA_SOCKET_KEY): .u32, A(NFTA_SOCKET_DREG): .u32, A(NFTA_SOCKET_LEVEL): .u32]),
        "target": Policy([1: .string, 2: .u32, 3: .binary]),
        "tproxy": Policy([A(NFTA_TPROXY_FAMILY): .u32, A(NFTA_TPROXY_REG_ADDR): .u32, A(NFTA_TPROXY_REG_PORT): .u32]),
        "tunnel": Policy([A(NFTA_TUNNEL_KEY): .u32, A(NFTA_TUNNEL_DREG): .u32]),
        "xfrm": Policy([A(NFTA_XFRM_DREG): .u32, A(NFTA_XFRM_KEY): .u32, A(NFTA_XFRM_SPNUM): .u32, A(NFTA_XFRM_DIR): .u8]),
    ]
}
