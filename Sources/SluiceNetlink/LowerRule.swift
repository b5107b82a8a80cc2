import CNftnl
import SluiceIR

/// nft's register numbering: internal 32-bit word `k` (0-based, counted from NFT_REG_1)
/// maps to a 128-bit register (`NFT_REG_1 + k/4`) when aligned, else to `NFT_REG32_00 + k`
/// (`netlink_put_register` in nft's netlink_linearize.c).
func kernelRegister(word k: Int) -> UInt32 {
    k % 4 == 0 ? UInt32(1 + k / 4) : UInt32(8 + k)
}

/// Inverse of `kernelRegister(word:)`; nil for the verdict register and unknown values.
func registerWord(_ reg: UInt32) -> Int? {
    switch reg {
    case 1...4: Int(reg - 1) * 4
    case 8...23: Int(reg - 8)
    default: nil
    }
}

/// nf_tables verdict codes (`NF_ACCEPT`, `NFT_JUMP` …) as the u32 the kernel stores.
extension Verdict {
    var code: UInt32 {
        switch self {
        case .accept: 1                                  // NF_ACCEPT
        case .drop: 0                                    // NF_DROP
        case .return: UInt32(bitPattern: -5)             // NFT_RETURN
        case .jump: UInt32(bitPattern: -3)               // NFT_JUMP
        case .goto: UInt32(bitPattern: -4)               // NFT_GOTO
        }
    }
    var chain: String? {
        switch self {
        case .jump(let c), .goto(let c): c
        default: nil
        }
    }
}

extension Family {
    /// NFPROTO_IPV4 / NFPROTO_IPV6
    var nfproto: UInt16 { self == .ip ? 2 : 10 }
    init?(nfproto: UInt32) {
        switch nfproto {
        case 2: self = .ip
        case 10: self = .ip6
        default: return nil
        }
    }
}

/// Lowers one IR rule to nf_tables expressions, mirroring nft 1.0.6's
/// `netlink_linearize_rule` (registers, lengths, byte order) expression by expression.
struct RuleLowering {
    let family: Family
    let types: TypeContext
    let rule: NftnlRule
    /// Where a `jhash` loads its input: nft allocates it after the key being built and a
    /// 128-bit data register (`keyWords + 4` in a `dnat … map` key).
    var hashInputWord = 8

    // MARK: Expressions that load a value into registers starting at 32-bit word `k`.

    /// Emits the expressions that load `e` at word `k`; returns the words used.
    @discardableResult
    func load(_ e: Expr, at k: Int) throws -> Int {
        let reg = kernelRegister(word: k)
        switch e {
        case .payload(let f):
            let loc = f.location
            try payload(base: loc.base, offset: loc.offset, length: loc.type.length, dreg: reg)
            return loc.type.words
        case .meta(let key):
            try rule.add("meta") {
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_META_KEY), key.kernelKey)
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_META_DREG), reg)
            }
            return 1
        case .ct(let key):
            let (kk, dir) = key.kernelKey
            try rule.add("ct") {
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_CT_KEY), kk)
                if let dir { nftnl_expr_set_u8($0, A(NFTNL_EXPR_CT_DIR), dir) }
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_CT_DREG), reg)
            }
            return key.type.words
        case .numgenRandom(let mod):
            try rule.add("numgen") {
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_NG_DREG), reg)
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_NG_MODULUS), mod)
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_NG_TYPE), 1)      // NFT_NG_RANDOM
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_NG_OFFSET), 0)
            }
            return 1
        case .jhash(let input, let mod, let seed):
            let sreg = kernelRegister(word: hashInputWord)
            var inner = self
            inner.hashInputWord = hashInputWord + (try types.fields(input).reduce(0) { $0 + $1.words })
            let words = try inner.load(input, at: hashInputWord)
            try rule.add("hash") {
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_HASH_SREG), sreg)
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_HASH_DREG), reg)
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_HASH_LEN), UInt32(words * 4))
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_HASH_MODULUS), mod)
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_HASH_SEED), seed)
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_HASH_OFFSET), 0)
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_HASH_TYPE), 0)        // NFT_HASH_JENKINS
            }
            return 1
        case .symhash:
            throw NetlinkError.unsupported("symhash outside a set declaration")
        case .fibType(let flag):
            try rule.add("fib") {
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_FIB_FLAGS), flag.kernelFlag)
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_FIB_RESULT), 3)   // NFT_FIB_RESULT_ADDRTYPE
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_FIB_DREG), reg)
            }
            return 1
        case .concat(let parts):
            var used = 0
            for p in parts { used += try load(p, at: k + used) }
            return used
        case .mapLookup(let key, let map):
            try loadKey(key, at: k, forSet: map)
            try lookup(set: map, sreg: reg, dreg: reg, inverted: false)
            return try types.fields(e).reduce(0) { $0 + $1.words }
        case .and(let inner, let mask):
            let words = try load(inner, at: k)
            let len = try TypeContext.scalarType(inner).length
            try bitwise(reg: reg, mask: Array(mask.hostBytes.prefix(len)), xor: [UInt8](repeating: 0, count: len))
            return words
        }
    }

    /// Loads the key of a lookup into set `name`. For `flags interval` concatenations
    /// (pipapo), nft converts every host-endian integer field to network order after
    /// loading it (`byteorder reg = hton(reg, size, len)`), because such sets compare
    /// keys as big-endian ranges.
    @discardableResult
    func loadKey(_ e: Expr, at k: Int, forSet name: String) throws -> Int {
        let decl = try types.set(name)
        let parts = e.components
        guard decl.flags.contains(.interval), parts.count > 1 else { return try load(e, at: k) }
        var used = 0
        for p in parts {
            let words = try load(p, at: k + used)
            let fields = try types.fields(p)
            if fields.count == 1, fields[0].byteorder == .host, fields[0].kind != .string {
                try hton(reg: kernelRegister(word: k + used), length: fields[0].length)
            }
            used += words
        }
        return used
    }

    /// `byteorder reg = hton(reg, size, len)`: size is the element size (at least 2).
    func hton(reg: UInt32, length: Int) throws {
        try rule.add("byteorder") {
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_BYTEORDER_SREG), reg)
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_BYTEORDER_DREG), reg)
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_BYTEORDER_OP), 1)          // NFT_BYTEORDER_HTON
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_BYTEORDER_LEN), UInt32(length))
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_BYTEORDER_SIZE), UInt32(max(2, length)))
        }
    }

    func payload(base: UInt32, offset: UInt32, length: Int, dreg: UInt32) throws {
        try rule.add("payload") {
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_PAYLOAD_DREG), dreg)
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_PAYLOAD_BASE), base)
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_PAYLOAD_OFFSET), offset)
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_PAYLOAD_LEN), UInt32(length))
        }
    }

    func cmp(_ op: MatchOp, reg: UInt32 = 1, _ data: [UInt8]) throws {
        try rule.add("cmp") { e in
            nftnl_expr_set_u32(e, A(NFTNL_EXPR_CMP_SREG), reg)
            nftnl_expr_set_u32(e, A(NFTNL_EXPR_CMP_OP), op == .eq ? 0 : 1)   // NFT_CMP_EQ / NFT_CMP_NEQ
            withBytes(data) { _ = nftnl_expr_set(e, A(NFTNL_EXPR_CMP_DATA), $0, $1) }
        }
    }

    func bitwise(reg: UInt32 = 1, mask: [UInt8], xor: [UInt8]) throws {
        try rule.add("bitwise") { e in
            nftnl_expr_set_u32(e, A(NFTNL_EXPR_BITWISE_SREG), reg)
            nftnl_expr_set_u32(e, A(NFTNL_EXPR_BITWISE_DREG), reg)
            nftnl_expr_set_u32(e, A(NFTNL_EXPR_BITWISE_LEN), UInt32(mask.count))
            withBytes(mask) { _ = nftnl_expr_set(e, A(NFTNL_EXPR_BITWISE_MASK), $0, $1) }
            withBytes(xor) { _ = nftnl_expr_set(e, A(NFTNL_EXPR_BITWISE_XOR), $0, $1) }
        }
    }

    func lookup(set: String, sreg: UInt32, dreg: UInt32?, inverted: Bool) throws {
        try rule.add("lookup") {
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_LOOKUP_SREG), sreg)
            if let dreg { nftnl_expr_set_u32($0, A(NFTNL_EXPR_LOOKUP_DREG), dreg) }
            nftnl_expr_set_str($0, A(NFTNL_EXPR_LOOKUP_SET), set)
            if inverted { nftnl_expr_set_u32($0, A(NFTNL_EXPR_LOOKUP_FLAGS), 1) }  // NFT_LOOKUP_F_INV
        }
    }

    // MARK: Statements

    func lower(_ statements: [Statement]) throws {
        for item in mergePayloadMatches(statements) {
            switch item {
            case .statement(let s): try lower(s)
            case .mergedTransportPorts(let op, let sport, let dport):
                // nft's payload_try_merge: `th sport X th dport Y` -> one 32-bit load.
                try payload(base: 2, offset: 0, length: 4, dreg: 1)
                try cmp(op, sport.bigEndianBytes + dport.bigEndianBytes)
            }
        }
    }

    func lower(_ s: Statement) throws {
        switch s {
        case .match(let e, let op, let v): try match(e, op, v)
        case .lookup(let e, let set, let negated):
            try loadKey(e, at: 0, forSet: set)
            try lookup(set: set, sreg: 1, dreg: nil, inverted: negated)
        case .setMark(let op):
            try load(.meta(.mark), at: 0)
            switch op {
            case .or(let v): try bitwise(mask: (~v).hostBytes, xor: v.hostBytes)
            case .xor(let v): try bitwise(mask: UInt32.max.hostBytes, xor: v.hostBytes)
            }
            try rule.add("meta") {
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_META_KEY), MetaKey.mark.kernelKey)
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_META_SREG), 1)
            }
        case .dnatMap(let fam, let key, let map):
            try dnatMap(fam, key: key, map: map)
        case .masquerade(let fullyRandom):
            try rule.add("masq") {
                if fullyRandom { nftnl_expr_set_u32($0, A(NFTNL_EXPR_MASQ_FLAGS), 0x10) }  // NF_NAT_RANGE_PROTO_RANDOM_FULLY
            }
        case .reject:
            let code: UInt8 = family == .ip ? 3 : 4    // ICMP_PORT_UNREACH / ICMPV6_PORT_UNREACH
            try rule.add("reject") {
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_REJECT_TYPE), 0)   // NFT_REJECT_ICMP_UNREACH
                nftnl_expr_set_u8($0, A(NFTNL_EXPR_REJECT_CODE), code)
            }
        case .update(let set, let key, let timeout, let data):
            try update(set: set, key: key, timeout: timeout, data: data)
        case .verdict(let v):
            try rule.add("immediate") {
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_IMM_DREG), 0)      // NFT_REG_VERDICT
                nftnl_expr_set_u32($0, A(NFTNL_EXPR_IMM_VERDICT), v.code)
                if let c = v.chain { nftnl_expr_set_str($0, A(NFTNL_EXPR_IMM_CHAIN), c) }
            }
        }
    }

    private func match(_ e: Expr, _ op: MatchOp, _ v: Value) throws {
        switch (e, v) {
        case (.ct(.state), .ctState(let st)):
            try bitFlagMatch(.ct(.state), op, st.bit)
        case (.ct(.status), .ctStatus(let st)):
            try bitFlagMatch(.ct(.status), op, st.bit)
        case (.meta(.iifname), .interfaceName(let name)):
            try load(e, at: 0)
            try cmp(op, interfaceNameBytes(name))
        case (.fibType, .fibType(let t)):
            try load(e, at: 0)
            try cmp(op, t.value.hostBytes)
        case (.payload(let f), .datum(let d)) where prefixBits(d) != nil:
            try prefixMatch(f, op, d)
        case (_, .datum(let d)):
            try load(e, at: 0)
            let fields = try types.fields(e)
            guard fields.count == 1 else { throw NetlinkError.unsupported("match of a concatenation against a single value") }
            try cmp(op, encode(d, as: fields[0]))
        default:
            throw NetlinkError.unsupported("match \(e) against \(v)")
        }
    }

    /// `ct state new` is a flag test (bitwise + `cmp neq 0`); `ct state != new` compares the
    /// whole value, exactly as nft 1.0.6 lowers an implicit vs. a negated bitmask match.
    private func bitFlagMatch(_ e: Expr, _ op: MatchOp, _ bit: UInt32) throws {
        try load(e, at: 0)
        if op == .eq {
            try bitwise(mask: bit.hostBytes, xor: [0, 0, 0, 0])
            try cmp(.neq, [0, 0, 0, 0])
        } else {
            try cmp(.neq, bit.hostBytes)
        }
    }

    /// `ip saddr 10.0.0.0/8`: byte-aligned prefixes load fewer bytes; others mask.
    private func prefixMatch(_ f: PayloadField, _ op: MatchOp, _ d: Datum) throws {
        let loc = f.location
        let bits = prefixBits(d)!
        let network = try encode(d, as: loc.type)
        let (first, _) = prefixBounds(network, bits: bits)
        if bits > 0 && bits % 8 == 0 {
            try payload(base: loc.base, offset: loc.offset, length: bits / 8, dreg: 1)
            try cmp(op, Array(first.prefix(bits / 8)))
        } else {
            try payload(base: loc.base, offset: loc.offset, length: loc.type.length, dreg: 1)
            let mask = prefixBounds([UInt8](repeating: 0xff, count: loc.type.length), bits: bits).first
            try bitwise(mask: mask, xor: [UInt8](repeating: 0, count: loc.type.length))
            try cmp(op, first)
        }
    }

    /// `dnat ip to <key> map @m`: lookup with dreg, then `nat dnat` with address and port
    /// registers split after the address (`STMT_NAT_F_CONCAT`).
    private func dnatMap(_ fam: Family, key: Expr, map: String) throws {
        var keyed = self
        keyed.hashInputWord = try types.fields(key).reduce(0) { $0 + $1.words } + 4
        try keyed.loadKey(key, at: 0, forSet: map)
        try lookup(set: map, sreg: 1, dreg: 1, inverted: false)
        let data = try types.fields(.mapLookup(key: key, map: map))
        guard data.count == 2 else { throw NetlinkError.unsupported("dnat map @\(map) must map to address . port") }
        try rule.add("nat") {
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_NAT_TYPE), 1)                 // NFT_NAT_DNAT
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_NAT_FAMILY), UInt32(fam.nfproto))
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_NAT_REG_ADDR_MIN), 1)
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_NAT_REG_PROTO_MIN), kernelRegister(word: data[0].words))
        }
    }

    /// `update @m { key timeout Ns : data }`: key registers first, data in the next
    /// 128-bit register (nft allocates concatenations in whole NFT_REG_SIZE registers).
    private func update(set: String, key: Expr, timeout: UInt32?, data: Expr?) throws {
        let keyWords = try load(key, at: 0)
        let dataWords = try data.map { try types.fields($0).reduce(0) { $0 + $1.words } } ?? 0
        // Round up to the next 128-bit register when the data still fits in the 16 32-bit
        // registers; an IPv6 affinity key (10 words) leaves room only right after the key.
        let rounded = (keyWords + 3) / 4 * 4
        let dataWord = rounded + dataWords <= 16 ? rounded : keyWords
        if let data { try load(data, at: dataWord) }
        try rule.add("dynset") {
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_DYNSET_SREG_KEY), 1)
            if data != nil { nftnl_expr_set_u32($0, A(NFTNL_EXPR_DYNSET_SREG_DATA), kernelRegister(word: dataWord)) }
            nftnl_expr_set_u32($0, A(NFTNL_EXPR_DYNSET_OP), 1)                // NFT_DYNSET_OP_UPDATE
            nftnl_expr_set_str($0, A(NFTNL_EXPR_DYNSET_SET_NAME), set)
            if let timeout { nftnl_expr_set_u64($0, A(NFTNL_EXPR_DYNSET_TIMEOUT), UInt64(timeout) * 1000) }
        }
    }
}

/// A statement after nft's payload merge step.
enum LoweredItem {
    case statement(Statement)
    case mergedTransportPorts(MatchOp, sport: UInt16, dport: UInt16)
}

/// nft 1.0.6 `payload_try_merge`: within a run of match/lookup statements, equality (or
/// inequality) matches on adjacent payload fields are merged when the result stays within
/// 32 bits. In the IR's vocabulary only `th sport` (offset 0) + `th dport` (offset 2) qualify;
/// the merged match takes the place of the `th sport` match.
func mergePayloadMatches(_ statements: [Statement]) -> [LoweredItem] {
    var out: [LoweredItem] = []
    var run: [Statement] = []
    func portMatch(_ s: Statement, _ field: PayloadField) -> (MatchOp, UInt16)? {
        if case .match(.payload(field), let op, .datum(.port(let p))) = s { return (op, p) }
        return nil
    }
    func flush() {
        var items = run.map { LoweredItem.statement($0) }
        if let si = run.firstIndex(where: { portMatch($0, .thSport) != nil }),
           let di = run.firstIndex(where: { portMatch($0, .thDport) != nil }),
           let (sop, sp) = portMatch(run[si], .thSport),
           let (dop, dp) = portMatch(run[di], .thDport), sop == dop {
            items[si] = .mergedTransportPorts(sop, sport: sp, dport: dp)
            items.remove(at: di)
        }
        out += items
        run = []
    }
    for s in statements {
        switch s {
        case .match, .lookup: run.append(s)
        default:
            flush()
            out.append(.statement(s))
        }
    }
    flush()
    return out
}
