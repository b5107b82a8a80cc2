/// One shared copy of each node and zone name that endpoints repeat.
///
/// A Swift string over 15 UTF-8 bytes lives on the heap, and every decoded endpoint brings
/// its own copy of its `nodeName` (a cloud provider's node names run to 30–60 bytes). On a
/// cluster of a million endpoints over a few hundred nodes, those copies alone take ≈ 100 MB
/// (`sluice engine-bench --services 100000 --endpoints 10`: 618 → 518 MB with interning).
/// The planner keeps validated EndpointSlices for their life, so it swaps each such name for
/// the one copy held here as it validates them (through `placement(nodeName:zone:zoneHints:nodeHints:)`,
/// `EndpointSliceValidator`'s `sharingPlacements`).
/// Names are never evicted: there are as many as nodes and zones ever seen, not endpoints.
///
/// The same holds one copy of each endpoint `Placement` (node, zone and hints), so that an
/// endpoint carries a reference to a shared one (`placement(nodeName:zone:zoneHints:nodeHints:)`).
struct NameInterner: Sendable {
    private var names = Set<String>()
    private var placements = Set<ValidatedEndpointSlice.Placement>()
    /// Placements returned lately, by a hash of their node name (direct-mapped, as `recent`).
    private var recentPlacements = [ValidatedEndpointSlice.Placement?](repeating: nil, count: 256)
    /// Names returned lately, by a hash of their UTF-8 bytes (direct-mapped, each
    /// one a member of `names`): it runs for every endpoint staged, and most lookups end
    /// here, without hashing the name with `Hasher` and probing the set.
    private var recent = [String?](repeating: nil, count: 256)

    /// The shared copy of `name` (the first one seen); small strings are returned as they are.
    mutating func intern(_ name: String) -> String {
        guard name.utf8.count > 15 else { return name }
        let slot = Self.slot(name, among: recent.count)
        // `names` holds no two equal names, so an equal one here is the one the set would give.
        if let held = recent[slot], held == name { return held }
        let shared = names.insert(name).memberAfterInsert
        recent[slot] = shared
        return shared
    }

    /// How many names are held (for tests).
    var count: Int { names.count }

    /// How many placements are held (for tests).
    var placementCount: Int { placements.count }

    /// The shared placement with these fields (the first one seen, its names interned);
    /// nil when all are empty. Runs for every endpoint staged: most calls end at the
    /// direct-mapped cache, with one comparison and no allocation.
    mutating func placement(nodeName: String?, zone: String?, zoneHints: [String],
                            nodeHints: [String]) -> ValidatedEndpointSlice.Placement? {
        if nodeName == nil && zone == nil && zoneHints.isEmpty && nodeHints.isEmpty { return nil }
        let slot = Self.slot(nodeName ?? zone ?? "", among: recentPlacements.count)
        if let held = recentPlacements[slot],
           held.holds(nodeName: nodeName, zone: zone, zoneHints: zoneHints, nodeHints: nodeHints) {
            return held
        }
        let fresh = ValidatedEndpointSlice.Placement(nodeName: nodeName.map { intern($0) }, zone: zone.map { intern($0) },
                                                     zoneHints: zoneHints.map { intern($0) }, nodeHints: nodeHints.map { intern($0) })
        let shared = placements.insert(fresh).memberAfterInsert
        recentPlacements[slot] = shared
        return shared
    }

    /// A multiplicative hash of the UTF-8 bytes, eight at a time, reduced to one of `count`
    /// (a power of two) slots.
    private static func slot(_ name: String, among count: Int) -> Int {
        var name = name
        let hash = name.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            var h = UInt64(bytes.count), i = 0
            while i + 8 <= bytes.count {
                h = (h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
                h ^= h >> 32
                i += 8
            }
            while i < bytes.count {
                h = (h ^ UInt64(bytes[i])) &* 0x9E37_79B9_7F4A_7C15
                i += 1
            }
            return h ^ h >> 29
        }
        return Int(truncatingIfNeeded: hash) & (count - 1)
    }
}
