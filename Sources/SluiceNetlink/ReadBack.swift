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
            let t = try ReplyParser.table(h)
            if t.name == name { found = .some(t.comment) }
        }
        return found
    }

    private func chains(_ family: Family, _ table: String) throws -> [Chain] {
        var out: [Chain] = []
        let filter = try Lower.chain(table: table, name: "")
        nftnl_chain_unset(filter.raw, A(NFTNL_CHAIN_NAME))
        try socket.dump(MsgType.getChain, family: family, build: { nftnl_chain_nlmsg_build_payload($0, filter.raw) }) { h in
            let (chainTable, chain) = try ReplyParser.chain(h)
            guard chainTable == table else { return }
            out.append(chain)
        }
        return out
    }

    private func sets(_ family: Family, _ table: String) throws -> ([SetDecl], [String]) {
        var out: [SetDecl] = [], foreign: [String] = []
        let filter = try NftnlSet()
        nftnl_set_set_str(filter.raw, A(NFTNL_SET_TABLE), table)
        try socket.dump(MsgType.getSet, family: family, build: { nftnl_set_nlmsg_build_payload($0, filter.raw) }) { h in
            switch try ReplyParser.set(h) {
            case .set(let decl): out.append(decl)
            case .foreign(let what): foreign.append(what)
            case .anonymous: break
            }
        }
        return (out, foreign)
    }

    private func rules(_ family: Family, _ table: String, types: TypeContext) throws -> ([String: [Rule]], [String]) {
        var out: [String: [Rule]] = [:], foreign: [String] = []
        let filter = try Lower.rule(family: family, table: table, chain: "", nil, types: types)
        nftnl_rule_unset(filter.raw, A(NFTNL_RULE_CHAIN))
        try socket.dump(MsgType.getRule, family: family, build: { nftnl_rule_nlmsg_build_payload($0, filter.raw) }) { h in
            let r = try ReplyParser.rule(h, family: family, types: types)
            guard r.table == table else { return }
            switch r.parsed {
            case .success(let rule): out[r.chain, default: []].append(rule)
            case .failure(let f): foreign.append(f.what)
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
            raw += try ReplyParser.elements(h).elements
        }
        return raw
    }
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
            if let last, end > last.count || last[offset..<end] != first[offset..<end] {
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
