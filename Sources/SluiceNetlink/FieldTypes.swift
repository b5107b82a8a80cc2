import SluiceIR

/// How a datum is encoded in a register or a set key.
enum DatumKind: Sendable, Equatable {
    case ipv4, ipv6, proto, port, integer, string
}

/// Byte order as nft records it in set userdata (`enum byteorder` in nft's datatype.h).
enum ByteOrder: UInt32 {
    case invalid = 0
    case host = 1
    case big = 2
}

/// What one IR expression loads into a register, in nft's terms: its length in bytes, its
/// nft datatype id (`enum datatypes`), its byte order, and how a `Datum` of it is encoded.
struct FieldType: Equatable {
    var length: Int
    var datatype: UInt32
    var byteorder: ByteOrder
    var kind: DatumKind

    /// Number of 32-bit registers this field occupies (`netlink_register_space`).
    var words: Int { (length + 3) / 4 }
    /// Length when padded to a 32-bit register (concatenation fields).
    var paddedLength: Int { words * 4 }

    static let ipv4Addr = FieldType(length: 4, datatype: 7, byteorder: .big, kind: .ipv4)
    static let ipv6Addr = FieldType(length: 16, datatype: 8, byteorder: .big, kind: .ipv6)
    static let inetService = FieldType(length: 2, datatype: 13, byteorder: .big, kind: .port)
    static let inetProto = FieldType(length: 1, datatype: 12, byteorder: .host, kind: .proto)
    static let mark = FieldType(length: 4, datatype: 19, byteorder: .host, kind: .integer)
    static let integer = FieldType(length: 4, datatype: 4, byteorder: .host, kind: .integer)
    static let ctState = FieldType(length: 4, datatype: 26, byteorder: .host, kind: .integer)
    static let ctStatus = FieldType(length: 4, datatype: 28, byteorder: .host, kind: .integer)
    /// `ifname` (IFNAMSIZ bytes, NUL padded).
    static let ifname = FieldType(length: 16, datatype: 41, byteorder: .host, kind: .string)
    static let fibAddrType = FieldType(length: 4, datatype: 40, byteorder: .host, kind: .integer)
}

/// Where a payload field lives: `struct proto_hdr_template` offsets plus nft's
/// `proto_desc_id` / template index used in typeof userdata.
struct PayloadLocation: Equatable {
    /// NFT_PAYLOAD_NETWORK_HEADER (1) or NFT_PAYLOAD_TRANSPORT_HEADER (2).
    var base: UInt32
    var offset: UInt32
    var type: FieldType
    /// nft `enum proto_desc_id` (PROTO_DESC_IP = 12, PROTO_DESC_IP6 = 13, PROTO_DESC_TH = 11).
    var descId: UInt32
    /// Index of the field in that protocol's template table.
    var templateId: UInt32
}

extension PayloadField {
    var location: PayloadLocation {
        switch self {
        case .ipSaddr: PayloadLocation(base: 1, offset: 12, type: .ipv4Addr, descId: 12, templateId: 11)
        case .ipDaddr: PayloadLocation(base: 1, offset: 16, type: .ipv4Addr, descId: 12, templateId: 12)
        case .ip6Saddr: PayloadLocation(base: 1, offset: 8, type: .ipv6Addr, descId: 13, templateId: 8)
        case .ip6Daddr: PayloadLocation(base: 1, offset: 24, type: .ipv6Addr, descId: 13, templateId: 9)
        case .thSport: PayloadLocation(base: 2, offset: 0, type: .inetService, descId: 11, templateId: 1)
        case .thDport: PayloadLocation(base: 2, offset: 2, type: .inetService, descId: 11, templateId: 2)
        }
    }

    static let all: [PayloadField] = [.ipSaddr, .ipDaddr, .ip6Saddr, .ip6Daddr, .thSport, .thDport]

    /// The field loaded by `payload load <len> @ <base> + <offset>`, if it is a whole field.
    static func at(base: UInt32, offset: UInt32, length: Int) -> PayloadField? {
        all.first { $0.location.base == base && $0.location.offset == offset && $0.location.type.length == length }
    }
}

/// nf_tables meta keys (`enum nft_meta_keys`).
extension MetaKey {
    var kernelKey: UInt32 {
        switch self {
        case .mark: 3        // NFT_META_MARK
        case .l4proto: 16    // NFT_META_L4PROTO
        case .iifname: 6     // NFT_META_IIFNAME
        }
    }
    var type: FieldType {
        switch self {
        case .mark: .mark
        case .l4proto: .inetProto
        case .iifname: .ifname
        }
    }
    static func from(kernelKey: UInt32) -> MetaKey? {
        switch kernelKey {
        case 3: .mark
        case 16: .l4proto
        case 6: .iifname
        default: nil
        }
    }
}

/// nf_tables conntrack keys (`enum nft_ct_keys`) with their direction, if any.
extension CtKey {
    /// (NFT_CT_* key, direction or nil)
    var kernelKey: (key: UInt32, direction: UInt8?) {
        switch self {
        case .state: (0, nil)                       // NFT_CT_STATE
        case .status: (2, nil)                      // NFT_CT_STATUS
        case .originalDaddr(.ip): (20, 0)           // NFT_CT_DST_IP, IP_CT_DIR_ORIGINAL
        case .originalDaddr(.ip6): (22, 0)          // NFT_CT_DST_IP6
        case .originalProtoDst: (12, 0)             // NFT_CT_PROTO_DST
        }
    }
    var type: FieldType {
        switch self {
        case .state: .ctState
        case .status: .ctStatus
        case .originalDaddr(.ip): .ipv4Addr
        case .originalDaddr(.ip6): .ipv6Addr
        case .originalProtoDst: .inetService
        }
    }
    static func from(key: UInt32, direction: UInt8?) -> CtKey? {
        switch (key, direction) {
        case (0, nil): .state
        case (2, nil): .status
        case (20, 0): .originalDaddr(.ip)
        case (22, 0): .originalDaddr(.ip6)
        case (12, 0): .originalProtoDst
        default: nil
        }
    }
}

extension FibFlag {
    /// NFTA_FIB_F_SADDR / NFTA_FIB_F_DADDR
    var kernelFlag: UInt32 { self == .saddr ? 1 : 2 }
}

/// Resolves the data type of `<key> map @name` lookups inside expressions.
struct TypeContext {
    var sets: [String: SetDecl]

    init(_ sets: [SetDecl]) {
        self.sets = Dictionary(sets.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    func set(_ name: String) throws -> SetDecl {
        guard let s = sets[name] else { throw NetlinkError.unsupported("reference to unknown set or map @\(name)") }
        return s
    }

    /// The register fields an expression loads (one per concatenation component).
    func fields(_ e: Expr) throws -> [FieldType] {
        switch e {
        case .concat(let parts): return try parts.flatMap { try fields($0) }
        case .mapLookup(_, let map):
            guard let data = try set(map).data else { throw NetlinkError.unsupported("@\(map) is a set, not a map") }
            return try data.flatMap { try fields($0) }
        default: return [try Self.scalarType(e)]
        }
    }

    /// The type of a non-concatenated expression.
    static func scalarType(_ e: Expr) throws -> FieldType {
        switch e {
        case .payload(let f): return f.location.type
        case .meta(let k): return k.type
        case .ct(let k): return k.type
        case .numgenRandom, .jhash, .symhash: return .integer
        case .fibType: return .fibAddrType
        case .and(let inner, _): return try scalarType(inner)
        case .concat, .mapLookup: throw NetlinkError.unsupported("\(e) is not a scalar expression")
        }
    }
}

/// Key (or data) layout of a set: the fields, their total register length, nft's combined
/// datatype id (`concat_type`: 6 bits per field) and the byte order recorded in userdata.
struct SetLayout {
    var fields: [FieldType]

    var isConcat: Bool { fields.count > 1 }
    /// Single fields use their exact length; concatenations pad every field to 32 bits.
    var length: Int { isConcat ? fields.reduce(0) { $0 + $1.paddedLength } : fields[0].length }
    var datatype: UInt32 { fields.reduce(0) { ($0 << 6) | $1.datatype } }
    var byteorder: ByteOrder { isConcat ? .invalid : fields[0].byteorder }

    init(_ exprs: [Expr], context: TypeContext) throws {
        fields = try exprs.flatMap { try context.fields($0) }
        guard !fields.isEmpty else { throw NetlinkError.unsupported("empty set key") }
    }
}
