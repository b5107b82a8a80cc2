import CNftnl
import SluiceIR

/// Hook numbers (`enum nf_inet_hooks`).
extension Hook {
    var number: UInt32 {
        switch self {
        case .prerouting: 0
        case .input: 1
        case .forward: 2
        case .output: 3
        case .postrouting: 4
        }
    }
    init?(number: UInt32) {
        switch number {
        case 0: self = .prerouting
        case 1: self = .input
        case 2: self = .forward
        case 3: self = .output
        case 4: self = .postrouting
        default: return nil
        }
    }
}

/// nf_tables set flags (`enum nft_set_flags`).
enum KernelSetFlag {
    static let anonymous: UInt32 = 0x1
    static let constant: UInt32 = 0x2
    static let interval: UInt32 = 0x4
    static let map: UInt32 = 0x8
    static let timeout: UInt32 = 0x10
    static let eval: UInt32 = 0x20
    static let concat: UInt32 = 0x80
}

/// Builders for the libnftnl objects of tables, chains, rules and sets, set exactly as nft
/// 1.0.6 sets them (attributes and userdata), so `nft list` cannot tell who created them.
enum Lower {
    static func table(_ name: String, comment: String? = nil, flags: UInt32 = 0) throws -> NftnlTable {
        let t = try NftnlTable()
        nftnl_table_set_str(t.raw, A(NFTNL_TABLE_NAME), name)
        nftnl_table_set_u32(t.raw, A(NFTNL_TABLE_FLAGS), flags)
        if let u = commentUdata(comment) {
            withBytes(u) { _ = nftnl_table_set_data(t.raw, A(NFTNL_TABLE_USERDATA), $0, $1) }
        }
        return t
    }

    static func chain(table: String, _ c: Chain) throws -> NftnlChain {
        let ch = try chain(table: table, name: c.name)
        if let b = c.base {
            nftnl_chain_set_u32(ch.raw, A(NFTNL_CHAIN_HOOKNUM), b.hook.number)
            nftnl_chain_set_s32(ch.raw, A(NFTNL_CHAIN_PRIO), b.priority)
            nftnl_chain_set_str(ch.raw, A(NFTNL_CHAIN_TYPE), b.type.rawValue)
            nftnl_chain_set_u32(ch.raw, A(NFTNL_CHAIN_POLICY), 1)   // NF_ACCEPT
        }
        if let u = commentUdata(c.comment) {
            withBytes(u) { _ = nftnl_chain_set_data(ch.raw, A(NFTNL_CHAIN_USERDATA), $0, $1) }
        }
        return ch
    }

    static func chain(table: String, name: String) throws -> NftnlChain {
        let ch = try NftnlChain()
        nftnl_chain_set_str(ch.raw, A(NFTNL_CHAIN_TABLE), table)
        nftnl_chain_set_str(ch.raw, A(NFTNL_CHAIN_NAME), name)
        return ch
    }

    static func rule(family: Family, table: String, chain: String, _ r: Rule?, types: TypeContext) throws -> NftnlRule {
        let nr = try NftnlRule()
        nftnl_rule_set_str(nr.raw, A(NFTNL_RULE_TABLE), table)
        nftnl_rule_set_str(nr.raw, A(NFTNL_RULE_CHAIN), chain)
        guard let r else { return nr }
        try RuleLowering(family: family, types: types, rule: nr).lower(r.statements)
        if let u = commentUdata(r.comment) {
            withBytes(u) { _ = nftnl_rule_set_data(nr.raw, A(NFTNL_RULE_USERDATA), $0, $1) }
        }
        return nr
    }

    /// `add set|map`: flags, key/data type and length, concat field lengths for interval
    /// concatenations, size, timeout, and nft's userdata (byte order, typeof, comment).
    static func set(table: String, _ s: SetDecl, id: UInt32, types: TypeContext) throws -> NftnlSet {
        let ns = try setReference(table: table, name: s.name)
        let key = try SetLayout(s.key, context: types)
        let data = try s.data.map { try SetLayout($0, context: types) }
        var flags: UInt32 = 0
        if s.flags.contains(.interval) { flags |= KernelSetFlag.interval }
        if data != nil { flags |= KernelSetFlag.map }
        if s.flags.contains(.timeout) { flags |= KernelSetFlag.timeout }
        if s.flags.contains(.dynamic) { flags |= KernelSetFlag.eval }
        if s.flags.contains(.interval) && key.isConcat { flags |= KernelSetFlag.concat }
        nftnl_set_set_u32(ns.raw, A(NFTNL_SET_FLAGS), flags)
        nftnl_set_set_u32(ns.raw, A(NFTNL_SET_KEY_TYPE), key.datatype)
        nftnl_set_set_u32(ns.raw, A(NFTNL_SET_KEY_LEN), UInt32(key.length))
        if let data {
            nftnl_set_set_u32(ns.raw, A(NFTNL_SET_DATA_TYPE), data.datatype)
            nftnl_set_set_u32(ns.raw, A(NFTNL_SET_DATA_LEN), UInt32(data.length))
        }
        nftnl_set_set_u32(ns.raw, A(NFTNL_SET_ID), id)
        if let size = s.size { nftnl_set_set_u32(ns.raw, A(NFTNL_SET_DESC_SIZE), size) }
        if s.flags.contains(.interval) && key.isConcat {
            let lens = key.fields.map { UInt8($0.length) }
            withBytes(lens) { _ = nftnl_set_set_data(ns.raw, A(NFTNL_SET_DESC_CONCAT), $0, $1) }
        }
        if let t = s.timeoutSeconds { nftnl_set_set_u64(ns.raw, A(NFTNL_SET_TIMEOUT), UInt64(t) * 1000) }
        if s.counter { try ns.addCounterExpression() }
        let udata = try SetUserdata.encode(s, key: key, data: data)
        withBytes(udata) { _ = nftnl_set_set_data(ns.raw, A(NFTNL_SET_USERDATA), $0, $1) }
        return ns
    }

    /// A set object naming only table and set: the target of element messages and deletes.
    static func setReference(table: String, name: String) throws -> NftnlSet {
        let ns = try NftnlSet()
        nftnl_set_set_str(ns.raw, A(NFTNL_SET_TABLE), table)
        nftnl_set_set_str(ns.raw, A(NFTNL_SET_NAME), name)
        return ns
    }
}
