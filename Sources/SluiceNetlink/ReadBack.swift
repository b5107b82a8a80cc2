import CNftnl
import SluiceIR

/// A table read back from the kernel over netlink, plus what the IR could not express.
public struct ReadBackResult: Sendable {
    public var table: Table
    /// Human-readable descriptions of foreign content (rules, sets or elements of shapes
    /// the IR has no words for). Such objects are left out of `table`.
    public var foreign: [String]
}

/// Dumps one table (NFT_MSG_GETTABLE/GETCHAIN/GETSET/GETRULE/GETSETELEM) and rebuilds the
/// IR `Table` from it: the read half of restart adoption.
struct ReadBack {
    let socket: NetlinkSocket

    func table(_ family: Family, _ name: String, dynamicElements: Bool, elements readElements: Bool = true) throws -> ReadBackResult? {
        guard let comment = try tableComment(family, name) else { return nil }
        var foreign: [String] = []
        var table = Table(family: family, name: name, comment: comment ?? nil)
        table.chains = try chains(family, name)
        let (sets, badSets) = try sets(family, name)
        table.sets = sets
        foreign += badSets
        let types = TypeContext(sets)
        for set in sets where readElements && (dynamicElements || !set.flags.contains(.dynamic)) {
            let (elems, bad) = try elements(family, name, set, types: types)
            if !elems.isEmpty { table.elements[set.name] = elems }
            foreign += bad
        }
        let (rules, badRules) = try rules(family, name, types: types)
        for i in table.chains.indices { table.chains[i].rules = rules[table.chains[i].name] ?? [] }
        foreign += badRules
        return ReadBackResult(table: table, foreign: foreign)
    }

    /// The per-element counters of a set declared with `counter`, by key.
    func counters(_ family: Family, _ table: String, set: SetDecl) throws -> [[Datum]: ElementCounter] {
        let decoder = try ElementDecoder(set, types: TypeContext([set]))
        var out: [[Datum]: ElementCounter] = [:]
        for e in try dumpElements(family, table, set.name) {
            guard let c = e.counter, let key = decoder.key(e) else { continue }
            out[key] = ElementCounter(packets: c.packets, bytes: c.bytes)
        }
        return out
    }

    /// The elements of one set or map (e.g. a dynamic map the datapath fills).
    func elements(_ family: Family, _ table: String, set: SetDecl) throws -> ElementMap {
        try elements(family, table, set, types: TypeContext([set])).0
    }

    /// nil if the table does not exist; `.some(nil)` if it has no comment.
    private func tableComment(_ family: Family, _ name: String) throws -> String?? {
        var found: String?? = nil
        try socket.dump(MsgType.getTable, family: family, build: { _ in }) { h in
            let t = try NftnlTable()
            guard nftnl_table_nlmsg_parse(h, t.raw) >= 0 else { throw NetlinkError.malformed("table") }
            guard String(cString: nftnl_table_get_str(t.raw, A(NFTNL_TABLE_NAME))) == name else { return }
            found = .some(userdataComment(udata(t.raw, A(NFTNL_TABLE_USERDATA), nftnl_table_get_data)))
        }
        return found
    }

    private func chains(_ family: Family, _ table: String) throws -> [Chain] {
        var out: [Chain] = []
        let filter = try Lower.chain(table: table, name: "")
        nftnl_chain_unset(filter.raw, A(NFTNL_CHAIN_NAME))
        try socket.dump(MsgType.getChain, family: family, build: { nftnl_chain_nlmsg_build_payload($0, filter.raw) }) { h in
            let c = try NftnlChain()
            guard nftnl_chain_nlmsg_parse(h, c.raw) >= 0 else { throw NetlinkError.malformed("chain") }
            guard String(cString: nftnl_chain_get_str(c.raw, A(NFTNL_CHAIN_TABLE))) == table else { return }
            var chain = Chain(name: String(cString: nftnl_chain_get_str(c.raw, A(NFTNL_CHAIN_NAME))))
            if nftnl_chain_is_set(c.raw, A(NFTNL_CHAIN_HOOKNUM)),
               let hook = Hook(number: nftnl_chain_get_u32(c.raw, A(NFTNL_CHAIN_HOOKNUM))),
               let type = ChainType(rawValue: String(cString: nftnl_chain_get_str(c.raw, A(NFTNL_CHAIN_TYPE)))) {
                chain.base = BaseChainSpec(type: type, hook: hook, priority: nftnl_chain_get_s32(c.raw, A(NFTNL_CHAIN_PRIO)))
            }
            chain.comment = userdataComment(udata(c.raw, A(NFTNL_CHAIN_USERDATA), nftnl_chain_get_data))
            out.append(chain)
        }
        return out
    }

    private func sets(_ family: Family, _ table: String) throws -> ([SetDecl], [String]) {
        var out: [SetDecl] = [], foreign: [String] = []
        let filter = try NftnlSet()
        nftnl_set_set_str(filter.raw, A(NFTNL_SET_TABLE), table)
        try socket.dump(MsgType.getSet, family: family, build: { nftnl_set_nlmsg_build_payload($0, filter.raw) }) { h in
            let s = try NftnlSet()
            guard nftnl_set_nlmsg_parse(h, s.raw) >= 0 else { throw NetlinkError.malformed("set") }
            let name = String(cString: nftnl_set_get_str(s.raw, A(NFTNL_SET_NAME)))
            let flags = nftnl_set_get_u32(s.raw, A(NFTNL_SET_FLAGS))
            if flags & KernelSetFlag.anonymous != 0 { return }
            let ud = SetUserdata.decode(udata(s.raw, A(NFTNL_SET_USERDATA), nftnl_set_get_data) ?? [])
            guard let key = ud.key, (flags & KernelSetFlag.map == 0) == (ud.data == nil) else {
                foreign.append("set \(name): no typeof userdata the IR understands")
                return
            }
            var decl = SetDecl(name: name, key: key, data: ud.data, comment: ud.comment)
            if flags & KernelSetFlag.interval != 0 { decl.flags.insert(.interval) }
            if flags & KernelSetFlag.eval != 0 { decl.flags.insert(.dynamic) }
            if flags & KernelSetFlag.timeout != 0 { decl.flags.insert(.timeout) }
            if nftnl_set_is_set(s.raw, A(NFTNL_SET_TIMEOUT)) {
                decl.timeoutSeconds = UInt32(nftnl_set_get_u64(s.raw, A(NFTNL_SET_TIMEOUT)) / 1000)
            }
            decl.counter = nftnl_set_is_set(s.raw, A(NFTNL_SET_EXPR)) || nftnl_set_is_set(s.raw, A(NFTNL_SET_EXPRESSIONS))
            if nftnl_set_is_set(s.raw, A(NFTNL_SET_DESC_SIZE)) {
                let size = nftnl_set_get_u32(s.raw, A(NFTNL_SET_DESC_SIZE))
                if size != 0 { decl.size = size }
            }
            out.append(decl)
        }
        return (out, foreign)
    }

    private func rules(_ family: Family, _ table: String, types: TypeContext) throws -> ([String: [Rule]], [String]) {
        var out: [String: [Rule]] = [:], foreign: [String] = []
        let filter = try Lower.rule(family: family, table: table, chain: "", nil, types: types)
        nftnl_rule_unset(filter.raw, A(NFTNL_RULE_CHAIN))
        try socket.dump(MsgType.getRule, family: family, build: { nftnl_rule_nlmsg_build_payload($0, filter.raw) }) { h in
            let r = try NftnlRule()
            guard nftnl_rule_nlmsg_parse(h, r.raw) >= 0 else { throw NetlinkError.malformed("rule") }
            guard String(cString: nftnl_rule_get_str(r.raw, A(NFTNL_RULE_TABLE))) == table else { return }
            let chain = String(cString: nftnl_rule_get_str(r.raw, A(NFTNL_RULE_CHAIN)))
            var exprs: [KernelExpr] = []
            let it = try cAlloc("nftnl_expr_iter_create") { nftnl_expr_iter_create(r.raw) }
            defer { nftnl_expr_iter_destroy(it) }
            while let e = nftnl_expr_iter_next(it) { exprs.append(KernelExpr.decode(e)) }
            var parser = RuleParser(family: family, types: types)
            do {
                let statements = try parser.parse(exprs)
                let comment = userdataComment(udata(r.raw, A(NFTNL_RULE_USERDATA), nftnl_rule_get_data))
                out[chain, default: []].append(Rule(statements, comment: comment))
            } catch let f as ForeignContent {
                foreign.append("rule in chain \(chain) (handle \(nftnl_rule_get_u64(r.raw, A(NFTNL_RULE_HANDLE)))): \(f.what)")
            } catch let e as NetlinkError where e.kind == .unsupported {
                foreign.append("rule in chain \(chain): \(e.detail ?? "")")
            }
        }
        return (out, foreign)
    }

    /// Element dumps of hash sets are not consistent while the kernel rehashes (a resize
    /// right after a bulk load can hide elements from a multi-part dump), so the dump is
    /// repeated until two consecutive dumps have the same fingerprint (at most four dumps).
    private func elements(_ family: Family, _ table: String, _ set: SetDecl, types: TypeContext) throws -> (ElementMap, [String]) {
        let decoder = try ElementDecoder(set, types: types)
        var raw = try dumpElements(family, table, set.name)
        var fingerprint = Self.fingerprint(raw)
        for _ in 0..<3 {
            let again = try dumpElements(family, table, set.name)
            let f = Self.fingerprint(again)
            raw = again
            if f == fingerprint { break }
            fingerprint = f
        }
        return decoder.decode(raw)
    }

    /// Order-independent digest of a dump (count plus the wrapping sum of FNV-1a hashes).
    private static func fingerprint(_ elements: [KernelElement]) -> (Int, UInt64) {
        var sum: UInt64 = 0
        for e in elements {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for part in [e.key, e.keyEnd ?? [], e.data ?? [], [e.intervalEnd ? 1 : 0]] {
                for b in part { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
                h = (h ^ 0xff) &* 0x100_0000_01b3
            }
            sum &+= h
        }
        return (elements.count, sum)
    }

    private func dumpElements(_ family: Family, _ table: String, _ name: String) throws -> [KernelElement] {
        var raw: [KernelElement] = []
        let filter = try Lower.setReference(table: table, name: name)
        try socket.dump(MsgType.getSetElem, family: family, build: { nftnl_set_elems_nlmsg_build_payload($0, filter.raw) }) { h in
            let s = try NftnlSet()
            guard nftnl_set_elems_nlmsg_parse(h, s.raw) >= 0 else { throw NetlinkError.malformed("set elements") }
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
        }
        return raw
    }
}

/// The `counter` expression of a dumped element, if it has one.
private func elementCounter(_ e: OpaquePointer) -> (packets: UInt64, bytes: UInt64)? {
    guard nftnl_set_elem_is_set(e, A(NFTNL_SET_ELEM_EXPR)) else { return nil }
    var len: UInt32 = 0
    guard let p = nftnl_set_elem_get(e, A(NFTNL_SET_ELEM_EXPR), &len) else { return nil }
    let expr = OpaquePointer(p)
    guard String(cString: nftnl_expr_get_str(expr, A(NFTNL_EXPR_NAME))) == "counter" else { return nil }
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

/// Inverse of `ElementEncoder`.
struct ElementDecoder {
    let encoder: ElementEncoder

    init(_ set: SetDecl, types: TypeContext) throws { encoder = try ElementEncoder(set, types: types) }

    func decode(_ raw: [KernelElement]) -> (ElementMap, [String]) {
        var out: ElementMap = [:], foreign: [String] = []
        let decl = encoder.decl
        if encoder.isInterval && !encoder.key.isConcat {
            // By key; an interval end sorts before a start with the same key (adjacent ranges).
            let sorted = raw.sorted {
                $0.key != $1.key ? $0.key.lexicographicallyPrecedes($1.key) : ($0.intervalEnd && !$1.intervalEnd)
            }
            var i = 0
            while i < sorted.count {
                let start = sorted[i]
                i += 1
                if start.intervalEnd { continue }       // nft's leading zero end element
                var last = [UInt8](repeating: 0xff, count: start.key.count)
                if i < sorted.count && sorted[i].intervalEnd {
                    last = decrement(sorted[i].key)
                    i += 1
                }
                guard let d = datum(first: start.key, last: last, type: encoder.key.fields[0]) else {
                    foreign.append("set \(decl.name): range element that is not a prefix"); continue
                }
                out[[d]] = decodeData(start.data)
            }
            return (out, foreign)
        }
        for e in raw {
            guard let key = decodeKey(e.key, e.keyEnd) else {
                foreign.append("set \(decl.name): element that is not a prefix or value"); continue
            }
            out[key] = decodeData(e.data)
        }
        return (out, foreign)
    }

    /// The key of one element of a set without intervals.
    func key(_ e: KernelElement) -> [Datum]? { decodeKey(e.key, e.keyEnd) }

    private func decodeKey(_ first: [UInt8], _ last: [UInt8]?) -> [Datum]? {
        var out: [Datum] = []
        out.reserveCapacity(encoder.key.fields.count)
        var offset = 0
        let pipapo = encoder.isInterval && encoder.key.isConcat
        for field in encoder.key.fields {
            var t = field
            if pipapo && t.kind == .integer { t.byteorder = .big }
            let width = encoder.key.isConcat ? t.paddedLength : t.length
            let end = offset + t.length
            guard end <= first.count else { return nil }
            if let last, last[offset..<end] != first[offset..<end] {
                guard end <= last.count,
                      let d = datum(first: Array(first[offset..<end]), last: Array(last[offset..<end]), type: t) else { return nil }
                out.append(d)
            } else {
                out.append(SluiceNetlink.decode(first[offset..<end], as: t))
            }
            offset += width
        }
        return out
    }

    private func decodeData(_ b: [UInt8]?) -> [Datum] {
        guard let layout = encoder.data, let b else { return [] }
        var out: [Datum] = []
        var offset = 0
        for t in layout.fields {
            guard offset + t.length <= b.count else { break }
            out.append(SluiceNetlink.decode(b[offset..<offset + t.length], as: t))
            offset += layout.isConcat ? t.paddedLength : t.length
        }
        return out
    }
}

/// Subtracts one from a big-endian byte string (the inclusive end of an interval).
func decrement(_ b: [UInt8]) -> [UInt8] {
    var r = b
    for i in stride(from: r.count - 1, through: 0, by: -1) {
        if r[i] == 0 { r[i] = 0xff } else { r[i] -= 1; return r }
    }
    return r
}

extension NetlinkSocket {
    /// Reads table `<family> <name>` back over netlink (table, chains, rules, sets,
    /// elements) and rebuilds the IR; nil if the table does not exist. With
    /// `dynamicElements: false` the elements of dynamic sets (those the datapath fills, such
    /// as the ClientIP-affinity maps) are left out: they are not configuration.
    /// With `elements: false` no element is read (the structure only).
    public func readTable(_ family: Family, _ name: String, dynamicElements: Bool = true,
                          elements: Bool = true) throws -> ReadBackResult? {
        // A writer may delete a set or chain between the dumps of one read (ENOENT on a
        // later dump): read the whole table again.
        var attempt = 0
        while true {
            do {
                return try ReadBack(socket: self).table(family, name, dynamicElements: dynamicElements, elements: elements)
            } catch let e as NetlinkError where e.errno == ENOENT_ && attempt < 4 {
                attempt += 1
            }
        }
    }

    /// Reads the element counters of a set declared with `counter` (one dump).
    public func readCounters(_ family: Family, _ table: String, set: SetDecl) throws -> [[Datum]: ElementCounter] {
        try ReadBack(socket: self).counters(family, table, set: set)
    }

    /// Reads the current elements of one set or map over netlink.
    public func readElements(_ family: Family, _ table: String, set: SetDecl) throws -> ElementMap {
        try ReadBack(socket: self).elements(family, table, set: set)
    }
}
