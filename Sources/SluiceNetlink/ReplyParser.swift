import CNftnl
import SluiceIR

/// What read-back makes of one nf_tables reply message: the public face of `ReplyParser`,
/// for the fuzz target and tests (no kernel, no socket).
public enum ReadBackReply: Sendable, Hashable {
    case table(name: String, comment: String?)
    case chain(table: String, Chain)
    case set(SetDecl)
    case rule(table: String, chain: String, Rule)
    case elements(set: String, ElementMap)
    /// Content the IR has no words for, as read-back reports it.
    case foreign(String)
    /// A message read-back passes over (an anonymous set).
    case skipped

    /// Parses one whole netlink message (`nlmsghdr`, `nfgenmsg`, attributes) of type
    /// NEWTABLE, NEWCHAIN, NEWSET, NEWRULE or NEWSETELEM (in the nf_tables subsystem), with
    /// `sets` as the declarations rules and elements refer to. A malformed message throws
    /// a `NetlinkError`; it never crashes.
    public static func parse(_ message: [UInt8], family: Family, sets: [SetDecl]) throws -> ReadBackReply {
        guard message.count >= Int(sluice_nfgen_payload_offset()) else { throw NetlinkError.malformed("message of \(message.count) bytes") }
        // An aligned copy, padded to 4 bytes as in a receive buffer: libmnl reads attributes up
        // to the aligned end of a message.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: (message.count + 3) & ~3, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        buffer.copyBytes(from: message)
        let h = UnsafePointer(buffer.baseAddress!.assumingMemoryBound(to: nlmsghdr.self))
        guard Int(h.pointee.nlmsg_len) <= message.count else { throw NetlinkError.malformed("nlmsg_len \(h.pointee.nlmsg_len) beyond \(message.count) bytes") }
        return try parse(h, family: family, types: TypeContext(sets))
    }

    private static func parse(_ h: UnsafePointer<nlmsghdr>, family: Family, types: TypeContext) throws -> ReadBackReply {
        guard h.pointee.nlmsg_type >> 8 == UInt16(NFNL_SUBSYS_NFTABLES) else { throw NetlinkError.malformed("not an nf_tables message") }
        switch h.pointee.nlmsg_type & 0xff {
        case MsgType.newTable:
            let t = try ReplyParser.table(h)
            return .table(name: t.name, comment: t.comment)
        case MsgType.newChain:
            let c = try ReplyParser.chain(h)
            return .chain(table: c.table, c.chain)
        case MsgType.newSet:
            switch try ReplyParser.set(h) {
            case .set(let decl): return .set(decl)
            case .foreign(let what): return .foreign(what)
            case .anonymous: return .skipped
            }
        case MsgType.newRule:
            let r = try ReplyParser.rule(h, family: family, types: types)
            switch r.parsed {
            case .success(let rule): return .rule(table: r.table, chain: r.chain, rule)
            case .failure(let f): return .foreign(f.what)
            }
        case MsgType.newSetElem:
            let (name, raw) = try ReplyParser.elements(h)
            let (map, foreign) = try ElementDecoder(try types.set(name), types: types).decode(raw)
            return foreign.isEmpty ? .elements(set: name, map) : .foreign(foreign.joined(separator: "; "))
        default:
            throw NetlinkError.malformed("message type \(h.pointee.nlmsg_type & 0xff)")
        }
    }
}

/// Decoders of single nf_tables reply messages into IR: what read-back runs on every message
/// of its dumps. Each checks the message first (`ReplyCheck`) and reads attributes libnftnl
/// may not have set as errors, so bad bytes give a `NetlinkError.malformed`, never a crash.
enum ReplyParser {
    /// What a NEWSET message holds for read-back.
    enum SetReply {
        case set(SetDecl)
        case anonymous
        case foreign(String)
    }

    /// NEWTABLE: the table's name and comment.
    static func table(_ h: UnsafePointer<nlmsghdr>) throws -> (name: String, comment: String?) {
        try ReplyCheck.message(h, ReplyCheck.table, "table")
        let t = try NftnlTable()
        guard nftnl_table_nlmsg_parse(h, t.raw) >= 0 else { throw NetlinkError.malformed("table") }
        return (try string(nftnl_table_get_str(t.raw, A(NFTNL_TABLE_NAME)), "table name"),
                userdataComment(udata(t.raw, A(NFTNL_TABLE_USERDATA), nftnl_table_get_data)))
    }

    /// NEWCHAIN: the chain (without rules) and the table it belongs to.
    static func chain(_ h: UnsafePointer<nlmsghdr>) throws -> (table: String, chain: Chain) {
        try ReplyCheck.message(h, ReplyCheck.chain, "chain")
        let c = try NftnlChain()
        guard nftnl_chain_nlmsg_parse(h, c.raw) >= 0 else { throw NetlinkError.malformed("chain") }
        var chain = Chain(name: try string(nftnl_chain_get_str(c.raw, A(NFTNL_CHAIN_NAME)), "chain name"))
        if nftnl_chain_is_set(c.raw, A(NFTNL_CHAIN_HOOKNUM)),
           let hook = Hook(number: nftnl_chain_get_u32(c.raw, A(NFTNL_CHAIN_HOOKNUM))),
           let typeName = nftnl_chain_get_str(c.raw, A(NFTNL_CHAIN_TYPE)),
           let type = ChainType(rawValue: String(cString: typeName)) {
            chain.base = BaseChainSpec(type: type, hook: hook, priority: nftnl_chain_get_s32(c.raw, A(NFTNL_CHAIN_PRIO)))
        }
        chain.comment = userdataComment(udata(c.raw, A(NFTNL_CHAIN_USERDATA), nftnl_chain_get_data))
        return (try string(nftnl_chain_get_str(c.raw, A(NFTNL_CHAIN_TABLE)), "chain table"), chain)
    }

    /// NEWSET: the declaration, rebuilt from the `typeof` userdata Sluice writes.
    static func set(_ h: UnsafePointer<nlmsghdr>) throws -> SetReply {
        try ReplyCheck.message(h, ReplyCheck.set, "set")
        let s = try NftnlSet()
        guard nftnl_set_nlmsg_parse(h, s.raw) >= 0 else { throw NetlinkError.malformed("set") }
        let name = try string(nftnl_set_get_str(s.raw, A(NFTNL_SET_NAME)), "set name")
        let flags = nftnl_set_get_u32(s.raw, A(NFTNL_SET_FLAGS))
        if flags & KernelSetFlag.anonymous != 0 { return .anonymous }
        let ud = SetUserdata.decode(udata(s.raw, A(NFTNL_SET_USERDATA), nftnl_set_get_data) ?? [])
        guard let key = ud.key, (flags & KernelSetFlag.map == 0) == (ud.data == nil) else {
            return .foreign("set \(name): no typeof userdata the IR understands")
        }
        var decl = SetDecl(name: name, key: key, data: ud.data, comment: ud.comment)
        if flags & KernelSetFlag.interval != 0 { decl.flags.insert(.interval) }
        if flags & KernelSetFlag.eval != 0 { decl.flags.insert(.dynamic) }
        if flags & KernelSetFlag.timeout != 0 { decl.flags.insert(.timeout) }
        if nftnl_set_is_set(s.raw, A(NFTNL_SET_TIMEOUT)) {
            decl.timeoutSeconds = UInt32(clamping: nftnl_set_get_u64(s.raw, A(NFTNL_SET_TIMEOUT)) / 1000)
        }
        decl.counter = nftnl_set_is_set(s.raw, A(NFTNL_SET_EXPR)) || nftnl_set_is_set(s.raw, A(NFTNL_SET_EXPRESSIONS))
        if nftnl_set_is_set(s.raw, A(NFTNL_SET_DESC_SIZE)) {
            let size = nftnl_set_get_u32(s.raw, A(NFTNL_SET_DESC_SIZE))
            if size != 0 { decl.size = size }
        }
        return .set(decl)
    }

    /// NEWRULE: table, chain and the rule, or why the IR cannot express it.
    static func rule(_ h: UnsafePointer<nlmsghdr>, family: Family, types: TypeContext)
        throws -> (table: String, chain: String, parsed: Result<Rule, ForeignContent>) {
        try ReplyCheck.message(h, ReplyCheck.rule, "rule")
        let r = try NftnlRule()
        guard nftnl_rule_nlmsg_parse(h, r.raw) >= 0 else { throw NetlinkError.malformed("rule") }
        let table = try string(nftnl_rule_get_str(r.raw, A(NFTNL_RULE_TABLE)), "rule table")
        let chain = try string(nftnl_rule_get_str(r.raw, A(NFTNL_RULE_CHAIN)), "rule chain")
        var exprs: [KernelExpr] = []
        let it = try cAlloc("nftnl_expr_iter_create") { nftnl_expr_iter_create(r.raw) }
        defer { nftnl_expr_iter_destroy(it) }
        while let e = nftnl_expr_iter_next(it) { exprs.append(KernelExpr.decode(e)) }
        var parser = RuleParser(family: family, types: types)
        do {
            let statements = try parser.parse(exprs)
            let comment = userdataComment(udata(r.raw, A(NFTNL_RULE_USERDATA), nftnl_rule_get_data))
            return (table, chain, .success(Rule(statements, comment: comment)))
        } catch let f as ForeignContent {
            let handle = nftnl_rule_get_u64(r.raw, A(NFTNL_RULE_HANDLE))
            return (table, chain, .failure(ForeignContent(what: "rule in chain \(chain) (handle \(handle)): \(f.what)")))
        } catch let e as NetlinkError where e.kind == .unsupported {
            return (table, chain, .failure(ForeignContent(what: "rule in chain \(chain): \(e.detail ?? "")")))
        }
    }

    /// NEWSETELEM: the set's name and its elements as the kernel holds them.
    static func elements(_ h: UnsafePointer<nlmsghdr>) throws -> (set: String, elements: [KernelElement]) {
        try ReplyCheck.message(h, ReplyCheck.elements, "set elements")
        let s = try NftnlSet()
        guard nftnl_set_elems_nlmsg_parse(h, s.raw) >= 0 else { throw NetlinkError.malformed("set elements") }
        let name = try string(nftnl_set_get_str(s.raw, A(NFTNL_SET_NAME)), "set elements' set name")
        var raw: [KernelElement] = []
        let it = try NftnlElemIter(s)
        var e = nftnl_set_elems_iter_cur(it.raw)
        while let elem = e {
            raw.append(KernelElement(key: elemBytes(elem, NFTNL_SET_ELEM_KEY) ?? [],
                                     keyEnd: elemBytes(elem, NFTNL_SET_ELEM_KEY_END),
                                     data: elemBytes(elem, NFTNL_SET_ELEM_DATA),
                                     intervalEnd: nftnl_set_elem_is_set(elem, A(NFTNL_SET_ELEM_FLAGS))
                                         && nftnl_set_elem_get_u32(elem, A(NFTNL_SET_ELEM_FLAGS)) & 1 != 0,
                                     counter: elementCounter(elem)))
            e = nftnl_set_elems_iter_next(it.raw)
        }
        return (name, raw)
    }

    /// A string attribute libnftnl returned, or `malformed(what)` when the message lacked it.
    private static func string(_ p: UnsafePointer<CChar>?, _ what: String) throws -> String {
        guard let p else { throw NetlinkError.malformed("no \(what)") }
        return String(cString: p)
    }
}

/// The `counter` expression of a dumped element, if it has one.
private func elementCounter(_ e: OpaquePointer) -> (packets: UInt64, bytes: UInt64)? {
    guard nftnl_set_elem_is_set(e, A(NFTNL_SET_ELEM_EXPR)) else { return nil }
    var len: UInt32 = 0
    guard let p = nftnl_set_elem_get(e, A(NFTNL_SET_ELEM_EXPR), &len) else { return nil }
    let expr = OpaquePointer(p)
    guard let name = nftnl_expr_get_str(expr, A(NFTNL_EXPR_NAME)), String(cString: name) == "counter" else { return nil }
    return (nftnl_expr_get_u64(expr, A(NFTNL_EXPR_CTR_PACKETS)), nftnl_expr_get_u64(expr, A(NFTNL_EXPR_CTR_BYTES)))
}

private func elemBytes(_ e: OpaquePointer, _ attr: Int) -> [UInt8]? {
    guard nftnl_set_elem_is_set(e, A(attr)) else { return nil }
    var len: UInt32 = 0
    guard let p = nftnl_set_elem_get(e, A(attr), &len) else { return nil }
    return Array(UnsafeRawBufferPointer(start: p, count: Int(len)))
}

/// Reads a binary attribute of a libnftnl object through its `*_get_data` getter.
private func udata(_ obj: OpaquePointer, _ attr: UInt16,
                   _ get: (OpaquePointer?, UInt16, UnsafeMutablePointer<UInt32>?) -> UnsafeRawPointer?) -> [UInt8]? {
    var len: UInt32 = 0
    guard let p = get(obj, attr, &len), len > 0 else { return nil }
    return Array(UnsafeRawBufferPointer(start: p, count: Int(len)))
}

/// The comment (type 0) of table/chain/rule userdata.
private func userdataComment(_ b: [UInt8]?) -> String? {
    guard let b else { return nil }
    return udataString(parseUdata(b[...])[0])
}

extension NetlinkSocket {
    /// The raw reply messages of the dumps read-back makes of table `<family> <name>`, in its
    /// order (table, chains, sets, each set's elements, rules): fuzz seeds and parser tests.
    func replyMessages(_ family: Family, _ name: String) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        func keep(_ h: UnsafePointer<nlmsghdr>) {
            out.append(Array(UnsafeRawBufferPointer(start: h, count: Int(h.pointee.nlmsg_len))))
        }
        try dump(MsgType.getTable, family: family, build: { _ in }, each: keep)
        try dump(MsgType.getChain, family: family, build: { _ in }, each: keep)
        var sets: [String] = []
        try dump(MsgType.getSet, family: family, build: { _ in }) { h in
            keep(h)
            if case .set(let decl) = try ReplyParser.set(h) { sets.append(decl.name) }
        }
        for set in sets {
            let filter = try Lower.setReference(table: name, name: set)
            try dump(MsgType.getSetElem, family: family, build: { nftnl_set_elems_nlmsg_build_payload($0, filter.raw) }, each: keep)
        }
        try dump(MsgType.getRule, family: family, build: { _ in }, each: keep)
        return out
    }
}
