#if canImport(Glibc)
import Glibc
#endif
/// nft text forms of IR values: how `nft` spells each datum, expression and statement.
/// The emitters build whole scripts from these.

extension Datum: CustomStringConvertible {
    /// nft's literal form: `10.0.0.1`, `fd00::1`, `10.0.0.0/8`, `tcp`, `80`, `3`.
    public var description: String {
        switch self {
        case .ipv4(let v): return ipv4Text(v)
        case .ipv6(let hi, let lo): return ipv6Text(hi, lo)
        case .prefix4(let v, let len): return "\(ipv4Text(v))/\(len)"
        case .prefix6(let hi, let lo, let len): return "\(ipv6Text(hi, lo))/\(len)"
        case .proto(let p):
            switch p {
            case 6: return "tcp"
            case 17: return "udp"
            case 132: return "sctp"
            default: return "\(p)"
            }
        case .port(let p): return "\(p)"
        case .integer(let i): return "\(i)"
        }
    }
}

extension Datum {
    /// `addr:port`, with brackets for IPv6 (`[fd00::1]:80`).
    public func withPort(_ port: UInt16) -> String {
        if case .ipv6 = self { return "[\(description)]:\(port)" }
        return "\(description):\(port)"
    }
}

func ipv4Text(_ v: UInt32) -> String {
    "\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)"
}

/// RFC 5952 text form of an IPv6 address given as two host-order halves.
func ipv6Text(_ hi: UInt64, _ lo: UInt64) -> String {
    // libc's inet_ntop: RFC 5952, and the very form `nft list` prints.
    var bytes = [UInt8](repeating: 0, count: 16)
    for i in 0..<8 {
        bytes[i] = UInt8(truncatingIfNeeded: hi >> (56 - 8 * UInt64(i)))
        bytes[8 + i] = UInt8(truncatingIfNeeded: lo >> (56 - 8 * UInt64(i)))
    }
    var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    _ = bytes.withUnsafeBytes { inet_ntop(AF_INET6, $0.baseAddress, &out, socklen_t(out.count)) }
    return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func hexText(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }

extension Expr: CustomStringConvertible {
    /// nft syntax: `ip daddr . meta l4proto . th dport`, `numgen random mod 3`, …
    public var description: String {
        switch self {
        case .payload(let f): return f.rawValue
        case .meta(let k): return "meta \(k.rawValue)"
        case .ct(let k):
            switch k {
            case .state: return "ct state"
            case .status: return "ct status"
            case .originalDaddr(let f): return "ct original \(f.rawValue) daddr"
            case .originalProtoDst: return "ct original proto-dst"
            }
        case .numgenRandom(let mod): return "numgen random mod \(mod)"
        case .jhash(let input, let mod, let seed): return "jhash \(input) mod \(mod) seed \(hexText(seed))"
        case .symhash(let mod): return "symhash mod \(mod)"
        case .fibType(let flag): return "fib \(flag.rawValue) type"
        case .concat(let parts): return parts.map(\.description).joined(separator: " . ")
        case .mapLookup(let key, let map): return "\(key) map @\(map)"
        case .and(let e, let mask): return "\(e) and \(hexText(mask))"
        }
    }
}

extension Value: CustomStringConvertible {
    public var description: String {
        switch self {
        case .datum(let d): return d.description
        case .ctState(let s): return s.rawValue
        case .ctStatus(let s): return s.rawValue
        case .fibType(let t): return t.rawValue
        case .interfaceName(let n): return quoted(n)
        }
    }
}

extension Verdict: CustomStringConvertible {
    public var description: String {
        switch self {
        case .accept: return "accept"
        case .drop: return "drop"
        case .return: return "return"
        case .jump(let c): return "jump \(c)"
        case .goto(let c): return "goto \(c)"
        }
    }
}

extension Statement: CustomStringConvertible {
    public var description: String {
        switch self {
        case .match(let e, let op, let v):
            if case .and = e { return "\(e) \(op.rawValue) \(v)" }
            return op == .eq ? "\(e) \(v)" : "\(e) != \(v)"
        case .lookup(let e, let set, let negated):
            return negated ? "\(e) != @\(set)" : "\(e) @\(set)"
        case .setMark(.or(let m)): return "meta mark set meta mark or \(hexText(m))"
        case .setMark(.xor(let m)): return "meta mark set meta mark xor \(hexText(m))"
        case .dnatMap(let f, let key, let map): return "dnat \(f.rawValue) to \(key) map @\(map)"
        case .masquerade(let fullyRandom): return fullyRandom ? "masquerade fully-random" : "masquerade"
        case .reject: return "reject"
        case .update(let set, let key, let timeout, let data):
            var s = "update @\(set) { \(key)"
            if let timeout { s += " timeout \(timeout)s" }
            if let data { s += " : \(data)" }
            return s + " }"
        case .verdict(let v): return v.description
        }
    }
}

extension Rule: CustomStringConvertible {
    /// The rule body as it follows `add rule <family> <table> <chain>`.
    public var description: String {
        var s = statements.map(\.description).joined(separator: " ")
        if let comment { s += " comment \(quoted(comment))" }
        return s
    }
}

/// nft's quoted string form.
public func quoted(_ s: String) -> String {
    "\"" + s.replacingAll("\"", with: "'") + "\""
}

extension String {
    func replacingAll(_ target: Character, with replacement: Character) -> String {
        String(map { $0 == target ? replacement : $0 })
    }
}

extension Element {
    /// `key` or `key : data` in nft element syntax.
    public var text: String {
        let k = key.map(\.description).joined(separator: " . ")
        guard let data else { return k }
        return k + " : " + data.map(\.description).joined(separator: " . ")
    }
}

extension BaseChainSpec {
    /// `type nat hook prerouting priority -100; policy accept;`
    public var text: String {
        "type \(type.rawValue) hook \(hook.rawValue) priority \(priority); policy accept;"
    }
}

extension SetDecl {
    /// `set` or `map`.
    public var keyword: String { isMap ? "map" : "set" }

    /// The declaration lines inside `set name { … }` (without elements).
    public var declarationLines: [String] {
        var lines: [String] = []
        var typeof = "typeof " + key.map(\.description).joined(separator: " . ")
        if let data { typeof += " : " + data.map(\.description).joined(separator: " . ") }
        lines.append(typeof)
        var flagNames: [String] = []
        if flags.contains(.interval) { flagNames.append("interval") }
        if flags.contains(.dynamic) { flagNames.append("dynamic") }
        if flags.contains(.timeout) { flagNames.append("timeout") }
        if !flagNames.isEmpty { lines.append("flags " + flagNames.joined(separator: ",")) }
        if let timeoutSeconds { lines.append("timeout \(timeoutSeconds)s") }
        if let size { lines.append("size \(size)") }
        if counter { lines.append("counter") }
        if let comment { lines.append("comment \(quoted(comment))") }
        return lines
    }
}
