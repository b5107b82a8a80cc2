import SluiceModel

/// A Maglev lookup table (Eisenbud et al., NSDI 2016) over a weighted endpoint group: the
/// slot map of a `consistent-hash` service port.
///
/// - Each endpoint walks its own permutation of the `size` slots, `offset + j·skip mod size`,
///   with `offset` and `skip` taken from a fixed hash of its address and port, so every node
///   builds the same table from the same endpoints.
/// - Endpoints take turns claiming their next free slot, in endpoint order, `count` turns per
///   round (the slot counts of the group's `SlotAllocation`, i.e. reduced weights), until
///   the table is full. Shares are proportional to weights within one slot per turn.
/// - Removing one of N endpoints frees its slots; most other slots keep their endpoint, so
///   only about 1/N of flows move.
public struct MaglevTable: Sendable, Hashable {
    /// Table sizes: primes, so every skip is coprime with the size.
    public static let sizes: [UInt32] = [251, 1021, 4093, 16381, 65521]
    /// Slots per endpoint the size aims for at least: balance within 1/50 of a share, and about
    /// 3 % of flows moved beyond the leaving endpoint's own share (20 per endpoint gave 6 %).
    public static let slotsPerEndpoint: UInt32 = 50

    /// Index into the group's `slots` for each table slot.
    public let entries: [Int]
    public var size: UInt32 { UInt32(entries.count) }

    /// The smallest size with at least `slotsPerEndpoint` slots per endpoint and one slot per
    /// weight unit; the largest size beyond that.
    public static func size(endpoints: Int, weightUnits: UInt32) -> UInt32 {
        let want = max(UInt64(endpoints) * UInt64(slotsPerEndpoint), UInt64(weightUnits))
        return sizes.first { UInt64($0) >= want } ?? sizes.last!
    }

    public init(_ group: SlotAllocation) {
        let m = Int(Self.size(endpoints: group.slots.count, weightUnits: group.total))
        let perms = group.slots.map { Permutation($0.endpoint, size: m) }
        // Turns go in address order, whatever order the endpoints came in.
        let order = group.slots.indices.sorted { group.slots[$0].endpoint < group.slots[$1].endpoint }
        var next = [Int](repeating: 0, count: perms.count)
        var table = [Int](repeating: -1, count: m)
        var filled = 0
        fill: while true {
            for i in order {
                for _ in 0..<group.slots[i].count {
                    var c = perms[i].slot(next[i])
                    while table[c] >= 0 {
                        next[i] += 1
                        c = perms[i].slot(next[i])
                    }
                    table[c] = i
                    next[i] += 1
                    filled += 1
                    if filled == m { break fill }
                }
            }
        }
        entries = table
    }

    /// One endpoint's preference order over the slots.
    struct Permutation {
        let offset: Int, skip: Int, size: Int

        init(_ e: WeightedEndpoint, size: Int) {
            let name = Array("\(e.ip)|\(e.port)".utf8)
            offset = Int(fnv1a(name, basis: 0xcbf2_9ce4_8422_2325) % UInt64(size))
            skip = Int(fnv1a(name, basis: 0x8422_2325_cbf2_9ce4) % UInt64(size - 1)) + 1
            self.size = size
        }

        func slot(_ j: Int) -> Int { (offset + j % size * skip) % size }
    }
}

/// FNV-1a, 64 bit: a fixed hash (Swift's `Hasher` is seeded per process).
func fnv1a(_ bytes: [UInt8], basis: UInt64) -> UInt64 {
    var h = basis
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01b3
    }
    return h
}
