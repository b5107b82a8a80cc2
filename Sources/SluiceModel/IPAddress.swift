#if canImport(Glibc)
import Glibc
#endif
/// Kubernetes vocabulary: IP addresses and CIDRs as they appear in Service and EndpointSlice
/// fields. Parsing is lenient in the way kube-proxy is: surrounding spaces are trimmed and
/// zero-padded IPv4 octets are accepted and normalized (`172.30.0.041` → `172.30.0.41`).

public enum IPFamily: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case ipv4 = "IPv4"
    case ipv6 = "IPv6"

    public static func < (a: IPFamily, b: IPFamily) -> Bool { a == .ipv4 && b == .ipv6 }
}

/// An IPv4 or IPv6 address.
public enum IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// Host-order 32 bits.
    case v4(UInt32)
    /// Host-order high and low 64 bits.
    case v6(UInt64, UInt64)

    public var family: IPFamily {
        if case .v4 = self { return .ipv4 }
        return .ipv6
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        switch (a, b) {
        case let (.v4(x), .v4(y)): return x < y
        case let (.v6(x1, x2), .v6(y1, y2)): return (x1, x2) < (y1, y2)
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        }
    }

    /// Parses an address; returns nil if it is not a valid IPv4 or IPv6 literal.
    public init?(_ text: String) {
        let s = text.trimmingSpaces
        // IPv4 first: it accepts digits and dots only, so no text it reads contains a colon.
        if let v = parseIPv4(s) {
            self = .v4(v)
        } else if s.utf8.contains(UInt8(ascii: ":")), let (hi, lo) = parseIPv6(s) {
            self = .v6(hi, lo)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .v4(let v):
            return "\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)"
        case .v6(let hi, let lo):
            return formatIPv6(hi, lo)
        }
    }

    public var isLoopback: Bool {
        switch self {
        case .v4(let v): return v >> 24 == 127
        case .v6(let hi, let lo): return hi == 0 && lo == 1
        }
    }

    public var isUnspecified: Bool {
        switch self {
        case .v4(let v): return v == 0
        case .v6(let hi, let lo): return hi == 0 && lo == 0
        }
    }

    /// `224.0.0.0/4` or `ff00::/8`.
    public var isMulticast: Bool {
        switch self {
        case .v4(let v): return v >> 28 == 0xE
        case .v6(let hi, _): return hi >> 56 == 0xFF
        }
    }

    /// Why this address can be no service or endpoint address (loopback, multicast,
    /// unspecified, broadcast), or nil. DNAT to or from such an address would hijack the
    /// node's own traffic or never match a unicast flow.
    public var specialUseReason: String? {
        if isLoopback { return "a loopback address" }
        if isMulticast { return "a multicast address" }
        if isUnspecified { return "the unspecified address" }
        if case .v4(0xFFFF_FFFF) = self { return "the broadcast address" }
        return nil
    }
}

/// An address prefix, e.g. `10.0.0.0/8` or `fd00::/64`. The address is masked on creation.
public struct CIDR: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public let address: IPAddress
    public let prefixLength: UInt8

    public init?(address: IPAddress, prefixLength: Int) {
        let max = address.family == .ipv4 ? 32 : 128
        guard prefixLength >= 0 && prefixLength <= max else { return nil }
        self.prefixLength = UInt8(prefixLength)
        switch address {
        case .v4(let v):
            let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength)
            self.address = .v4(v & mask)
        case .v6(let hi, let lo):
            let (mh, ml) = ipv6Mask(prefixLength)
            self.address = .v6(hi & mh, lo & ml)
        }
    }

    /// Parses `a.b.c.d/n` or `x::/n`; a bare address becomes a host prefix.
    public init?(_ text: String) {
        let s = text.trimmingSpaces
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let addr = IPAddress(String(parts[0])) else { return nil }
        if parts.count == 2 {
            let lenText = String(parts[1])
            guard !lenText.isEmpty, lenText.allSatisfy(\.isASCIIDigit), lenText.count <= 3, let n = Int(lenText) else { return nil }
            self.init(address: addr, prefixLength: n)
        } else {
            self.init(address: addr, prefixLength: addr.family == .ipv4 ? 32 : 128)
        }
    }

    public var family: IPFamily { address.family }
    public var description: String { "\(address)/\(prefixLength)" }
    public var isMatchAll: Bool { prefixLength == 0 }

    public func contains(_ ip: IPAddress) -> Bool {
        guard ip.family == family else { return false }
        switch (address, ip) {
        case let (.v4(base), .v4(v)):
            let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - Int(prefixLength))
            return v & mask == base
        case let (.v6(bh, bl), .v6(h, l)):
            let (mh, ml) = ipv6Mask(Int(prefixLength))
            return h & mh == bh && l & ml == bl
        default:
            return false
        }
    }

    public static func < (a: CIDR, b: CIDR) -> Bool {
        (a.address, a.prefixLength) < (b.address, b.prefixLength)
    }
}

func ipv6Mask(_ n: Int) -> (UInt64, UInt64) {
    let hi: UInt64 = n >= 64 ? ~0 : (n == 0 ? 0 : ~UInt64(0) << UInt64(64 - n))
    let lo: UInt64 = n <= 64 ? 0 : (n >= 128 ? ~0 : ~UInt64(0) << UInt64(128 - n))
    return (hi, lo)
}

extension Character {
    var isASCIIDigit: Bool { self >= "0" && self <= "9" }
}

extension String {
    var trimmingSpaces: String {
        // Usually nothing to trim: a first or last Character that is one of these is that one byte.
        if let first = utf8.first, let last = utf8.last, !Self.isTrimmed(first), !Self.isTrimmed(last) { return self }
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" || c == "\n" || c == "\r" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" || c == "\r" { s.removeLast() }
        return String(s)
    }

    private static func isTrimmed(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }
}

/// IPv4 with up to three digits per octet; leading zeros are decimal (kube-proxy's
/// `ParseIPSloppy` semantics), so `010` is 10.
/// Four dot-separated decimal parts of 1–3 digits, each ≤ 255 (leading zeros allowed).
/// One pass over the UTF-8 bytes: this runs for every endpoint address.
func parseIPv4(_ s: String) -> UInt32? {
    var v: UInt32 = 0, part: UInt32 = 0, digits = 0, dots = 0
    for b in s.utf8 {
        if b == UInt8(ascii: ".") {
            guard digits > 0, dots < 3 else { return nil }
            v = v << 8 | part
            part = 0
            digits = 0
            dots += 1
        } else if b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") {
            guard digits < 3 else { return nil }
            part = part * 10 + UInt32(b - UInt8(ascii: "0"))
            guard part <= 255 else { return nil }
            digits += 1
        } else {
            return nil
        }
    }
    guard dots == 3, digits > 0 else { return nil }
    return v << 8 | part
}

func parseIPv6(_ s: String) -> (UInt64, UInt64)? {
    var groups: [UInt16] = []
    var tail: [UInt16] = []
    var sawDouble = false
    let halves = s.components(separatedByString: "::")
    guard halves.count <= 2 else { return nil }
    func parseGroups(_ part: String, allowV4: Bool) -> [UInt16]? {
        if part.isEmpty { return [] }
        var out: [UInt16] = []
        let items = part.split(separator: ":", omittingEmptySubsequences: false)
        for (i, item) in items.enumerated() {
            if i == items.count - 1 && allowV4 && item.contains(".") {
                guard let v4 = parseIPv4(String(item)) else { return nil }
                out.append(UInt16(v4 >> 16))
                out.append(UInt16(v4 & 0xffff))
                continue
            }
            guard !item.isEmpty, item.count <= 4, let n = UInt16(item, radix: 16) else { return nil }
            out.append(n)
        }
        return out
    }
    if halves.count == 2 {
        sawDouble = true
        guard let a = parseGroups(halves[0], allowV4: false), let b = parseGroups(halves[1], allowV4: true) else { return nil }
        groups = a
        tail = b
        guard groups.count + tail.count <= 7 else { return nil }
    } else {
        guard let a = parseGroups(halves[0], allowV4: true), a.count == 8 else { return nil }
        groups = a
    }
    if sawDouble {
        groups += Array(repeating: 0, count: 8 - groups.count - tail.count) + tail
    }
    var hi: UInt64 = 0, lo: UInt64 = 0
    for i in 0..<4 { hi = hi << 16 | UInt64(groups[i]) }
    for i in 4..<8 { lo = lo << 16 | UInt64(groups[i]) }
    return (hi, lo)
}

/// RFC 5952 text form.
func formatIPv6(_ hi: UInt64, _ lo: UInt64) -> String {
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

extension String {
    func components(separatedByString sep: String) -> [String] {
        var out: [String] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: sep) {
            out.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        out.append(String(rest))
        return out
    }
}
