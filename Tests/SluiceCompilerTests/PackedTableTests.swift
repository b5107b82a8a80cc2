import Testing
@testable import SluiceCompiler
import SluiceIR
import SluiceTestSupport

/// `PackedTable` against a plain `Dictionary`: random inserts, updates, removals and lookups,
/// compared after every step.
struct PackedTableTests {
    /// SplitMix64: the same operations on every run of a seed.
    typealias Random = SeededGenerator

    /// Structured keys like the compiler's, all-zero among them: the first `n` of address,
    /// port and high-word variations.
    static func keys(_ n: Int) -> [Packed] {
        var out: [Packed] = [.empty, Packed(lo: 0, hi: 1), Packed(lo: 1, hi: 0), Packed(lo: .max, hi: .max)]
        var i: UInt64 = 0
        while out.count < n {
            out.append(Packed(lo: 1 | (0x0A60_0000 + i / 4) << 3 | (i % 4) << 35, hi: i % 3 == 0 ? 0 : i >> 2))
            i += 1
        }
        return Array(out.prefix(n))
    }

    /// One random step on both tables; the chosen key's presence and value then agree.
    static func step(_ t: inout PackedTable<UInt64>, _ model: inout [Packed: UInt64], _ key: Packed,
                     removeRate: Double, _ rng: inout Random) {
        let value = UInt64.random(in: 0...3, using: &rng) // 0 too: no value marks a bucket empty
        switch Double.random(in: 0..<1, using: &rng) {
        case ..<removeRate:
            #expect(t.remove(key) == (model.removeValue(forKey: key) != nil))
        case ..<(removeRate + 0.1):
            if let i = t.index(of: key) { t.setValue(value, at: i); model[key] = value }
        default:
            #expect(t.insert(key, value) == model[key])
            if model[key] == nil { model[key] = value }
        }
        #expect(t[key] == model[key] && t.contains(key) == (model[key] != nil))
        #expect(t.count == model.count)
    }

    static func contents(_ t: PackedTable<UInt64>) -> [Packed: UInt64] {
        var out: [Packed: UInt64] = [:]
        t.forEach { k, v in
            #expect(out.updateValue(v, forKey: k) == nil, "an entry listed twice")
        }
        return out
    }

    @Test("random operations grow through several rehashes, then shrink to empty",
          arguments: [1, 2, 3] as [UInt64])
    func againstDictionary(seed: UInt64) {
        var rng = Random(state: seed)
        var t = PackedTable<UInt64>(seed: seed &* 77), model: [Packed: UInt64] = [:]
        let pool = Self.keys(3000)
        var capacities: Set<Int> = []
        for n in 0..<12_000 {
            let removeRate = n < 8000 ? 0.2 : 0.8
            let key = pool.randomElement(using: &rng)!
            Self.step(&t, &model, key, removeRate: removeRate, &rng)
            capacities.insert(t.capacity)
            if n % 500 == 0 { #expect(t.isConsistent && Self.contents(t) == model) }
        }
        #expect(capacities.count >= 6, "rehashes: \(capacities.sorted())")
        #expect(t.isConsistent && Self.contents(t) == model)
        for k in pool { #expect(t[k] == model[k]) }
    }

    @Test("keys that share a home bucket, at the start and at the wrapping end of the table",
          arguments: [4, 5] as [UInt64])
    func collisions(seed: UInt64) {
        var rng = Random(state: seed)
        var t = PackedTable<UInt64>(seed: seed), model: [Packed: UInt64] = [:]
        t.reserve(200)
        let buckets = t.capacity
        let ends = [1, buckets - 1, buckets - 3]
        var pool: [Packed] = []
        for k in Self.keys(200_000) where ends.contains(t.home(k)) && pool.count < 150 { pool.append(k) }
        #expect(pool.count == 150)
        for _ in 0..<6000 {
            let key = pool.randomElement(using: &rng)!
            Self.step(&t, &model, key, removeRate: 0.4, &rng)
            #expect(t.isConsistent)
        }
        #expect(t.capacity == buckets, "no rehash: \(model.count) ≤ 200 entries")
        #expect(Self.contents(t) == model)
    }

    @Test("copies are independent; a unique table mutates its buffers in place")
    func valueSemantics() {
        var t = PackedTable<UInt64>()
        t.reserve(100)
        for k in Self.keys(50) { t.insert(k, 1) }
        let buffers = t.storageIdentity
        t.insert(Packed(lo: 42, hi: 42), 2)
        t.remove(Self.keys(1)[0])
        #expect(t.storageIdentity == buffers)
        var copy = t
        copy.insert(Packed(lo: 7, hi: 7), 3)
        #expect(copy.count == t.count + 1 && t[Packed(lo: 7, hi: 7)] == nil)
        #expect(t.storageIdentity == buffers && copy.storageIdentity != buffers)
    }

    @Test("reserve makes room for that many entries without a rehash")
    func reserveRoom() {
        for n in [1, 7, 8, 100, 1000] {
            var t = PackedTable<NoValue>()
            t.reserve(n)
            let buffers = t.storageIdentity
            for k in Self.keys(n) { #expect(t.insert(k, NoValue()) == nil) }
            #expect(t.storageIdentity == buffers && t.count == n && t.isConsistent)
        }
    }

    @Test("SetStore against a model of counted users, IPv4 and IPv6 keys mixed")
    func setStoreModel() {
        var rng = Random(state: 9)
        for isMap in [false, true] {
            var s = SetStore(isMap: isMap)
            var model: [[Datum]: (data: [Datum], users: Int)] = [:]
            let keys = (0..<300).map(Self.storeKey)
            for _ in 0..<5000 {
                let k = keys.randomElement(using: &rng)!
                let d: [Datum] = isMap ? [.integer(UInt32.random(in: 0...1, using: &rng))] : []
                Self.storeStep(&s, &model, k, d, &rng)
            }
            var seen = 0
            s.forEach { k, d in
                seen += 1
                #expect(model[k]?.data == d)
            }
            #expect(seen == model.count)
        }
    }

    /// Every tenth key IPv6 (spilled), the others packed.
    static func storeKey(_ i: Int) -> [Datum] {
        if i % 10 == 0 { return [.ipv6(0xFD00, UInt64(i)), .port(80)] }
        return [.ipv4(UInt32(i)), .proto(6), .port(UInt16(i % 7))]
    }

    static func storeStep(_ s: inout SetStore, _ model: inout [[Datum]: (data: [Datum], users: Int)],
                          _ k: [Datum], _ d: [Datum], _ rng: inout Random) {
        if Bool.random(using: &rng) {
            let expected: SetStore.InsertResult = model[k].map { $0.data == d ? .counted : .conflict } ?? .added
            #expect(s.insert(k, d) == expected)
            if expected != .conflict { model[k, default: (data: d, users: 0)].users += 1 }
        } else {
            let m = model[k].flatMap { $0.data == d ? $0.users : nil }
            #expect(s.remove(k, d) == (m == nil ? .absent : m == 1 ? .removed : .counted))
            if m == 1 { model[k] = nil } else if m != nil { model[k]!.users -= 1 }
        }
        #expect(s.count == model.count && s.lookup(k) == model[k]?.data)
        #expect(s.users(k, d) == (model[k].map { $0.data == d ? $0.users : 0 } ?? 0))
    }
}
