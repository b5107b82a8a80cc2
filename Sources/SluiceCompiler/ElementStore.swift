import SluiceIR
import SluiceModel

/// Up to 128 bits of tagged `Datum`s packed inline: no heap allocation per key, 16 bytes,
/// hashed as two words. Each datum is a 3-bit tag (0 ends the list) and its payload,
/// least significant bits first. Every IPv4 key and map data of the layout fits (the
/// widest, `firewall-allow`, needs 108 bits); IPv6 addresses do not and are stored as
/// `[Datum]` instead (see `SetStore`).
struct Packed: Hashable, Sendable {
    var lo: UInt64
    var hi: UInt64

    static let empty = Packed(lo: 0, hi: 0)

    init(lo: UInt64, hi: UInt64) {
        self.lo = lo
        self.hi = hi
    }

    /// Packs `datums`; nil if they need more than 128 bits.
    @inline(__always)
    init?(_ datums: [Datum]) {
        var b = Builder()
        for d in datums where !b.put(d) { return nil }
        self = b.packed
    }

    /// Packs the datums of `list`; nil if they need more than 128 bits.
    @inline(__always)
    init?(_ list: DatumList) {
        var b = Builder()
        for i in 0..<list.count where !b.put(list[i]) { return nil }
        self = b.packed
    }

    /// Appends tagged datums, least significant bits first.
    private struct Builder {
        var lo: UInt64 = 0, hi: UInt64 = 0, pos = 0

        var packed: Packed { Packed(lo: lo, hi: hi) }

        /// Appends one datum; false if it does not fit (or is IPv6).
        @inline(__always)
        mutating func put(_ d: Datum) -> Bool {
            switch d {
            case .ipv4(let v): return put(1 | UInt64(v) << 3, 35)
            case .proto(let v): return put(2 | UInt64(v) << 3, 11)
            case .port(let v): return put(3 | UInt64(v) << 3, 19)
            case .integer(let v): return put(4 | UInt64(v) << 3, 35)
            case .prefix4(let v, let l): return put(5 | UInt64(v) << 3 | UInt64(l) << 35, 43)
            case .ipv6, .prefix6: return false
            }
        }

        @inline(__always)
        private mutating func put(_ v: UInt64, _ bits: Int) -> Bool {
            guard pos + bits <= 128 else { return false }
            if pos < 64 {
                lo |= v << UInt64(pos)
                if pos + bits > 64 { hi |= v >> UInt64(64 - pos) }
            } else {
                hi |= v << UInt64(pos - 64)
            }
            pos += bits
            return true
        }
    }

    /// The datums this value packs.
    var datums: [Datum] {
        var out: [Datum] = []
        out.reserveCapacity(4)
        var pos = 0
        @inline(__always) func take(_ bits: Int) -> UInt64 {
            var v: UInt64
            if pos < 64 {
                v = lo >> UInt64(pos)
                if pos + bits > 64 { v |= hi << UInt64(64 - pos) }
            } else {
                v = hi >> UInt64(pos - 64)
            }
            pos += bits
            return bits == 64 ? v : v & ((1 << UInt64(bits)) - 1)
        }
        while pos + 3 <= 128 {
            switch take(3) {
            case 1: out.append(.ipv4(UInt32(take(32))))
            case 2: out.append(.proto(UInt8(take(8))))
            case 3: out.append(.port(UInt16(take(16))))
            case 4: out.append(.integer(UInt32(take(32))))
            case 5:
                let v = UInt32(take(32))
                out.append(.prefix4(v, UInt8(take(8))))
            default: return out
            }
        }
        return out
    }
}

/// The elements of one set or map as the incremental compiler keeps them: key → data and
/// the number of service ports that contribute the element.
///
/// Plain sets keep a `PackedTable<NoValue>` (17 bytes a bucket), maps a `PackedTable<UInt64>`
/// (25 bytes a bucket), 58–87 % full (see `PackedTable`); keys or data that do not pack (IPv6)
/// live in `spilled`. A packed element has one user unless `extraUsers` says how many more it
/// has: almost every element has one, so the big tables carry no count.
struct SetStore: Sendable {
    struct Spilled: Sendable {
        var data: [Datum]
        var count: Int
    }

    enum InsertResult { case added, counted, conflict }
    enum RemoveResult { case removed, counted, absent }

    let isMap: Bool
    private(set) var plain = PackedTable<NoValue>()
    private(set) var mapped = PackedTable<UInt64>()
    /// Users beyond the first of the packed elements of `plain` or `mapped` that have several.
    private(set) var extraUsers: [Packed: UInt32] = [:]
    private(set) var spilled: [[Datum]: Spilled] = [:]

    init(isMap: Bool) { self.isMap = isMap }

    var count: Int { plain.count + mapped.count + spilled.count }
    var isEmpty: Bool { plain.isEmpty && mapped.isEmpty && spilled.isEmpty }

    /// Room for `n` more elements without rehashing (with headroom, so the first insert
    /// after a cold start does not grow a full table).
    mutating func reserve(_ n: Int) {
        let want = count + n + n / 8 + 16
        if isMap { mapped.reserve(want) } else { plain.reserve(want) }
    }

    /// The word a packed element keeps as its data: a map's data packed into one word, 0 for
    /// a plain set's (empty) data; nil if it does not fit (the element is then spilled).
    @inline(__always)
    static func dataWord(isMap: Bool, isEmpty: Bool, packed: @autoclosure () -> Packed?) -> UInt64? {
        guard isMap else { return isEmpty ? 0 : nil }
        guard let p = packed(), p.hi == 0 else { return nil }
        return p.lo
    }

    @inline(__always)
    private func dataWord(_ data: [Datum]) -> UInt64? {
        Self.dataWord(isMap: isMap, isEmpty: data.isEmpty, packed: Packed(data))
    }

    /// The data a data word stands for (see `dataWord`).
    private func data(ofWord d: UInt64) -> [Datum] { isMap ? Packed(lo: d, hi: 0).datums : [] }

    mutating func insert(_ key: [Datum], _ data: [Datum]) -> InsertResult {
        // One hash probe for the common case: a packable key and data, not in `spilled`.
        let k = Packed(key)
        if let k, spilled.isEmpty, let d = dataWord(data) { return insert(packed: k, data: d) }
        return insertSpilled(key, data, packed: k)
    }

    /// `insert` for a key and data packed already (`data`: its `dataWord`), as the update
    /// path's `PackedFragmentDiff` holds them.
    mutating func insert(packed k: Packed, data d: UInt64) -> InsertResult {
        guard spilled.isEmpty else { return insertSpilled(k.datums, data(ofWord: d), packed: k) }
        if isMap {
            guard let old = mapped.insert(k, d) else { return .added }
            return old == d ? addUser(k) : .conflict
        }
        return plain.insert(k, NoValue()) == nil ? .added : addUser(k)
    }

    /// `remove` for a key and data packed already (see `insert(packed:data:)`).
    mutating func remove(packed k: Packed, data d: UInt64) -> RemoveResult {
        removePacked(k, d) ?? removeSpilled(k.datums, data(ofWord: d))
    }

    /// Drops one user of the packed element `k` if its data word is `d` (nil: data that does
    /// not pack, so not this element); nil if `k` is in neither packed table.
    private mutating func removePacked(_ k: Packed, _ d: UInt64?) -> RemoveResult? {
        if isMap, let i = mapped.index(of: k) {
            guard d == mapped.value(at: i) else { return .absent }
            if dropUser(k) { return .counted }
            mapped.remove(at: i)
            return .removed
        } else if !isMap, let i = plain.index(of: k) {
            guard d == 0 else { return .absent }
            if dropUser(k) { return .counted }
            plain.remove(at: i)
            return .removed
        }
        return nil
    }

    /// Counts one more user of the stored packed element `k`.
    private mutating func addUser(_ k: Packed) -> InsertResult {
        extraUsers[k, default: 0] += 1
        return .counted
    }

    /// Drops one user of the stored packed element `k`; false if it was the last.
    private mutating func dropUser(_ k: Packed) -> Bool {
        guard !extraUsers.isEmpty, let i = extraUsers.index(forKey: k) else { return false }
        if extraUsers.values[i] > 1 {
            extraUsers.values[i] -= 1
        } else {
            extraUsers.remove(at: i)
        }
        return true
    }

    /// The general path: the element may be in either representation.
    private mutating func insertSpilled(_ key: [Datum], _ data: [Datum], packed k: Packed?) -> InsertResult {
        if let k {
            if isMap, let d = mapped[k] {
                return dataWord(data) == d ? addUser(k) : .conflict
            } else if !isMap, plain.contains(k) {
                return data.isEmpty ? addUser(k) : .conflict
            }
        }
        if let i = spilled.index(forKey: key) {
            guard spilled.values[i].data == data else { return .conflict }
            spilled.values[i].count += 1
            return .counted
        }
        if let k {
            if isMap, let d = dataWord(data) {
                mapped.insert(k, d)
                return .added
            } else if !isMap, data.isEmpty {
                plain.insert(k, NoValue())
                return .added
            }
        }
        spilled[key] = Spilled(data: data, count: 1)
        return .added
    }

    /// Drops one user of `key : data`; `.absent` if the element is not stored with that data.
    mutating func remove(_ key: [Datum], _ data: [Datum]) -> RemoveResult {
        if let k = Packed(key), let r = removePacked(k, dataWord(data)) { return r }
        return removeSpilled(key, data)
    }

    private mutating func removeSpilled(_ key: [Datum], _ data: [Datum]) -> RemoveResult {
        guard !spilled.isEmpty, let i = spilled.index(forKey: key), spilled.values[i].data == data else { return .absent }
        if spilled.values[i].count > 1 {
            spilled.values[i].count -= 1
            return .counted
        }
        spilled.remove(at: i)
        return .removed
    }

    /// The data of `key` (empty for a plain set); nil if absent.
    func lookup(_ key: [Datum]) -> [Datum]? {
        if let k = Packed(key) {
            if isMap, let d = mapped[k] { return Packed(lo: d, hi: 0).datums }
            if !isMap, plain.contains(k) { return [] }
        }
        return spilled[key]?.data
    }

    /// Users of `key : data`: 0 if it is not stored with that data.
    func users(_ key: [Datum], _ data: [Datum]) -> Int {
        guard lookup(key) == data else { return 0 }
        if let k = Packed(key), isMap ? mapped[k] != nil : plain.contains(k) {
            return 1 + Int(extraUsers[k] ?? 0)
        }
        return spilled[key]?.count ?? 0
    }

    /// Addresses of the tables' buffers (see `IncrementalCompiler.storageIdentity`).
    var storageIdentity: [UInt] {
        plain.storageIdentity + mapped.storageIdentity + [bufferAddress(extraUsers), bufferAddress(spilled)]
    }

    /// Every element as IR key and data (empty data for plain sets).
    func forEach(_ body: ([Datum], [Datum]) throws -> Void) rethrows {
        try plain.forEach { k, _ in try body(k.datums, []) }
        try mapped.forEach { k, d in try body(k.datums, Packed(lo: d, hi: 0).datums) }
        for (k, s) in spilled { try body(k, s.data) }
    }
}

/// Service port plans by name, densely: plans in an array, a name → index table beside
/// it. A `[ServicePortName: ServicePortPlan]` keeps a bucket of ~300 bytes per slot at a load
/// factor of 0.4–0.75 (≈ 80 MB for 100k service ports); this is about half. Removal moves
/// the last plan into the hole, so `items` has no particular order.
public struct PlanStore: Sendable {
    public private(set) var items: ContiguousArray<ServicePortPlan> = []
    private var index: [ServicePortName: Int32] = [:]

    public init() {}

    public var count: Int { items.count }

    /// Room for `n` plans, with headroom: the first add after a cold start must not
    /// reallocate (copy) the whole array.
    public mutating func reserve(_ n: Int) {
        let want = n + n / 8 + 16
        items.reserveCapacity(want)
        index.reserveCapacity(want)
    }

    public subscript(name: ServicePortName) -> ServicePortPlan? {
        get { index[name].map { items[Int($0)] } }
        set {
            if let new = newValue {
                if let i = index[name] {
                    items[Int(i)] = new
                } else {
                    index[name] = Int32(items.count)
                    items.append(new)
                }
            } else if let i = index.removeValue(forKey: name).map(Int.init) {
                let last = items.count - 1
                if i != last {
                    items.swapAt(i, last)
                    index[items[i].name] = Int32(i)
                }
                items.removeLast()
            }
        }
    }

    public var names: Dictionary<ServicePortName, Int32>.Keys { index.keys }

    /// Address of the plans' buffer (see `IncrementalCompiler.storageIdentity`).
    var storageIdentity: UInt { bufferAddress(items) }
}

/// The address of a collection's heap buffer: a native `Dictionary`, `Set` or `ContiguousArray` is
/// one reference to its storage, which copy-on-write replaces.
func bufferAddress<T>(_ collection: T) -> UInt {
    precondition(MemoryLayout<T>.size == MemoryLayout<UInt>.size)
    return unsafeBitCast(collection, to: UInt.self)
}
