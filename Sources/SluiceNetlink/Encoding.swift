import SluiceIR

// Datum <-> register bytes, as nft lays them out (netlink_gen_data / netlink_gen_concat_data).

extension FixedWidthInteger {
    /// Network-order bytes.
    var bigEndianBytes: [UInt8] { withUnsafeBytes(of: self.bigEndian) { Array($0) } }
    /// Host-order bytes (little endian on every Linux target Sluice supports).
    var hostBytes: [UInt8] { withUnsafeBytes(of: self) { Array($0) } }
}

func readBigEndian<T: FixedWidthInteger>(_ b: ArraySlice<UInt8>, as: T.Type = T.self) -> T {
    var v = T(0)
    for x in b { v = (v << 8) | T(x) }
    return v
}

func readHost32(_ b: ArraySlice<UInt8>) -> UInt32 {
    var v: UInt32 = 0
    for (i, x) in b.prefix(4).enumerated() { v |= UInt32(x) << (8 * UInt32(i)) }
    return v
}

/// Encodes one datum as the exact bytes of a register field of `type` (unpadded).
/// Prefixes encode their network address.
func encode(_ d: Datum, as type: FieldType) throws -> [UInt8] {
    let bytes: [UInt8]
    switch d {
    case .ipv4(let a), .prefix4(let a, _): bytes = a.bigEndianBytes
    case .ipv6(let h, let l), .prefix6(let h, let l, _): bytes = h.bigEndianBytes + l.bigEndianBytes
    case .proto(let p): bytes = [p]
    case .port(let p): bytes = p.bigEndianBytes
    case .integer(let v): bytes = type.byteorder == .big ? v.bigEndianBytes : v.hostBytes
    }
    guard bytes.count == type.length else {
        throw NetlinkError.unsupported("datum \(d) does not fit a \(type.length)-byte field")
    }
    return bytes
}

/// Appends the register bytes of `d` (as `encode(_:as:)`), padded to `width` bytes.
/// The allocation-free path for bulk element encoding.
@inline(__always)
func appendEncoded(_ d: Datum, as type: FieldType, width: Int, into out: inout [UInt8]) throws {
    let start = out.count
    switch d {
    case .ipv4(let a), .prefix4(let a, _):
        out.append(UInt8(a >> 24)); out.append(UInt8((a >> 16) & 0xff)); out.append(UInt8((a >> 8) & 0xff)); out.append(UInt8(a & 0xff))
    case .ipv6(let h, let l), .prefix6(let h, let l, _):
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((h >> UInt64(shift)) & 0xff)) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((l >> UInt64(shift)) & 0xff)) }
    case .proto(let p): out.append(p)
    case .port(let p): out.append(UInt8(p >> 8)); out.append(UInt8(p & 0xff))
    case .integer(let v):
        if type.byteorder == .big {
            out.append(UInt8(v >> 24)); out.append(UInt8((v >> 16) & 0xff)); out.append(UInt8((v >> 8) & 0xff)); out.append(UInt8(v & 0xff))
        } else {
            out.append(UInt8(v & 0xff)); out.append(UInt8((v >> 8) & 0xff)); out.append(UInt8((v >> 16) & 0xff)); out.append(UInt8(v >> 24))
        }
    }
    guard out.count - start == type.length else {
        throw NetlinkError.unsupported("datum \(d) does not fit a \(type.length)-byte field")
    }
    while out.count - start < width { out.append(0) }
}

/// Decodes register bytes of `type` back into a datum.
func decode(_ b: ArraySlice<UInt8>, as type: FieldType) -> Datum {
    switch type.kind {
    case .ipv4: .ipv4(readBigEndian(b.prefix(4)))
    case .ipv6: .ipv6(readBigEndian(b.prefix(8)), readBigEndian(b.dropFirst(8).prefix(8)))
    case .proto: .proto(b.first ?? 0)
    case .port: .port(readBigEndian(b.prefix(2)))
    case .integer, .string: .integer(type.byteorder == .big ? readBigEndian(b.prefix(4)) : readHost32(b))
    }
}

/// Pads to a multiple of 4 bytes (a concatenation field).
func padded(_ b: [UInt8]) -> [UInt8] { b + [UInt8](repeating: 0, count: (4 - b.count % 4) % 4) }

// MARK: - Big integers as byte arrays (for interval ends)

/// Adds one to a big-endian byte string; `nil` on overflow (the interval runs to the end).
func increment(_ b: [UInt8]) -> [UInt8]? {
    var r = b
    for i in stride(from: r.count - 1, through: 0, by: -1) {
        if r[i] == 0xff { r[i] = 0 } else { r[i] += 1; return r }
    }
    return nil
}

/// First and last address of a prefix, as big-endian bytes of `length` bytes.
func prefixBounds(_ network: [UInt8], bits: Int) -> (first: [UInt8], last: [UInt8]) {
    var first = network, last = network
    for i in 0..<network.count {
        let lo = i * 8
        let keep = max(0, min(8, bits - lo))
        let mask: UInt8 = keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - keep))
        first[i] &= mask
        last[i] = first[i] | ~mask
    }
    return (first, last)
}

/// The prefix length if `[first, last]` is exactly one prefix, else nil.
func prefixLength(first: [UInt8], last: [UInt8]) -> Int? {
    guard first.count == last.count else { return nil }
    var bits = 0
    var inHost = false
    for i in 0..<first.count {
        let diff = first[i] ^ last[i]
        for bit in stride(from: 7, through: 0, by: -1) {
            let m: UInt8 = 1 << UInt8(bit)
            if diff & m == 0 {
                if inHost { return nil }
                bits += 1
            } else {
                if first[i] & m != 0 || last[i] & m == 0 { return nil }
                inHost = true
            }
        }
    }
    return bits
}

/// Prefix bits of a datum, or nil for a single value.
func prefixBits(_ d: Datum) -> Int? {
    switch d {
    case .prefix4(_, let l), .prefix6(_, _, let l): Int(l)
    default: nil
    }
}

/// The datum for `[first, last]` of a field (an exact value, or a prefix of an address).
func datum(first: [UInt8], last: [UInt8], type: FieldType) -> Datum? {
    guard first.count == type.length, last.count == type.length else { return nil }
    if first == last { return decode(first[...], as: type) }
    guard let bits = prefixLength(first: first, last: last) else { return nil }
    switch type.kind {
    case .ipv4: return .prefix4(readBigEndian(first[...]), UInt8(bits))
    case .ipv6: return .prefix6(readBigEndian(first.prefix(8)), readBigEndian(first.dropFirst(8)), UInt8(bits))
    default: return nil
    }
}

// MARK: - nftnl_udata TLVs (type u8, length u8, value), built and parsed by hand.

/// A builder of libnftnl userdata (`struct nftnl_udata`): flat TLVs with nesting.
struct UdataWriter {
    private(set) var bytes: [UInt8] = []

    mutating func u32(_ type: UInt8, _ v: UInt32) { bytes += [type, 4] + v.hostBytes }
    mutating func strz(_ type: UInt8, _ s: String) {
        let b = Array(s.utf8) + [0]
        bytes += [type, UInt8(b.count)] + b
    }
    mutating func nest(_ type: UInt8, _ body: (inout UdataWriter) -> Void) {
        var inner = UdataWriter()
        body(&inner)
        bytes += [type, UInt8(inner.bytes.count)] + inner.bytes
    }
}

/// Parses one level of userdata TLVs.
func parseUdata(_ b: ArraySlice<UInt8>) -> [UInt8: ArraySlice<UInt8>] {
    var out: [UInt8: ArraySlice<UInt8>] = [:]
    var i = b.startIndex
    while i + 2 <= b.endIndex {
        let type = b[i], len = Int(b[i + 1])
        let start = i + 2, end = start + len
        guard end <= b.endIndex else { break }
        out[type] = b[start..<end]
        i = end
    }
    return out
}

func udataU32(_ b: ArraySlice<UInt8>?) -> UInt32? {
    guard let b, b.count == 4 else { return nil }
    return readHost32(b)
}

func udataString(_ b: ArraySlice<UInt8>?) -> String? {
    guard let b else { return nil }
    return String(decoding: b.prefix { $0 != 0 }, as: UTF8.self)
}

/// Userdata of a table, chain or rule that only carries a comment (type 0, NUL-terminated).
func commentUdata(_ comment: String?) -> [UInt8]? {
    guard let comment else { return nil }
    var w = UdataWriter()
    w.strz(0, comment)
    return w.bytes
}

/// `iifname "eth0"` compares all IFNAMSIZ bytes (NUL padded); `iifname "veth*"` compares
/// only the prefix bytes, as nft does.
func interfaceNameBytes(_ name: String) -> [UInt8] {
    if name.hasSuffix("*") { return Array(name.dropLast().utf8) }
    let b = Array(name.utf8.prefix(15))
    return b + [UInt8](repeating: 0, count: 16 - b.count)
}

/// Inverse of `interfaceNameBytes`.
func interfaceName(_ b: [UInt8]) -> String {
    let text = String(decoding: b.prefix { $0 != 0 }, as: UTF8.self)
    return b.count < 16 ? text + "*" : text
}
