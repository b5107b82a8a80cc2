import SluiceIR

/// One element as the kernel sees it: key, optional key end (interval concatenations),
/// optional data, and NFT_SET_ELEM_INTERVAL_END.
struct KernelElement: Equatable {
    var key: [UInt8]
    var keyEnd: [UInt8]?
    var data: [UInt8]?
    var intervalEnd: Bool = false
    /// Element userdata (nft marks an interval that runs to the end of the key space with
    /// NFTNL_UDATA_SET_ELEM_FLAGS = NFTNL_SET_ELEM_F_INTERVAL_OPEN).
    var userdata: [UInt8]? = nil
    /// The element's `counter` (packets, bytes), in a set declared with `counter`.
    var counter: (packets: UInt64, bytes: UInt64)? = nil

    static func == (a: KernelElement, b: KernelElement) -> Bool {
        a.key == b.key && a.keyEnd == b.keyEnd && a.data == b.data && a.intervalEnd == b.intervalEnd
            && a.userdata == b.userdata && a.counter?.packets == b.counter?.packets && a.counter?.bytes == b.counter?.bytes
    }
}

/// Encoded elements of a plain set or map, back to back in one buffer.
struct FlatElements {
    var bytes: [UInt8]
    var keyLength: Int
    /// nil for a plain set.
    var dataLength: Int?
    var count: Int
    var stride: Int { keyLength + (dataLength ?? 0) }
}

/// Encodes IR elements for a set exactly as nft 1.0.6 sends them:
/// - plain sets and maps: key (and data) fields, each padded to 32 bits in concatenations;
/// - `flags interval` concatenations (pipapo): key = first and key_end = last value of every
///   field (a prefix field spans its range);
/// - `flags interval` single fields (rbtree): a start element and an interval-end element
///   one past the last address (none for an interval open to the end, which carries the
///   INTERVAL_OPEN userdata flag instead), plus a leading interval-end element at zero when
///   the first interval does not start at zero (nft's `set_to_intervals`).
struct ElementEncoder {
    let decl: SetDecl
    let key: SetLayout
    let data: SetLayout?

    init(_ set: SetDecl, types: TypeContext) throws {
        self.decl = set
        key = try SetLayout(set.key, context: types)
        data = try set.data.map { try SetLayout($0, context: types) }
    }

    var isInterval: Bool { decl.flags.contains(.interval) }

    func encode(_ elements: [Element]) throws -> [KernelElement] {
        if isInterval && !key.isConcat { return try rbtreeIntervals(elements) }
        if !isInterval { return try elements.map(encodeExact) }
        return try elements.map { e in
            let (first, last) = try bounds(e.key)
            return KernelElement(key: first, keyEnd: isInterval ? last : nil, data: try encodeData(e.data))
        }
    }

    /// Plain (hash) sets and maps, all elements in one buffer: element i's key at
    /// `i * stride`, its data (if a map) right after the key. No allocation per element;
    /// fields are stored in place (concatenation padding stays zero). Same bytes as
    /// `encodeExact`.
    func encodeFlat(_ elements: [Element]) throws -> FlatElements {
        precondition(!isInterval)
        let kl = key.length, dl = data?.length ?? 0, stride = kl + dl
        func fields(_ l: SetLayout) -> [(FieldType, Int)] { l.fields.map { ($0, l.isConcat ? $0.paddedLength : $0.length) } }
        let keyFields = fields(key)
        let dataFields = data.map(fields)
        var out = [UInt8](repeating: 0, count: elements.count * stride)
        try out.withUnsafeMutableBytes { buf in
            var base = 0
            for e in elements {
                guard e.key.count == keyFields.count else {
                    throw NetlinkError.unsupported("set \(decl.name): element key has \(e.key.count) fields, expected \(keyFields.count)")
                }
                var o = base
                for (d, (t, w)) in zip(e.key, keyFields) {
                    try store(d, t, buf, o)
                    o += w
                }
                if let dataFields {
                    guard let d = e.data, d.count == dataFields.count else {
                        throw NetlinkError.unsupported("map \(decl.name): element data does not match \(dataFields.count) fields")
                    }
                    for (x, (t, w)) in zip(d, dataFields) {
                        try store(x, t, buf, o)
                        o += w
                    }
                }
                base += stride
            }
        }
        return FlatElements(bytes: out, keyLength: kl, dataLength: data == nil ? nil : dl, count: elements.count)
    }

    /// Stores the register bytes of `d` (as `appendEncoded`) at `o`.
    @inline(__always)
    private func store(_ d: Datum, _ t: FieldType, _ buf: UnsafeMutableRawBufferPointer, _ o: Int) throws {
        func fits(_ n: Int) throws {
            guard t.length == n else { throw NetlinkError.unsupported("datum \(d) does not fit a \(t.length)-byte field") }
        }
        switch d {
        case .ipv4(let a):
            try fits(4)
            buf.storeBytes(of: a.bigEndian, toByteOffset: o, as: UInt32.self)
        case .ipv6(let h, let l):
            try fits(16)
            buf.storeBytes(of: h.bigEndian, toByteOffset: o, as: UInt64.self)
            buf.storeBytes(of: l.bigEndian, toByteOffset: o + 8, as: UInt64.self)
        case .proto(let p):
            try fits(1)
            buf[o] = p
        case .port(let p):
            try fits(2)
            buf.storeBytes(of: p.bigEndian, toByteOffset: o, as: UInt16.self)
        case .integer(let v):
            try fits(4)
            buf.storeBytes(of: t.byteorder == .big ? v.bigEndian : v.littleEndian, toByteOffset: o, as: UInt32.self)
        case .prefix4, .prefix6:
            throw NetlinkError.unsupported("set \(decl.name): prefix \(d) needs flags interval")
        }
    }

    /// Plain (hash) sets and maps: no prefixes, so fields are written straight into one buffer.
    private func encodeExact(_ e: Element) throws -> KernelElement {
        guard e.key.count == key.fields.count else {
            throw NetlinkError.unsupported("set \(decl.name): element key has \(e.key.count) fields, expected \(key.fields.count)")
        }
        var k: [UInt8] = []
        k.reserveCapacity(key.length)
        for (d, t) in zip(e.key, key.fields) {
            if prefixBits(d) != nil { throw NetlinkError.unsupported("set \(decl.name): prefix \(d) needs flags interval") }
            try appendEncoded(d, as: t, width: key.isConcat ? t.paddedLength : t.length, into: &k)
        }
        guard let layout = data else { return KernelElement(key: k) }
        guard let d = e.data, d.count == layout.fields.count else {
            throw NetlinkError.unsupported("map \(decl.name): element data does not match \(layout.fields.count) fields")
        }
        var v: [UInt8] = []
        v.reserveCapacity(layout.length)
        for (x, t) in zip(d, layout.fields) {
            try appendEncoded(x, as: t, width: layout.isConcat ? t.paddedLength : t.length, into: &v)
        }
        return KernelElement(key: k, data: v)
    }

    /// Per-field first and last bytes of a key (equal unless a field is a prefix).
    func bounds(_ fields: [Datum]) throws -> (first: [UInt8], last: [UInt8]) {
        guard fields.count == key.fields.count else {
            throw NetlinkError.unsupported("set \(decl.name): element key has \(fields.count) fields, expected \(key.fields.count)")
        }
        var first: [UInt8] = [], last: [UInt8] = []
        // pipapo keys compare as big-endian ranges: host-endian integers are stored swapped.
        let pipapo = isInterval && key.isConcat
        for (d, field) in zip(fields, key.fields) {
            var t = field
            if pipapo && t.kind == .integer { t.byteorder = .big }
            var b = try encodeField(d, t)
            var l = b
            if let bits = prefixBits(d) { (b, l) = prefixBounds(b, bits: bits) }
            first += key.isConcat ? padded(b) : b
            last += key.isConcat ? padded(l) : l
        }
        return (first, last)
    }

    private func encodeField(_ d: Datum, _ t: FieldType) throws -> [UInt8] {
        try SluiceNetlink.encode(d, as: t)
    }

    func encodeData(_ d: [Datum]?) throws -> [UInt8]? {
        guard let layout = data else { return nil }
        guard let d, d.count == layout.fields.count else {
            throw NetlinkError.unsupported("map \(decl.name): element data does not match \(layout.fields.count) fields")
        }
        var out: [UInt8] = []
        for (x, t) in zip(d, layout.fields) {
            let b = try encodeField(x, t)
            out += layout.isConcat ? padded(b) : b
        }
        return out
    }

    private func rbtreeIntervals(_ elements: [Element]) throws -> [KernelElement] {
        var ranges: [(first: [UInt8], last: [UInt8], data: [UInt8]?)] = []
        for e in elements {
            let (f, l) = try bounds(e.key)
            ranges.append((f, l, try encodeData(e.data)))
        }
        ranges.sort { $0.first.lexicographicallyPrecedes($1.first) }
        var out: [KernelElement] = []
        let zero = [UInt8](repeating: 0, count: key.length)
        if let firstRange = ranges.first, firstRange.first != zero {
            out.append(KernelElement(key: zero, intervalEnd: true))
        }
        for r in ranges {
            guard let end = increment(r.last) else {
                var open = UdataWriter()
                open.u32(1, 1)   // NFTNL_UDATA_SET_ELEM_FLAGS: NFTNL_SET_ELEM_F_INTERVAL_OPEN
                out.append(KernelElement(key: r.first, data: r.data, userdata: open.bytes))
                continue
            }
            // nft keeps the end element even where the next interval starts at the same key.
            out.append(KernelElement(key: r.first, data: r.data))
            out.append(KernelElement(key: end, intervalEnd: true))
        }
        return out
    }
}
