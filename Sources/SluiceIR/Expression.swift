/// nftables vocabulary: the expressions that can appear in a rule, in a set's `typeof`
/// declaration, or as the key/data of a map lookup.
///
/// This is a closed set: only what Sluice's layout uses. Every case documents the nft syntax
/// it stands for. The netlink layer lowers each case to kernel expressions exactly as
/// `nft` 1.0.6 does, so `nft list` prints the same text for both.

/// Address family of a table (`table ip …` / `table ip6 …`).
public enum Family: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case ip
    case ip6

    public static func < (a: Family, b: Family) -> Bool { a == .ip && b == .ip6 }
}

/// An nft payload field: `ip saddr`, `ip6 daddr`, `th dport`, `tcp dport` …
public enum PayloadField: String, Sendable, Hashable, Codable {
    /// `ip saddr`
    case ipSaddr = "ip saddr"
    /// `ip daddr`
    case ipDaddr = "ip daddr"
    /// `ip6 saddr`
    case ip6Saddr = "ip6 saddr"
    /// `ip6 daddr`
    case ip6Daddr = "ip6 daddr"
    /// `th dport` (transport header destination port, protocol agnostic)
    case thDport = "th dport"
    /// `th sport`
    case thSport = "th sport"

    public var isAddress: Bool { self != .thDport && self != .thSport }
}

/// `meta <key>`
public enum MetaKey: String, Sendable, Hashable, Codable {
    /// `meta l4proto` (an `inet_proto`)
    case l4proto
    /// `meta mark`
    case mark
    /// `meta iifname` (input interface name)
    case iifname
}

/// `ct <key>`
public enum CtKey: Sendable, Hashable, Codable {
    /// `ct state`
    case state
    /// `ct status`
    case status
    /// `ct original ip daddr` / `ct original ip6 daddr`
    case originalDaddr(Family)
    /// `ct original proto-dst`; needs a preceding `meta l4proto <p>` match to have a type.
    case originalProtoDst
}

/// `fib <flags> type` result keys used by the layout.
public enum FibFlag: String, Sendable, Hashable, Codable {
    /// `fib saddr type`
    case saddr
    /// `fib daddr type`
    case daddr
}

/// A value expression: something that loads data from the packet or computes it.
public indirect enum Expr: Sendable, Hashable, Codable {
    /// A packet field, e.g. `ip daddr`.
    case payload(PayloadField)
    /// `meta l4proto`, `mark`.
    case meta(MetaKey)
    /// `ct state`, `ct original ip daddr`, …
    case ct(CtKey)
    /// `numgen random mod N` (host-endian 32 bit integer in 0..<N).
    case numgenRandom(mod: UInt32)
    /// `jhash <input> mod N seed 0x…`: the kernel's Jenkins hash (`nft_jhash`) of the
    /// input's registers, scaled to 0..<N (host-endian 32 bit integer). With a fixed seed
    /// every node computes the same value for the same packet fields.
    case jhash(Expr, mod: UInt32, seed: UInt32)
    /// `symhash mod N`: only ever written in a map's `typeof`, as the type of a hash-indexed
    /// slot (nft 1.0.6 cannot print a `typeof` holding `jhash`; both are 32-bit integers).
    case symhash(mod: UInt32)
    /// `fib saddr type` / `fib daddr type`.
    case fibType(FibFlag)
    /// `a . b . c`: a concatenation.
    case concat([Expr])
    /// `<key> map @name`: a lookup in a data map, yielding the map's data.
    case mapLookup(key: Expr, map: String)
    /// `mark and 0x4000`: bitwise and of an expression with a constant mask.
    case and(Expr, UInt32)

    /// The components of a concatenation, or the expression itself.
    public var components: [Expr] {
        if case .concat(let parts) = self { return parts }
        return [self]
    }
}
