import CNftnl
import SluiceIR

/// One kernel expression of a dumped rule, decoded from libnftnl (`nftnl_expr_get_*`).
enum KernelExpr {
    case payload(dreg: UInt32, base: UInt32, offset: UInt32, length: Int)
    case metaLoad(dreg: UInt32, key: UInt32)
    case metaSet(sreg: UInt32, key: UInt32)
    case ct(dreg: UInt32, key: UInt32, direction: UInt8?)
    case numgen(dreg: UInt32, modulus: UInt32, type: UInt32, offset: UInt32)
    case fib(dreg: UInt32, result: UInt32, flags: UInt32)
    case hash(sreg: UInt32, dreg: UInt32, length: Int, modulus: UInt32, seed: UInt32, offset: UInt32, type: UInt32)
    case cmp(sreg: UInt32, op: UInt32, data: [UInt8])
    case bitwise(sreg: UInt32, dreg: UInt32, mask: [UInt8], xor: [UInt8])
    case lookup(sreg: UInt32, dreg: UInt32?, set: String, inverted: Bool)
    case nat(type: UInt32, family: UInt32, addr: UInt32?, proto: UInt32?, flags: UInt32)
    case masq(flags: UInt32)
    case reject(type: UInt32, code: UInt8)
    case dynset(op: UInt32, sregKey: UInt32, sregData: UInt32?, set: String, timeoutMs: UInt64?)
    case immediate(verdict: UInt32, chain: String?)
    /// `byteorder reg = hton(reg, size, len)` in place (pipapo lookup keys).
    case hton(reg: UInt32)
    case other(String)

    static func decode(_ e: OpaquePointer) -> KernelExpr {
        /// A string attribute; "" when the message lacked it.
        func str(_ a: Int) -> String { nftnl_expr_get_str(e, A(a)).map { String(cString: $0) } ?? "" }
        let name = str(NFTNL_EXPR_NAME)
        func u32(_ a: Int) -> UInt32 { nftnl_expr_get_u32(e, A(a)) }
        func has(_ a: Int) -> Bool { nftnl_expr_is_set(e, A(a)) }
        func bytes(_ a: Int) -> [UInt8] {
            var len: UInt32 = 0
            guard let p = nftnl_expr_get(e, A(a), &len) else { return [] }
            return Array(UnsafeRawBufferPointer(start: p, count: Int(len)))
        }
        switch name {
        case "payload":
            if has(NFTNL_EXPR_PAYLOAD_SREG) { return .other("payload set") }
            return .payload(dreg: u32(NFTNL_EXPR_PAYLOAD_DREG), base: u32(NFTNL_EXPR_PAYLOAD_BASE),
                            offset: u32(NFTNL_EXPR_PAYLOAD_OFFSET), length: Int(u32(NFTNL_EXPR_PAYLOAD_LEN)))
        case "meta":
            if has(NFTNL_EXPR_META_SREG) { return .metaSet(sreg: u32(NFTNL_EXPR_META_SREG), key: u32(NFTNL_EXPR_META_KEY)) }
            return .metaLoad(dreg: u32(NFTNL_EXPR_META_DREG), key: u32(NFTNL_EXPR_META_KEY))
        case "ct":
            if has(NFTNL_EXPR_CT_SREG) { return .other("ct set") }
            return .ct(dreg: u32(NFTNL_EXPR_CT_DREG), key: u32(NFTNL_EXPR_CT_KEY),
                       direction: has(NFTNL_EXPR_CT_DIR) ? nftnl_expr_get_u8(e, A(NFTNL_EXPR_CT_DIR)) : nil)
        case "numgen":
            return .numgen(dreg: u32(NFTNL_EXPR_NG_DREG), modulus: u32(NFTNL_EXPR_NG_MODULUS),
                           type: u32(NFTNL_EXPR_NG_TYPE), offset: u32(NFTNL_EXPR_NG_OFFSET))
        case "hash":
            return .hash(sreg: u32(NFTNL_EXPR_HASH_SREG), dreg: u32(NFTNL_EXPR_HASH_DREG), length: Int(u32(NFTNL_EXPR_HASH_LEN)),
                         modulus: u32(NFTNL_EXPR_HASH_MODULUS), seed: u32(NFTNL_EXPR_HASH_SEED),
                         offset: has(NFTNL_EXPR_HASH_OFFSET) ? u32(NFTNL_EXPR_HASH_OFFSET) : 0, type: u32(NFTNL_EXPR_HASH_TYPE))
        case "fib":
            return .fib(dreg: u32(NFTNL_EXPR_FIB_DREG), result: u32(NFTNL_EXPR_FIB_RESULT), flags: u32(NFTNL_EXPR_FIB_FLAGS))
        case "cmp":
            return .cmp(sreg: u32(NFTNL_EXPR_CMP_SREG), op: u32(NFTNL_EXPR_CMP_OP), data: bytes(NFTNL_EXPR_CMP_DATA))
        case "bitwise":
            if has(NFTNL_EXPR_BITWISE_OP) && u32(NFTNL_EXPR_BITWISE_OP) != 0 { return .other("bitwise shift") }
            return .bitwise(sreg: u32(NFTNL_EXPR_BITWISE_SREG), dreg: u32(NFTNL_EXPR_BITWISE_DREG),
                            mask: bytes(NFTNL_EXPR_BITWISE_MASK), xor: bytes(NFTNL_EXPR_BITWISE_XOR))
        case "lookup":
            return .lookup(sreg: u32(NFTNL_EXPR_LOOKUP_SREG),
                           dreg: has(NFTNL_EXPR_LOOKUP_DREG) ? u32(NFTNL_EXPR_LOOKUP_DREG) : nil,
                           set: str(NFTNL_EXPR_LOOKUP_SET),
                           inverted: has(NFTNL_EXPR_LOOKUP_FLAGS) && u32(NFTNL_EXPR_LOOKUP_FLAGS) & 1 != 0)
        case "nat":
            return .nat(type: u32(NFTNL_EXPR_NAT_TYPE), family: u32(NFTNL_EXPR_NAT_FAMILY),
                        addr: has(NFTNL_EXPR_NAT_REG_ADDR_MIN) ? u32(NFTNL_EXPR_NAT_REG_ADDR_MIN) : nil,
                        proto: has(NFTNL_EXPR_NAT_REG_PROTO_MIN) ? u32(NFTNL_EXPR_NAT_REG_PROTO_MIN) : nil,
                        flags: has(NFTNL_EXPR_NAT_FLAGS) ? u32(NFTNL_EXPR_NAT_FLAGS) : 0)
        case "masq":
            if has(NFTNL_EXPR_MASQ_REG_PROTO_MIN) { return .other("masq to ports") }
            return .masq(flags: has(NFTNL_EXPR_MASQ_FLAGS) ? u32(NFTNL_EXPR_MASQ_FLAGS) : 0)
        case "reject":
            return .reject(type: u32(NFTNL_EXPR_REJECT_TYPE), code: nftnl_expr_get_u8(e, A(NFTNL_EXPR_REJECT_CODE)))
        case "dynset":
            if has(NFTNL_EXPR_DYNSET_EXPR) || has(NFTNL_EXPR_DYNSET_EXPRESSIONS) { return .other("dynset with expressions") }
            return .dynset(op: u32(NFTNL_EXPR_DYNSET_OP), sregKey: u32(NFTNL_EXPR_DYNSET_SREG_KEY),
                           sregData: has(NFTNL_EXPR_DYNSET_SREG_DATA) ? u32(NFTNL_EXPR_DYNSET_SREG_DATA) : nil,
                           set: str(NFTNL_EXPR_DYNSET_SET_NAME),
                           timeoutMs: has(NFTNL_EXPR_DYNSET_TIMEOUT) ? nftnl_expr_get_u64(e, A(NFTNL_EXPR_DYNSET_TIMEOUT)) : nil)
        case "byteorder":
            guard u32(NFTNL_EXPR_BYTEORDER_OP) == 1, u32(NFTNL_EXPR_BYTEORDER_SREG) == u32(NFTNL_EXPR_BYTEORDER_DREG) else {
                return .other("byteorder")
            }
            return .hton(reg: u32(NFTNL_EXPR_BYTEORDER_SREG))
        case "immediate":
            guard u32(NFTNL_EXPR_IMM_DREG) == 0 else { return .other("immediate data") }
            return .immediate(verdict: u32(NFTNL_EXPR_IMM_VERDICT),
                              chain: has(NFTNL_EXPR_IMM_CHAIN) ? str(NFTNL_EXPR_IMM_CHAIN) : nil)
        default:
            return .other(name)
        }
    }
}

/// Thrown when a rule contains something the IR cannot express.
struct ForeignContent: Error {
    var what: String
}

/// Rebuilds IR statements from a rule's kernel expressions: the inverse of `RuleLowering`,
/// for exactly the shapes it produces. Anything else is reported as foreign content.
struct RuleParser {
    let family: Family
    let types: TypeContext

    /// What a register word holds.
    private enum Loaded {
        case expr(Expr)
        /// A payload load that is not a whole IR field (prefix match, merged ports).
        case raw(base: UInt32, offset: UInt32, length: Int)
    }

    private var regs: [Int: Loaded] = [:]
    private var masks: [Int: (mask: [UInt8], xor: [UInt8])] = [:]
    private var out: [Statement] = []

    init(family: Family, types: TypeContext) {
        self.family = family
        self.types = types
    }

    mutating func parse(_ exprs: [KernelExpr]) throws -> [Statement] {
        for e in exprs { try step(e) }
        return out
    }

    private func word(_ reg: UInt32) throws -> Int {
        guard let w = registerWord(reg) else { throw ForeignContent(what: "register \(reg)") }
        return w
    }

    private mutating func emit(_ s: Statement) {
        out.append(s)
        regs = [:]
        masks = [:]
    }

    private mutating func step(_ e: KernelExpr) throws {
        switch e {
        case .payload(let dreg, let base, let offset, let length):
            let w = try word(dreg)
            if let f = PayloadField.at(base: base, offset: offset, length: length) {
                regs[w] = .expr(.payload(f))
            } else {
                regs[w] = .raw(base: base, offset: offset, length: length)
            }
        case .metaLoad(let dreg, let key):
            guard let k = MetaKey.from(kernelKey: key) else { throw ForeignContent(what: "meta key \(key)") }
            regs[try word(dreg)] = .expr(.meta(k))
        case .ct(let dreg, let key, let dir):
            guard let k = CtKey.from(key: key, direction: dir) else { throw ForeignContent(what: "ct key \(key)") }
            regs[try word(dreg)] = .expr(.ct(k))
        case .numgen(let dreg, let mod, let type, let offset):
            guard type == 1, offset == 0 else { throw ForeignContent(what: "numgen inc/offset") }
            regs[try word(dreg)] = .expr(.numgenRandom(mod: mod))
        case .hash(let sreg, let dreg, let length, let mod, let seed, let offset, let type):
            guard type == 0, offset == 0 else { throw ForeignContent(what: "hash type \(type) offset \(offset)") }
            let input = try loaded(from: try word(sreg), bytes: length)
            regs[try word(dreg)] = .expr(.jhash(input, mod: mod, seed: seed))
        case .fib(let dreg, let result, let flags):
            guard result == 3, let f = [FibFlag.saddr, .daddr].first(where: { $0.kernelFlag == flags }) else {
                throw ForeignContent(what: "fib result \(result) flags \(flags)")
            }
            regs[try word(dreg)] = .expr(.fibType(f))
        case .bitwise(let sreg, let dreg, let mask, let xor):
            guard sreg == dreg else { throw ForeignContent(what: "bitwise between registers") }
            masks[try word(sreg)] = (mask, xor)
        case .cmp(let sreg, let op, let data):
            guard op <= 1 else { throw ForeignContent(what: "cmp op \(op)") }
            try cmp(try word(sreg), op == 0 ? .eq : .neq, data)
        case .lookup(let sreg, let dreg, let set, let inverted):
            let key = try key(at: try word(sreg), fieldsOf: try types.set(set).key)
            if let dreg {
                regs = [:]
                regs[try word(dreg)] = .expr(.mapLookup(key: key, map: set))
            } else {
                emit(.lookup(key, set: set, negated: inverted))
            }
        case .nat(let type, let fam, let addr, let proto, _):
            guard type == 1, let addr, proto != nil, let f = Family(nfproto: fam),
                  case .expr(.mapLookup(let key, let map))? = regs[try word(addr)] else {
                throw ForeignContent(what: "nat statement")
            }
            emit(.dnatMap(f, key: key, map: map))
        case .masq(let flags):
            guard flags & ~UInt32(0x10) == 0 else { throw ForeignContent(what: "masq flags \(flags)") }
            emit(.masquerade(fullyRandom: flags & 0x10 != 0))
        case .reject(let type, let code):
            guard type == 0, code == (family == .ip ? 3 : 4) else { throw ForeignContent(what: "reject type \(type) code \(code)") }
            emit(.reject)
        case .dynset(let op, let sregKey, let sregData, let set, let timeout):
            guard op == 1 else { throw ForeignContent(what: "dynset op \(op)") }
            let decl = try types.set(set)
            let key = try key(at: try word(sregKey), fieldsOf: decl.key)
            let data = try sregData.map { try self.key(at: try word($0), fieldsOf: decl.data ?? []) }
            // The kernel dumps a timeout of 0 for an update that sets none.
            emit(.update(set: set, key: key, timeoutSeconds: timeout.flatMap { $0 == 0 ? nil : UInt32(clamping: $0 / 1000) }, data: data))
        case .metaSet(let sreg, let key):
            guard key == MetaKey.mark.kernelKey, case .expr(.meta(.mark))? = regs[try word(sreg)],
                  let m = masks[try word(sreg)], m.mask.count == 4 else { throw ForeignContent(what: "meta set") }
            let mask = readHost32(m.mask[...]), xor = readHost32(m.xor[...])
            if mask == ~xor { emit(.setMark(.or(xor))) } else if mask == .max { emit(.setMark(.xor(xor))) } else {
                throw ForeignContent(what: "meta mark set with mask \(mask)")
            }
        case .immediate(let v, let chain):
            emit(.verdict(try verdict(v, chain)))
        case .hton(let reg):
            // Only the lowering's own conversion of a loaded host-endian key field.
            guard case .expr(let e)? = regs[try word(reg)], (try? TypeContext.scalarType(e))?.byteorder == .host else {
                throw ForeignContent(what: "byteorder on register \(reg)")
            }
        case .other(let name):
            throw ForeignContent(what: "expression \(name)")
        }
    }

    /// Rebuilds the key expression a lookup reads: one loaded field per declared field,
    /// walking the registers the way the lowering filled them.
    private func key(at start: Int, fieldsOf decl: [Expr]) throws -> Expr {
        let n = decl.flatMap(\.components).count
        var parts: [Expr] = []
        var w = start
        for _ in 0..<n {
            guard case .expr(let e)? = regs[w] else { throw ForeignContent(what: "lookup key register") }
            parts.append(e)
            w += try types.fields(e).reduce(0) { $0 + $1.words }
        }
        return parts.count == 1 ? parts[0] : .concat(parts)
    }

    /// The expressions loaded from word `start` on that fill exactly `bytes` (a hash input).
    private func loaded(from start: Int, bytes: Int) throws -> Expr {
        var parts: [Expr] = []
        var w = start
        while (w - start) * 4 < bytes {
            guard case .expr(let e)? = regs[w] else { throw ForeignContent(what: "hash input register") }
            parts.append(e)
            w += try types.fields(e).reduce(0) { $0 + $1.words }
        }
        guard (w - start) * 4 == bytes, !parts.isEmpty else { throw ForeignContent(what: "hash input length \(bytes)") }
        return parts.count == 1 ? parts[0] : .concat(parts)
    }

    private func verdict(_ code: UInt32, _ chain: String?) throws -> Verdict {
        switch (Int32(bitPattern: code), chain) {
        case (1, nil): return .accept
        case (0, nil): return .drop
        case (-5, nil): return .return
        case (-3, let c?): return .jump(c)
        case (-4, let c?): return .goto(c)
        default: throw ForeignContent(what: "verdict \(code)")
        }
    }

    private mutating func cmp(_ w: Int, _ op: MatchOp, _ data: [UInt8]) throws {
        let mask = masks[w]
        switch regs[w] {
        case .raw(let base, let offset, let length)?:
            try rawMatch(base: base, offset: offset, length: length, mask: mask?.mask, op, data)
        case .expr(.ct(let key))? where key == .state || key == .status:
            try flagMatch(key, mask: mask?.mask, op, data)
        case .expr(.meta(.iifname))? where mask == nil:
            emit(.match(.meta(.iifname), op, .interfaceName(interfaceName(data))))
        case .expr(.fibType(let f))?:
            guard mask == nil, readHost32(data[...]) == FibAddrType.local.value else { throw ForeignContent(what: "fib type") }
            emit(.match(.fibType(f), op, .fibType(.local)))
        case .expr(.payload(let f))? where mask != nil:
            // A non-byte-aligned prefix: full load, mask, compare.
            guard mask!.mask.count == f.location.type.length, let bits = maskBits(mask!.mask) else {
                throw ForeignContent(what: "payload mask")
            }
            emit(.match(.payload(f), op, .datum(prefixDatum(f, data, bits: bits))))
        case .expr(let e)?:
            let t = try types.fields(e)
            guard t.count == 1 else { throw ForeignContent(what: "compare of a concatenation") }
            if let mask {
                guard mask.xor.allSatisfy({ $0 == 0 }) else { throw ForeignContent(what: "bitwise xor in match") }
                var m = mask.mask
                m += [UInt8](repeating: 0, count: max(0, 4 - m.count))
                emit(.match(.and(e, readHost32(m[...])), op, .datum(decode(data[...], as: t[0]))))
            } else {
                emit(.match(e, op, .datum(decode(data[...], as: t[0]))))
            }
        case nil:
            throw ForeignContent(what: "compare of an unloaded register")
        }
    }

    /// Bits of a contiguous high-bit mask (`ffffff80` → 25); nil if not a prefix mask.
    private func maskBits(_ mask: [UInt8]) -> Int? {
        prefixLength(first: [UInt8](repeating: 0, count: mask.count), last: mask.map { ~$0 })
    }

    private func prefixDatum(_ f: PayloadField, _ data: [UInt8], bits: Int) -> Datum {
        let full = data + [UInt8](repeating: 0, count: max(0, f.location.type.length - data.count))
        switch decode(full[...], as: f.location.type) {
        case .ipv4(let a): return bits == 32 ? .ipv4(a) : .prefix4(a, UInt8(bits))
        case .ipv6(let h, let l): return bits == 128 ? .ipv6(h, l) : .prefix6(h, l, UInt8(bits))
        case let d: return d
        }
    }

    private mutating func rawMatch(base: UInt32, offset: UInt32, length: Int, mask: [UInt8]?, _ op: MatchOp, _ data: [UInt8]) throws {
        if base == 2 && offset == 0 && length == 4 && mask == nil {
            // nft's merged `th sport X th dport Y`.
            out.append(.match(.payload(.thSport), op, .datum(.port(readBigEndian(data.prefix(2))))))
            emit(.match(.payload(.thDport), op, .datum(.port(readBigEndian(data.dropFirst(2).prefix(2))))))
            return
        }
        guard mask == nil, let f = PayloadField.all.first(where: {
            $0.location.base == base && $0.location.offset == offset && $0.location.type.length > length && $0.isAddress
        }) else { throw ForeignContent(what: "payload load \(length)b @ \(base) + \(offset)") }
        emit(.match(.payload(f), op, .datum(prefixDatum(f, data, bits: length * 8))))
    }

    private mutating func flagMatch(_ key: CtKey, mask: [UInt8]?, _ op: MatchOp, _ data: [UInt8]) throws {
        let bit: UInt32
        let matchOp: MatchOp
        if let mask {
            guard op == .neq, readHost32(data[...]) == 0 else { throw ForeignContent(what: "ct flag test") }
            bit = readHost32(mask[...])
            matchOp = .eq
        } else {
            guard op == .neq else { throw ForeignContent(what: "ct == value") }
            bit = readHost32(data[...])
            matchOp = .neq
        }
        if key == .state, let st = [CtState.new, .established, .related, .invalid].first(where: { $0.bit == bit }) {
            emit(.match(.ct(.state), matchOp, .ctState(st)))
        } else if key == .status, let st = [CtStatus.dnat, .snat].first(where: { $0.bit == bit }) {
            emit(.match(.ct(.status), matchOp, .ctStatus(st)))
        } else {
            throw ForeignContent(what: "ct \(key) bits \(bit)")
        }
    }
}
