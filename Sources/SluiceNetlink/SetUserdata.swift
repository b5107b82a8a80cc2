import SluiceIR

/// nft's set userdata (`NFTNL_UDATA_SET_*`): key/data byte order, `typeof` expressions and
/// the comment, encoded exactly as nft 1.0.6 does in `mnl_nft_set_add`, so `nft list`
/// prints `typeof ip daddr . meta l4proto . th dport` for a set Sluice created.
enum SetUserdata {
    static let keyByteorder: UInt8 = 0   // NFTNL_UDATA_SET_KEYBYTEORDER
    static let dataByteorder: UInt8 = 1  // NFTNL_UDATA_SET_DATABYTEORDER
    static let keyTypeof: UInt8 = 3      // NFTNL_UDATA_SET_KEY_TYPEOF
    static let dataTypeof: UInt8 = 4     // NFTNL_UDATA_SET_DATA_TYPEOF
    static let comment: UInt8 = 7        // NFTNL_UDATA_SET_COMMENT

    // nft `enum expr_types` values recorded in NFTNL_UDATA_SET_TYPEOF_EXPR.
    static let exprPayload: UInt32 = 7
    static let exprMeta: UInt32 = 9
    static let exprConcat: UInt32 = 13
    static let exprNumgen: UInt32 = 23
    static let exprHash: UInt32 = 24

    static func encode(_ set: SetDecl, key: SetLayout, data: SetLayout?) throws -> [UInt8] {
        var w = UdataWriter()
        w.u32(keyByteorder, key.byteorder.rawValue)
        if let data { w.u32(dataByteorder, data.byteorder.rawValue) }
        try typeof(&w, keyTypeof, set.key)
        if let d = set.data { try typeof(&w, dataTypeof, d) }
        if let c = set.comment { w.strz(comment, c) }
        return w.bytes
    }

    /// `typeof` nest: {TYPEOF_EXPR: etype, TYPEOF_DATA: {expr udata}}; concatenations nest
    /// one {SUB_TYPE, SUB_DATA} per component, numbered from 0.
    private static func typeof(_ w: inout UdataWriter, _ type: UInt8, _ exprs: [Expr]) throws {
        let parts = exprs.flatMap(\.components)
        if parts.count == 1 {
            let (etype, body) = try exprUdata(parts[0])
            w.nest(type) { n in
                n.u32(0, etype)
                n.nest(1) { $0 = body }
            }
            return
        }
        var bodies: [(UInt32, UdataWriter)] = []
        for p in parts { bodies.append(try exprUdata(p)) }
        w.nest(type) { n in
            n.u32(0, exprConcat)
            n.nest(1) { c in
                for (i, (etype, body)) in bodies.enumerated() {
                    c.nest(UInt8(i)) { sub in
                        sub.u32(0, etype)
                        sub.nest(1) { $0 = body }
                    }
                }
            }
        }
    }

    /// One expression's `build_udata` payload.
    private static func exprUdata(_ e: Expr) throws -> (UInt32, UdataWriter) {
        var w = UdataWriter()
        switch e {
        case .payload(let f):
            w.u32(0, f.location.descId)      // PAYLOAD_UDATA_DESC
            w.u32(1, f.location.templateId)  // PAYLOAD_UDATA_TYPE
            return (exprPayload, w)
        case .meta(let k):
            w.u32(0, k.kernelKey)            // META_UDATA_KEY
            return (exprMeta, w)
        case .numgenRandom(let mod):
            w.u32(0, 1)                      // NUMGEN_UDATA_TYPE: NFT_NG_RANDOM
            w.u32(1, mod)                    // NUMGEN_UDATA_MODULUS
            w.u32(2, 0)                      // NUMGEN_UDATA_OFFSET
            return (exprNumgen, w)
        case .symhash(let mod):
            w.u32(0, 1)                      // NFTNL_UDATA_HASH_TYPE: NFT_HASH_SYM
            w.u32(1, 0)                      // NFTNL_UDATA_HASH_SEED
            w.u32(2, mod)                    // NFTNL_UDATA_HASH_MOD
            w.u32(3, 0)                      // NFTNL_UDATA_HASH_SEED_SET
            w.u32(4, 0)                      // NFTNL_UDATA_HASH_OFFSET
            return (exprHash, w)
        default:
            throw NetlinkError.unsupported("typeof \(e) in a set declaration")
        }
    }

    /// Parsed set userdata.
    struct Decoded {
        var key: [Expr]?
        var data: [Expr]?
        var comment: String?
    }

    static func decode(_ bytes: [UInt8]) -> Decoded {
        let top = parseUdata(bytes[...])
        return Decoded(key: top[keyTypeof].flatMap(decodeTypeof),
                       data: top[dataTypeof].flatMap(decodeTypeof),
                       comment: udataString(top[comment]))
    }

    private static func decodeTypeof(_ b: ArraySlice<UInt8>) -> [Expr]? {
        let n = parseUdata(b)
        guard let etype = udataU32(n[0]), let body = n[1] else { return nil }
        if etype != exprConcat { return decodeExpr(etype, body).map { [$0] } }
        let subs = parseUdata(body)
        var out: [Expr] = []
        for i in 0..<subs.count {   // at most 256 (u8 types): `UInt8(subs.count)` would trap
            guard let s = subs[UInt8(i)] else { return nil }
            let sub = parseUdata(s)
            guard let t = udataU32(sub[0]), let d = sub[1], let e = decodeExpr(t, d) else { return nil }
            out.append(e)
        }
        return out
    }

    private static func decodeExpr(_ etype: UInt32, _ b: ArraySlice<UInt8>) -> Expr? {
        let a = parseUdata(b)
        switch etype {
        case exprPayload:
            guard let desc = udataU32(a[0]), let tmpl = udataU32(a[1]) else { return nil }
            return PayloadField.all.first { $0.location.descId == desc && $0.location.templateId == tmpl }.map { .payload($0) }
        case exprMeta:
            return udataU32(a[0]).flatMap(MetaKey.from(kernelKey:)).map { .meta($0) }
        case exprNumgen:
            guard udataU32(a[0]) == 1, let mod = udataU32(a[1]) else { return nil }
            return .numgenRandom(mod: mod)
        case exprHash:
            guard udataU32(a[0]) == 1, let mod = udataU32(a[2]) else { return nil }
            return .symhash(mod: mod)
        default:
            return nil
        }
    }
}
