/// nftables vocabulary: constant data. A `Datum` is one field of a set element key or map
/// data (one component of a concatenation), or the right-hand side of a match.
///
/// Addresses are stored as integers in host order so elements stay small and hash fast;
/// the netlink layer converts them to network order.
public enum Datum: Sendable, Hashable, Comparable, Codable {
    /// An `ipv4_addr`, e.g. `10.180.0.1`.
    case ipv4(UInt32)
    /// An `ipv6_addr`, e.g. `fd00::1` (high and low 64 bits).
    case ipv6(UInt64, UInt64)
    /// An IPv4 prefix in an interval set or a match: `203.0.113.0/25`.
    case prefix4(UInt32, UInt8)
    /// An IPv6 prefix: `fd00::/64`.
    case prefix6(UInt64, UInt64, UInt8)
    /// An `inet_proto`: `tcp` (6), `udp` (17), `sctp` (132).
    case proto(UInt8)
    /// An `inet_service` (port): `80`.
    case port(UInt16)
    /// A plain 32-bit integer in host byte order (numgen slot, mark value).
    case integer(UInt32)

    public static func < (a: Datum, b: Datum) -> Bool {
        switch (a, b) {
        case let (.ipv4(x), .ipv4(y)): return x < y
        case let (.ipv6(x1, x2), .ipv6(y1, y2)): return (x1, x2) < (y1, y2)
        case let (.prefix4(x, l), .prefix4(y, m)): return (x, l) < (y, m)
        case let (.prefix6(x1, x2, l), .prefix6(y1, y2, m)): return (x1, x2, l) < (y1, y2, m)
        case let (.proto(x), .proto(y)): return x < y
        case let (.port(x), .port(y)): return x < y
        case let (.integer(x), .integer(y)): return x < y
        default: return a.rank < b.rank
        }
    }

    private var rank: Int {
        switch self {
        case .ipv4: 0
        case .ipv6: 1
        case .prefix4: 2
        case .prefix6: 3
        case .proto: 4
        case .port: 5
        case .integer: 6
        }
    }
}

/// Lexicographic order over element keys and data.
public func lexicographicallyPrecedes(_ a: [Datum], _ b: [Datum]) -> Bool {
    a.lexicographicallyPrecedes(b)
}

extension Datum {
    public static let tcp = Datum.proto(6)
    public static let udp = Datum.proto(17)
    public static let sctp = Datum.proto(132)
}

/// `ct state` values (`ct state new`).
public enum CtState: String, Sendable, Hashable, Codable {
    case new
    case established
    case related
    case invalid

    /// The kernel bit (NF_CT_STATE_BIT).
    public var bit: UInt32 {
        switch self {
        case .invalid: 1
        case .established: 2
        case .related: 4
        case .new: 8
        }
    }
}

/// `ct status` values (`ct status dnat`).
public enum CtStatus: String, Sendable, Hashable, Codable {
    case dnat
    case snat

    /// IPS_DST_NAT / IPS_SRC_NAT.
    public var bit: UInt32 {
        switch self {
        case .snat: 1 << 4
        case .dnat: 1 << 5
        }
    }
}

/// `fib … type` results (`fib saddr type local`).
public enum FibAddrType: String, Sendable, Hashable, Codable {
    case local

    /// RTN_LOCAL
    public var value: UInt32 { 2 }
}

/// The right-hand side of a match.
public enum Value: Sendable, Hashable, Codable {
    /// One constant (address, prefix, port, protocol, integer).
    case datum(Datum)
    /// `ct state new`: a bitmask test.
    case ctState(CtState)
    /// `ct status dnat`: a bitmask test.
    case ctStatus(CtStatus)
    /// `fib saddr type local`.
    case fibType(FibAddrType)
    /// An interface name for `iifname`: `"eth0"`, or a prefix match when it ends in `*`
    /// (`"veth*"`).
    case interfaceName(String)
}
