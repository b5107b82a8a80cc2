/// What a `PackedTable` keeps beside each key. `filler` fills empty buckets and is never
/// read as an element's value.
protocol PackedTableValue: Equatable, Sendable {
    static var filler: Self { get }
}

/// The value of a plain set's element: nothing, so an entry of a `PackedTable<NoValue>` is
/// its 16-byte key alone.
struct NoValue: PackedTableValue {
    static var filler: NoValue { NoValue() }
}

extension UInt64: PackedTableValue {
    static var filler: UInt64 { 0 }
}

/// Mixed into every table's hash, once per process, as Swift's own `Hasher` is seeded: keys
/// come from the cluster, and a fixed hash would let crafted Services pile up in one probe run.
let packedTableSeed = UInt64.random(in: .min ... .max)

/// An open-addressing hash table of `Packed` keys, denser than `Set`/`Dictionary`.
///
/// Swift's tables use power-of-two bucket counts at a maximum load of 3/4 and double when
/// full, so a table sits 37–75 % full (a 1 M-element map takes 2^21 buckets of 24 bytes). Here
/// the bucket count is any number: a hash maps to its home bucket by multiply-high
/// ("fastrange"), the table holds up to 7/8 of its buckets and grows by 1.5×, so it sits
/// 58–87 % full. Linear probing keeps a lookup in one run of adjacent buckets; removal shifts
/// the rest of the run back (no tombstones), so runs do not lengthen with churn.
///
/// Bytes per bucket: the entry (16 for a key alone, 24 with a `UInt64` value) and one control
/// byte. Keys can be anything, all-zero included, so no key marks an empty bucket: control 0
/// does, and an occupied bucket's control is 0x80 | 7 bits of its key's hash. A probe reads
/// the dense control bytes and compares a key only where they match (1 in 128 otherwise),
/// which keeps a search for an absent key (every insert) cheap at this load: its expected run,
/// (1 + 1/(1 − load)²)/2 buckets, is 11 at a load of 0.78 and 33 at 7/8, one or two cache
/// lines of control bytes. Both arrays are `ContiguousArray`s: copy-on-write value
/// semantics, and a unique table mutates in place.
struct PackedTable<Value: PackedTableValue>: Sendable {
    struct Entry: Sendable {
        var key: Packed
        var value: Value
    }

    private(set) var entries: ContiguousArray<Entry> = []
    /// Per bucket: 0 if empty, else `tag(hash)` of its key.
    private var control: ContiguousArray<UInt8> = []
    private(set) var count = 0
    private let seed: UInt64

    init(seed: UInt64 = packedTableSeed) { self.seed = seed }

    var isEmpty: Bool { count == 0 }
    /// The number of buckets.
    var capacity: Int { entries.count }

    /// Addresses of the two buffers (see `IncrementalCompiler.storageIdentity`).
    var storageIdentity: [UInt] { [bufferAddress(entries), bufferAddress(control)] }

    // MARK: Hashing

    /// A murmur3-style finalizer over both words: the keys are structured (tags, addresses,
    /// ports in fixed bit fields), and the home bucket comes from the hash's high bits.
    @inline(__always)
    private static func hash(_ k: Packed, _ seed: UInt64) -> UInt64 {
        var h = (k.lo ^ seed) &* 0x9E37_79B9_7F4A_7C15
        h ^= k.hi
        h ^= h >> 33
        h &*= 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h &*= 0xC4CE_B9FE_1A85_EC53
        return h ^ (h >> 33)
    }

    /// Fastrange: `hash × buckets / 2^64`, uniform over any bucket count.
    @inline(__always)
    private static func home(_ h: UInt64, _ buckets: Int) -> Int {
        Int(truncatingIfNeeded: h.multipliedFullWidth(by: UInt64(buckets)).high)
    }

    /// The control byte of an occupied bucket: low hash bits (the home takes the high ones).
    @inline(__always)
    private static func tag(_ h: UInt64) -> UInt8 { 0x80 | UInt8(truncatingIfNeeded: h & 0x7F) }

    /// The home bucket of `k` (internal for tests).
    func home(_ k: Packed) -> Int { Self.home(Self.hash(k, seed), capacity) }

    // MARK: Lookup

    /// The bucket holding `k`, or the empty bucket that ends its probe run, and `k`'s control
    /// byte. Needs buckets; the load limit keeps one empty. (Through unsafe pointers: this is
    /// the table's hot loop, and the control bytes keep it within the arrays.)
    @inline(__always)
    private func probe(_ k: Packed) -> (bucket: Int, found: Bool, tag: UInt8) {
        let h = Self.hash(k, seed), tag = Self.tag(h)
        return entries.withUnsafeBufferPointer { e in
            control.withUnsafeBufferPointer { c in
                var i = Self.home(h, e.count)
                while c[i] != 0 {
                    if c[i] == tag && e[i].key == k { return (i, true, tag) }
                    i = i &+ 1 == e.count ? 0 : i &+ 1
                }
                return (i, false, tag)
            }
        }
    }

    /// The bucket of `k`; nil if absent.
    func index(of k: Packed) -> Int? {
        guard count > 0 else { return nil }
        let p = probe(k)
        return p.found ? p.bucket : nil
    }

    func contains(_ k: Packed) -> Bool { index(of: k) != nil }

    subscript(k: Packed) -> Value? { index(of: k).map { entries[$0].value } }

    func value(at bucket: Int) -> Value { entries[bucket].value }

    // MARK: Mutation

    /// Stores `k : v` if `k` is absent (nil); else leaves the table as it is and returns the
    /// value stored.
    @discardableResult
    mutating func insert(_ k: Packed, _ v: Value) -> Value? {
        if capacity > 0 {
            let p = probe(k)
            if p.found { return entries[p.bucket].value }
            if !isFull {
                put(Entry(key: k, value: v), at: p.bucket, p.tag)
                return nil
            }
        }
        grow(to: Swift.max(Self.buckets(for: count + 1), capacity + capacity / 2))
        let p = probe(k)
        put(Entry(key: k, value: v), at: p.bucket, p.tag)
        return nil
    }

    /// Replaces the value of the entry in `bucket`.
    mutating func setValue(_ v: Value, at bucket: Int) { entries[bucket].value = v }

    /// Removes the entry in `bucket`, then moves each later entry of the probe run that may sit
    /// nearer its home back into the hole, so every key stays reachable without tombstones.
    mutating func remove(at bucket: Int) {
        let seed = seed
        entries.withUnsafeMutableBufferPointer { e in
            control.withUnsafeMutableBufferPointer { c in Self.shiftBack(from: bucket, e, c, seed) }
        }
        count -= 1
    }

    /// The backward shift of `remove(at:)`.
    private static func shiftBack(from bucket: Int, _ e: UnsafeMutableBufferPointer<Entry>,
                                  _ c: UnsafeMutableBufferPointer<UInt8>, _ seed: UInt64) {
        let n = e.count
        @inline(__always) func distance(_ a: Int, _ b: Int) -> Int { b >= a ? b &- a : b &+ n &- a }
        var hole = bucket, j = bucket &+ 1 == n ? 0 : bucket &+ 1
        while c[j] != 0 {
            if distance(home(hash(e[j].key, seed), n), j) >= distance(hole, j) {
                e[hole] = e[j]
                c[hole] = c[j]
                hole = j
            }
            j = j &+ 1 == n ? 0 : j &+ 1
        }
        c[hole] = 0
    }

    /// Removes `k`; false if absent.
    @discardableResult
    mutating func remove(_ k: Packed) -> Bool {
        guard let i = index(of: k) else { return false }
        remove(at: i)
        return true
    }

    /// Room for `total` entries without a rehash.
    mutating func reserve(_ total: Int) {
        let want = Self.buckets(for: total)
        if want > capacity { grow(to: want) }
    }

    // MARK: Sizing

    /// The load limit, 7/8: a key found takes 4.5 probes on average even at the limit (an
    /// absent one more, over control bytes only), and a table just grown by 1.5× is still 58 %
    /// full (Swift's, just doubled, 37 %).
    private var isFull: Bool { (count + 1) * 8 > capacity * 7 }

    /// The fewest buckets that hold `n` entries within the load limit (8 at least, so small
    /// tables do not rehash at every insert).
    private static func buckets(for n: Int) -> Int { Swift.max(8, (n * 8 + 6) / 7) }

    @inline(__always)
    private mutating func put(_ e: Entry, at bucket: Int, _ tag: UInt8) {
        entries[bucket] = e
        control[bucket] = tag
        count += 1
    }

    /// Rehashes every entry into `buckets` buckets.
    private mutating func grow(to buckets: Int) {
        let old = self
        entries = ContiguousArray(repeating: Entry(key: .empty, value: .filler), count: buckets)
        control = ContiguousArray(repeating: 0, count: buckets)
        count = 0
        old.forEach { k, v in
            let p = probe(k)
            put(Entry(key: k, value: v), at: p.bucket, p.tag)
        }
    }

    // MARK: Iteration

    /// Every entry, in bucket order.
    func forEach(_ body: (Packed, Value) throws -> Void) rethrows {
        for i in control.indices where control[i] != 0 {
            try body(entries[i].key, entries[i].value)
        }
    }

    /// For tests: the count matches the control bytes, each occupied bucket's control byte is
    /// its key's tag, and every key is reachable from its home through occupied buckets only.
    var isConsistent: Bool {
        guard control.count == capacity else { return false }
        var n = 0
        for i in 0..<capacity where control[i] != 0 {
            n += 1
            let h = Self.hash(entries[i].key, seed)
            guard control[i] == Self.tag(h) else { return false }
            var j = Self.home(h, capacity)
            while j != i {
                guard control[j] != 0 else { return false }
                j = j + 1 == capacity ? 0 : j + 1
            }
        }
        return n == count
    }
}
