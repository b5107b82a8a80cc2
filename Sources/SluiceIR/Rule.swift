/// nftables vocabulary: statements and rules.

/// A comparison operator in a match: `==` (printed as nothing) or `!=`.
public enum MatchOp: String, Sendable, Hashable, Codable {
    case eq = "=="
    case neq = "!="
}

/// A terminal or control-flow verdict: `accept`, `drop`, `return`, `jump c`, `goto c`.
public enum Verdict: Sendable, Hashable, Codable {
    case accept
    case drop
    case `return`
    case jump(String)
    case goto(String)
}

/// `mark set mark or 0x4000` / `mark set mark xor 0x4000`.
public enum MarkOp: Sendable, Hashable, Codable {
    case or(UInt32)
    case xor(UInt32)
}

/// One item of a rule, in order. Matches come first, then statements; a verdict ends it.
public enum Statement: Sendable, Hashable, Codable {
    /// `<expr> [!=] <value>`, e.g. `ip saddr != 10.0.0.0/8`, `ct state new`,
    /// `mark and 0x4000 == 0`, `fib saddr type local`.
    case match(Expr, MatchOp, Value)
    /// `<expr> [!=] @set`, e.g. `ip daddr . meta l4proto . th dport @cluster-ports`.
    case lookup(Expr, set: String, negated: Bool)
    /// `mark set mark or 0x4000`.
    case setMark(MarkOp)
    /// `dnat ip to <key> map @m` / `dnat ip6 to …`: the map data is `addr . port`.
    case dnatMap(Family, key: Expr, map: String)
    /// `masquerade fully-random`.
    case masquerade(fullyRandom: Bool)
    /// `reject` (ICMP port unreachable / ICMPv6 port unreachable).
    case reject
    /// `update @m { <key> timeout <t>s : <data> }` (data only for maps).
    case update(set: String, key: Expr, timeoutSeconds: UInt32?, data: Expr?)
    /// A verdict statement.
    case verdict(Verdict)
}

/// `add rule <family> <table> <chain> <statements> [comment "…"]`.
public struct Rule: Sendable, Hashable, Codable {
    public var statements: [Statement]
    public var comment: String?

    public init(_ statements: [Statement], comment: String? = nil) {
        self.statements = statements
        self.comment = comment
    }

    /// The chains this rule jumps or goes to.
    public var chainReferences: [String] {
        statements.compactMap {
            if case .verdict(.jump(let c)) = $0 { return c }
            if case .verdict(.goto(let c)) = $0 { return c }
            return nil
        }
    }

    /// The sets and maps this rule refers to.
    public var setReferences: [String] {
        statements.flatMap { s -> [String] in
            switch s {
            case .lookup(let e, let set, _): return [set] + e.mapReferences
            case .match(let e, _, _): return e.mapReferences
            case .dnatMap(_, let key, let map): return [map] + key.mapReferences
            case .update(let set, let key, _, let data): return [set] + key.mapReferences + (data?.mapReferences ?? [])
            default: return []
            }
        }
    }
}

extension Expr {
    /// Maps referenced inside this expression.
    public var mapReferences: [String] {
        switch self {
        case .concat(let parts): return parts.flatMap(\.mapReferences)
        case .mapLookup(let key, let map): return [map] + key.mapReferences
        case .and(let e, _): return e.mapReferences
        default: return []
        }
    }
}

/// The hook a base chain attaches to.
public enum Hook: String, Sendable, Hashable, Codable {
    case prerouting
    case input
    case forward
    case output
    case postrouting
}

/// `type filter` / `type nat`.
public enum ChainType: String, Sendable, Hashable, Codable {
    case filter
    case nat
}

/// A base chain's attachment: `type nat hook prerouting priority -100; policy accept;`.
/// Type, hook and priority always travel together.
public struct BaseChainSpec: Sendable, Hashable, Codable {
    public var type: ChainType
    public var hook: Hook
    public var priority: Int32

    public init(type: ChainType, hook: Hook, priority: Int32) {
        self.type = type
        self.hook = hook
        self.priority = priority
    }
}

/// `chain <name> { [type … hook … priority …;] rules… }`.
public struct Chain: Sendable, Hashable, Codable {
    public var name: String
    public var base: BaseChainSpec?
    public var comment: String?
    public var rules: [Rule]

    public init(name: String, base: BaseChainSpec? = nil, comment: String? = nil, rules: [Rule] = []) {
        self.name = name
        self.base = base
        self.comment = comment
        self.rules = rules
    }

    /// The chain without its rules: what `add chain` creates.
    public var declaration: Chain { Chain(name: name, base: base, comment: comment) }
}
