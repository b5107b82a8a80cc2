/// A pure interpreter for Sluice's IR: what the kernel would do with the first packet of a
/// new connection. It evaluates the table's base chains hook by hook, in priority order,
/// and branches on `numgen` so the result is an exact probability distribution. A `jhash`
/// is computed exactly from the packet, or branched on like `numgen` when its input holds a
/// field the caller marked unknown (`Packet.unknownFields`).
///
/// It is the engine behind `sluice explain` and a kernel-free oracle for tests. It models
/// exactly the IR's closed set of expressions; conntrack is always `new`, and dynamic sets
/// (affinity) start as given.

/// The first packet of a connection.
public struct Packet: Sendable, Hashable {
    public enum Origin: Sendable, Hashable {
        /// Arrives on an interface (`iifname`) from another host or a pod.
        case network(interface: String)
        /// Sent by a process on the node itself.
        case localProcess
    }

    public var saddr: Datum
    public var daddr: Datum
    public var proto: UInt8
    public var sport: UInt16
    public var dport: UInt16
    public var origin: Origin
    public var mark: UInt32 = 0
    /// Fields whose value the caller does not know (`explain` without `--from` or
    /// `--from-port`): a `jhash` over any of them is a uniform draw over its modulus.
    public var unknownFields: Set<PayloadField> = []

    public init(saddr: Datum, daddr: Datum, proto: UInt8, sport: UInt16 = 40000, dport: UInt16, origin: Origin, mark: UInt32 = 0,
                unknownFields: Set<PayloadField> = []) {
        self.unknownFields = unknownFields
        self.saddr = saddr
        self.daddr = daddr
        self.proto = proto
        self.sport = sport
        self.dport = dport
        self.origin = origin
        self.mark = mark
    }
}

/// What the node looks like to the packet: which addresses are its own.
public struct NodeEnvironment: Sendable {
    /// Addresses for which `fib … type local` is true.
    public var localAddresses: Set<Datum>

    public init(localAddresses: Set<Datum>) { self.localAddresses = localAddresses }
}

/// One possible fate of the packet, with its probability.
public struct Outcome: Sendable, Hashable, CustomStringConvertible {
    public enum Fate: Sendable, Hashable {
        /// Delivered (to the node or forwarded), possibly after DNAT.
        case accepted
        /// Dropped by a rule.
        case dropped
        /// Rejected by a rule (ICMP port unreachable / TCP reset).
        case rejected
    }

    public var fate: Fate
    public var probability: Double
    /// DNAT target, if any.
    public var dnat: (address: Datum, port: UInt16)?
    /// Source NAT (masquerade) applied in postrouting.
    public var masqueraded: Bool
    /// The chain and rule that decided a drop/reject, or the DNAT.
    public var decidedBy: String?
    /// Each rule that matched, as `chain: rule`.
    public var trace: [String]

    public static func == (a: Outcome, b: Outcome) -> Bool { a.description == b.description && a.probability == b.probability }
    public func hash(into h: inout Hasher) { h.combine(description) }

    public var description: String {
        switch fate {
        case .dropped: return "drop (\(decidedBy ?? "?"))"
        case .rejected: return "reject (\(decidedBy ?? "?"))"
        case .accepted:
            var s = "accept"
            if let d = dnat { s += " → dnat \(d.address.withPort(d.port))" }
            if masqueraded { s += ", masqueraded" }
            return s
        }
    }
}

/// Evaluates `table` for `packet`. Dynamic map contents (affinity) come from `table.elements`.
public func walk(_ packet: Packet, through table: Table, node: NodeEnvironment) -> [Outcome] {
    var walker = Walker(table: table, node: node)
    return walker.run(packet)
}

private struct State {
    var packet: Packet
    var probability: Double = 1
    var dnat: (Datum, UInt16)?
    var trace: [String] = []
    var decidedBy: String?
    /// Original destination before DNAT (for `ct original …`).
    var originalDaddr: Datum
    var originalDport: UInt16
    var dnatDone = false
    var masqueraded = false
}

private enum ChainResult {
    case `continue`, accept, drop, reject
}

private struct Walker {
    let table: Table
    let node: NodeEnvironment
    /// Interval sets are matched by prefix containment.
    init(table: Table, node: NodeEnvironment) {
        self.table = table
        self.node = node
    }

    mutating func run(_ packet: Packet) -> [Outcome] {
        let start = State(packet: packet, originalDaddr: packet.daddr, originalDport: packet.dport)
        let local = packet.origin == .localProcess
        // Pre-routing hooks (or output for local processes), then the routing decision.
        let first: [Hook] = local ? [.output] : [.prerouting]
        var results: [Outcome] = []
        for (s, r) in hooks(first, start) {
            if r != .continue && r != .accept { results.append(outcome(s, r)); continue }
            let toNode = node.localAddresses.contains(s.packet.daddr)
            let hooksAfter: [Hook]
            if local {
                hooksAfter = [.postrouting]
            } else {
                hooksAfter = toNode ? [.input] : [.forward, .postrouting]
            }
            for (s2, r2) in hooks(hooksAfter, s) { results.append(outcome(s2, r2)) }
        }
        return merge(results)
    }

    func outcome(_ s: State, _ r: ChainResult) -> Outcome {
        let fate: Outcome.Fate = r == .drop ? .dropped : (r == .reject ? .rejected : .accepted)
        return Outcome(fate: fate, probability: s.probability, dnat: s.dnat.map { ($0.0, $0.1) },
                       masqueraded: fate == .accepted && s.masqueraded, decidedBy: s.decidedBy, trace: s.trace)
    }

    func merge(_ outcomes: [Outcome]) -> [Outcome] {
        var byKey: [String: Outcome] = [:]
        var order: [String] = []
        for o in outcomes {
            if var e = byKey[o.description] {
                e.probability += o.probability
                byKey[o.description] = e
            } else {
                byKey[o.description] = o
                order.append(o.description)
            }
        }
        return order.map { byKey[$0]! }
    }

    /// Runs every base chain of each hook in priority order, branching as needed.
    func hooks(_ hs: [Hook], _ s: State) -> [(State, ChainResult)] {
        var current: [(State, ChainResult)] = [(s, .continue)]
        for h in hs {
            let chains = table.chains.filter { $0.base?.hook == h }.sorted { $0.base!.priority < $1.base!.priority }
            for chain in chains {
                var out: [(State, ChainResult)] = []
                for (st, r) in current {
                    if r == .drop || r == .reject { out.append((st, r)); continue }
                    // NAT chains only see packets of new connections that are not yet NATed.
                    if chain.base?.type == .nat && chain.base?.hook != .postrouting && st.dnatDone { out.append((st, .continue)); continue }
                    for (st2, r2) in evalChain(chain, st, depth: 0) {
                        out.append((st2, r2 == .accept ? .continue : r2))
                    }
                }
                current = out
            }
        }
        return current
    }

    func evalChain(_ chain: Chain, _ s: State, depth: Int) -> [(State, ChainResult)] {
        guard depth < 16 else { return [(s, .continue)] }
        var done: [(State, ChainResult)] = []
        var live: [State] = [s]
        for rule in chain.rules {
            var nextLive: [State] = []
            for st in live {
                for (st2, r) in evalRule(rule, in: chain, st, depth: depth) {
                    switch r {
                    case .fallthrough: nextLive.append(st2)
                    case .result(let res): done.append((st2, res))
                    }
                }
            }
            live = nextLive
            if live.isEmpty { break }
        }
        return done + live.map { ($0, .continue) }
    }

    enum RuleResult { case `fallthrough`, result(ChainResult) }

    func evalRule(_ rule: Rule, in chain: Chain, _ s: State, depth: Int) -> [(State, RuleResult)] {
        // Branch over numgen values first: every numgen (or unknown-input jhash) in the rule
        // shares one draw.
        if let mod = rule.statements.lazy.compactMap({ $0.drawModulus(unknown: s.packet.unknownFields) }).first {
            return (0..<mod).flatMap { v -> [(State, RuleResult)] in
                var st = s
                st.probability /= Double(mod)
                return evalRuleOnce(rule, in: chain, st, numgen: v, depth: depth)
            }
        }
        return evalRuleOnce(rule, in: chain, s, numgen: 0, depth: depth)
    }

    func evalRuleOnce(_ rule: Rule, in chain: Chain, _ s0: State, numgen: UInt32, depth: Int) -> [(State, RuleResult)] {
        var s = s0
        let where_ = "\(chain.name): \(rule)"
        for stmt in rule.statements {
            switch stmt {
            case .match(.meta(.iifname), let op, .interfaceName(let name)):
                // Packets a process on the node sends have no input interface (`iifname` is "").
                var iif = ""
                if case .network(let name) = s.packet.origin { iif = name }
                let hit = name.hasSuffix("*") ? iif.hasPrefix(String(name.dropLast())) : iif == name
                if hit != (op == .eq) { return [(s0, .fallthrough)] }
            case .match(let e, let op, let v):
                guard let lhs = eval(e, s, numgen) else { return [(s0, .fallthrough)] }
                let hit = matches(lhs, v)
                if hit != (op == .eq) { return [(s0, .fallthrough)] }
            case .lookup(let e, let set, let negated):
                guard let key = eval(e, s, numgen) else { return [(s0, .fallthrough)] }
                if contains(set, key) == negated { return [(s0, .fallthrough)] }
            case .setMark(.or(let m)): s.packet.mark |= m
            case .setMark(.xor(let m)): s.packet.mark ^= m
            case .dnatMap(_, let key, let map):
                guard let k = eval(key, s, numgen), let data = table.elements[map]?[k], data.count == 2,
                      case .port(let p) = data[1] else { return [(s0, .fallthrough)] }
                s.dnat = (data[0], p)
                s.packet.daddr = data[0]
                s.packet.dport = p
                s.dnatDone = true
                s.trace.append(where_)
                s.decidedBy = where_
                return [(s, .result(.accept))]
            case .masquerade:
                s.masqueraded = true
                s.trace.append(where_)
                return [(s, .result(.accept))]
            case .reject:
                s.trace.append(where_)
                s.decidedBy = where_
                return [(s, .result(.reject))]
            case .update:
                break
            case .verdict(let v):
                s.trace.append(where_)
                switch v {
                case .accept: return [(s, .result(.accept))]
                case .drop:
                    s.decidedBy = where_
                    return [(s, .result(.drop))]
                case .return: return [(s, .result(.continue))]
                case .jump(let c), .goto(let c):
                    guard let target = table.chain(named: c) else { return [(s, .fallthrough)] }
                    let isGoto: Bool = { if case .goto = v { return true }; return false }()
                    return evalChain(target, s, depth: depth + 1).map { st, r in
                        if r == .continue { return (st, isGoto ? .result(.continue) : .fallthrough) }
                        return (st, .result(r))
                    }
                }
            }
        }
        if s.packet.mark != s0.packet.mark { s.trace.append(where_) }
        return [(s, .fallthrough)]
    }

    func eval(_ e: Expr, _ s: State, _ numgen: UInt32) -> [Datum]? {
        switch e {
        case .payload(let f):
            switch f {
            case .ipSaddr, .ip6Saddr: return [s.packet.saddr]
            case .ipDaddr, .ip6Daddr: return [s.packet.daddr]
            case .thDport: return [.port(s.packet.dport)]
            case .thSport: return [.port(s.packet.sport)]
            }
        case .meta(.l4proto): return [.proto(s.packet.proto)]
        case .meta(.mark): return [.integer(s.packet.mark)]
        case .meta(.iifname):
            return nil
        case .ct(.state): return [.integer(CtState.new.bit)]
        case .ct(.status): return [.integer(s.dnatDone ? CtStatus.dnat.bit : 0)]
        case .ct(.originalDaddr): return [s.originalDaddr]
        case .ct(.originalProtoDst): return [.port(s.originalDport)]
        case .numgenRandom: return [.integer(numgen)]
        case .jhash(let input, let mod, let seed):
            if input.reads(s.packet.unknownFields) { return [.integer(numgen)] }
            guard let fields = eval(input, s, numgen) else { return nil }
            var bytes: [UInt8] = []
            for f in fields {
                guard let b = f.registerBytes else { return nil }
                bytes += b
            }
            return [.integer(JenkinsHash.slot(bytes, modulus: mod, seed: seed))]
        case .symhash: return nil
        case .fibType(.saddr): return [.integer(node.localAddresses.contains(s.packet.saddr) ? FibAddrType.local.value : 0)]
        case .fibType(.daddr): return [.integer(node.localAddresses.contains(s.packet.daddr) ? FibAddrType.local.value : 0)]
        case .concat(let parts):
            var out: [Datum] = []
            for p in parts {
                guard let v = eval(p, s, numgen) else { return nil }
                out += v
            }
            return out
        case .mapLookup(let key, let map):
            guard let k = eval(key, s, numgen) else { return nil }
            return table.elements[map]?[k]
        case .and(let inner, let mask):
            guard let v = eval(inner, s, numgen), v.count == 1, case .integer(let i) = v[0] else { return nil }
            return [.integer(i & mask)]
        }
    }

    func matches(_ lhs: [Datum], _ v: Value) -> Bool {
        guard lhs.count == 1 else { return false }
        let x = lhs[0]
        switch v {
        case .datum(let d): return datumMatches(x, d)
        case .ctState(let st): if case .integer(let i) = x { return i & st.bit != 0 }; return false
        case .ctStatus(let st): if case .integer(let i) = x { return i & st.bit != 0 }; return false
        case .fibType(let t): if case .integer(let i) = x { return i == t.value }; return false
        case .interfaceName:
            return false
        }
    }

    func contains(_ set: String, _ key: [Datum]) -> Bool {
        guard let elems = table.elements[set] else { return false }
        if elems[key] != nil { return true }
        guard table.set(named: set)?.flags.contains(.interval) == true else { return false }
        return elems.keys.contains { k in k.count == key.count && zip(k, key).allSatisfy { datumMatches($1, $0) } }
    }
}

extension Statement {
    /// The modulus of the rule's random draw: a `numgen`, or a `jhash` over unknown fields.
    func drawModulus(unknown: Set<PayloadField>) -> UInt32? {
        switch self {
        case .dnatMap(_, let key, _): return key.drawModulus(unknown: unknown)
        case .match(let e, _, _), .lookup(let e, _, _): return e.drawModulus(unknown: unknown)
        default: return nil
        }
    }
}

extension Expr {
    func drawModulus(unknown: Set<PayloadField>) -> UInt32? {
        switch self {
        case .numgenRandom(let m): return m
        case .jhash(let input, let m, _): return input.reads(unknown) ? m : nil
        case .concat(let parts): return parts.lazy.compactMap { $0.drawModulus(unknown: unknown) }.first
        case .mapLookup(let k, _): return k.drawModulus(unknown: unknown)
        case .and(let e, _): return e.drawModulus(unknown: unknown)
        default: return nil
        }
    }

    /// True if the expression loads one of `fields`.
    func reads(_ fields: Set<PayloadField>) -> Bool {
        switch self {
        case .payload(let f): return fields.contains(f)
        case .concat(let parts): return parts.contains { $0.reads(fields) }
        case .jhash(let input, _, _): return input.reads(fields)
        case .mapLookup(let k, _): return k.reads(fields)
        case .and(let e, _): return e.reads(fields)
        default: return false
        }
    }
}

/// True if `value` equals `pattern`, or lies inside it when `pattern` is a prefix.
public func datumMatches(_ value: Datum, _ pattern: Datum) -> Bool {
    switch (value, pattern) {
    case let (.ipv4(v), .prefix4(p, len)):
        let mask: UInt32 = len == 0 ? 0 : ~UInt32(0) << UInt32(32 - Int(len))
        return v & mask == p & mask
    case let (.ipv6(h, l), .prefix6(ph, pl, len)):
        let n = Int(len)
        let mh: UInt64 = n >= 64 ? ~0 : (n == 0 ? 0 : ~UInt64(0) << UInt64(64 - n))
        let ml: UInt64 = n <= 64 ? 0 : (n >= 128 ? ~0 : ~UInt64(0) << UInt64(128 - n))
        return h & mh == ph & mh && l & ml == pl & ml
    default:
        return value == pattern
    }
}
