/// One shared copy of each node and zone name that endpoints repeat.
///
/// A Swift string over 15 UTF-8 bytes lives on the heap, and every decoded endpoint brings
/// its own copy of its `nodeName` (a cloud provider's node names run to 30–60 bytes). On a
/// cluster of a million endpoints over a few hundred nodes, those copies alone take ≈ 100 MB
/// (`sluice engine-bench --services 100000 --endpoints 10`: 618 → 518 MB with interning).
/// The planner keeps validated EndpointSlices for their life, so it swaps each such name for
/// the one copy held here. Names are never evicted: there are as many as nodes and zones
/// ever seen, not endpoints.
struct NameInterner: Sendable {
    private var names = Set<String>()

    /// The shared copy of `name` (the first one seen); small strings are returned as they are.
    mutating func intern(_ name: String) -> String {
        guard name.utf8.count > 15 else { return name }
        return names.insert(name).memberAfterInsert
    }

    mutating func intern(_ name: String?) -> String? {
        name.map { intern($0) }
    }

    /// The slice with every endpoint's node, zone and hint names shared.
    mutating func intern(_ slice: ValidatedEndpointSlice) -> ValidatedEndpointSlice {
        var slice = slice
        for i in slice.endpoints.indices {
            slice.endpoints[i].nodeName = intern(slice.endpoints[i].nodeName)
            slice.endpoints[i].zone = intern(slice.endpoints[i].zone)
            if !slice.endpoints[i].nodeHints.isEmpty { slice.endpoints[i].nodeHints = slice.endpoints[i].nodeHints.map { intern($0) } }
            if !slice.endpoints[i].zoneHints.isEmpty { slice.endpoints[i].zoneHints = slice.endpoints[i].zoneHints.map { intern($0) } }
        }
        return slice
    }

    /// How many names are held (for tests).
    var count: Int { names.count }
}
