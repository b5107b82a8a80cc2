/// The kernel's `jhash` expression (`nft_jhash_eval`), bit for bit: Bob Jenkins' lookup2-style
/// hash from `include/linux/jhash.h` over the input registers, then `reciprocal_scale` to
/// `0..<modulus`. `PacketWalk` uses it to predict which slot a hash-selected connection takes,
/// and the compiler's tests use it to check slot tables against real packets.
public enum JenkinsHash {
    /// `jhash(key, length, seed)` from `include/linux/jhash.h` (little-endian words).
    public static func jhash(_ key: [UInt8], seed: UInt32) -> UInt32 {
        var a: UInt32 = 0xdead_beef &+ UInt32(key.count) &+ seed
        var b = a, c = a
        var k = key[...]
        func word(_ s: ArraySlice<UInt8>, _ i: Int) -> UInt32 {
            let base = s.startIndex + i
            return UInt32(s[base]) | UInt32(s[base + 1]) << 8 | UInt32(s[base + 2]) << 16 | UInt32(s[base + 3]) << 24
        }
        while k.count > 12 {
            a &+= word(k, 0)
            b &+= word(k, 4)
            c &+= word(k, 8)
            mix(&a, &b, &c)
            k = k.dropFirst(12)
        }
        guard !k.isEmpty else { return c }
        // The tail: byte i of the remaining (at most 12) goes to a, b, c by position.
        for (i, byte) in k.enumerated() {
            let v = UInt32(byte) << UInt32(8 * (i % 4))
            switch i / 4 {
            case 0: a &+= v
            case 1: b &+= v
            default: c &+= v
            }
        }
        final(&a, &b, &c)
        return c
    }

    /// `reciprocal_scale(jhash(input), modulus)`: what `nft_jhash_eval` stores (offset 0).
    public static func slot(_ input: [UInt8], modulus: UInt32, seed: UInt32) -> UInt32 {
        UInt32((UInt64(jhash(input, seed: seed)) * UInt64(modulus)) >> 32)
    }

    private static func rol(_ x: UInt32, _ k: UInt32) -> UInt32 { (x << k) | (x >> (32 - k)) }

    /// `__jhash_mix`.
    private static func mix(_ a: inout UInt32, _ b: inout UInt32, _ c: inout UInt32) {
        a &-= c; a ^= rol(c, 4); c &+= b
        b &-= a; b ^= rol(a, 6); a &+= c
        c &-= b; c ^= rol(b, 8); b &+= a
        a &-= c; a ^= rol(c, 16); c &+= b
        b &-= a; b ^= rol(a, 19); a &+= c
        c &-= b; c ^= rol(b, 4); b &+= a
    }

    /// `__jhash_final`.
    private static func final(_ a: inout UInt32, _ b: inout UInt32, _ c: inout UInt32) {
        c ^= b; c &-= rol(b, 14)
        a ^= c; a &-= rol(c, 11)
        b ^= a; b &-= rol(a, 25)
        c ^= b; c &-= rol(b, 16)
        a ^= c; a &-= rol(c, 4)
        b ^= a; b &-= rol(a, 14)
        c ^= b; c &-= rol(b, 24)
    }
}

extension Datum {
    /// The bytes this field occupies in nf_tables registers, padded to 32 bits as a
    /// concatenation (or a hash input) holds it: addresses and ports in network order,
    /// `meta l4proto` one byte, integers host-endian (little-endian here).
    public var registerBytes: [UInt8]? {
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func be64(_ v: UInt64) -> [UInt8] { be32(UInt32(v >> 32)) + be32(UInt32(v & 0xffff_ffff)) }
        switch self {
        case .ipv4(let v): return be32(v)
        case .ipv6(let hi, let lo): return be64(hi) + be64(lo)
        case .port(let p): return [UInt8(p >> 8), UInt8(p & 0xff), 0, 0]
        case .proto(let p): return [p, 0, 0, 0]
        case .integer(let v): return [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)]
        case .prefix4, .prefix6: return nil
        }
    }
}
