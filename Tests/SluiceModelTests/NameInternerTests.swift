import Testing
@testable import SluiceModel

/// Validated EndpointSlices share one copy of each long node and zone name.
@Suite("name interning")
struct NameInternerTests {
    /// Where a (long, heap-allocated) string's UTF-8 bytes live.
    static func storage(_ s: String?) -> UnsafeRawPointer? {
        var copy = s
        return copy?.withUTF8 { UnsafeRawPointer($0.baseAddress) }
    }

    static let node = "ip-10-0-7-17.eu-west-1.compute.internal"

    /// The validated endpoints of three services' slices (`endpoints(i)` for the i-th), each
    /// object applied in a batch of its own: each slice is decoded and validated on its own.
    static func validatedSeparately(_ endpoints: (Int) -> [String]) -> [ValidatedEndpointSlice.Endpoint] {
        var manifests: [String] = []
        for i in 0..<3 {
            manifests.append(serviceYAML("s\(i)", clusterIP: "10.96.0.\(i + 1)"))
            manifests.append(sliceYAML("s\(i)-a", service: "s\(i)", endpoints: endpoints(i)))
        }
        var planner = IncrementalPlanner(options: NodeOptions(nodeName: "node-a", nodeIPs: [ip("192.168.10.11")]))
        for o in loadYAML(manifests.joined(separator: "---\n")).objects.sourcedObjects {
            _ = planner.apply([o.object.key: o])
        }
        return planner.validSlices.flatMap(\.endpoints)
    }

    @Test("slices decoded separately keep one copy of a long node name; short names are left alone")
    func slicesShareLongNodeNames() {
        let endpoints = Self.validatedSeparately { i in
            ["{addresses: [\"10.1.0.\(i + 1)\"], nodeName: \(Self.node), zone: eu-west-1a}"]
        }
        let node = Self.node
        #expect(endpoints.count == 3 && endpoints.allSatisfy { $0.nodeName == node && $0.zone == "eu-west-1a" })
        let buffers = Set(endpoints.map { Self.storage($0.nodeName) })
        #expect(buffers.count == 1)
    }

    @Test("the interner returns the first copy it saw, and does not hold small strings")
    func internerKeepsFirstCopy() {
        var interner = NameInterner()
        let a = String(repeating: "node-", count: 5), b = String(repeating: "node-", count: 5)
        #expect(Self.storage(a) != Self.storage(b))
        let first = interner.intern(a), second = interner.intern(b)
        #expect(first == b && Self.storage(first) == Self.storage(a) && Self.storage(second) == Self.storage(a))
        #expect(interner.intern("node-a") == "node-a" && interner.count == 1)
    }

    @Test("endpoints validated in separate slices share one placement per node, zone and hints")
    func slicesSharePlacements() {
        let endpoints = Self.validatedSeparately { i in [
            "{addresses: [\"10.1.0.\(i + 1)\"], nodeName: \(Self.node), zone: eu-west-1a}",
            "{addresses: [\"10.2.0.\(i + 1)\"], nodeName: \(Self.node), zone: eu-west-1b}",
            "{addresses: [\"10.3.0.\(i + 1)\"]}",
        ] }
        let a = endpoints.filter { $0.zone == "eu-west-1a" }, b = endpoints.filter { $0.zone == "eu-west-1b" }
        #expect(a.count == 3 && b.count == 3 && endpoints.filter { $0.placement == nil }.count == 3)
        #expect(a.allSatisfy { $0.placement === a[0].placement } && b.allSatisfy { $0.placement === b[0].placement })
        #expect(a[0].placement !== b[0].placement)
        // The two placements hold one copy of the node name.
        #expect(Self.storage(a[0].nodeName) == Self.storage(b[0].nodeName))
    }

    @Test("an endpoint is 32 bytes; its placement fields read and write by value")
    func endpointLayoutAndFields() {
        #expect(MemoryLayout<ValidatedEndpointSlice.Endpoint>.stride == 32)
        var e = ValidatedEndpointSlice.Endpoint(address: ip("10.1.0.1"), nodeName: "n1", zone: "z1")
        let before = e
        e.zoneHints = ["z1", "z2"]
        #expect(e.nodeName == "n1" && e.zone == "z1" && e.zoneHints == ["z1", "z2"] && e.nodeHints.isEmpty)
        #expect(before.zoneHints.isEmpty && before != e)
        e.zoneHints = []
        #expect(e == before && e.hashValue == before.hashValue)
        e.nodeName = nil
        e.zone = nil
        #expect(e.placement == nil)
        var interner = NameInterner()
        let p1 = interner.placement(nodeName: "n1", zone: nil, zoneHints: [], nodeHints: ["n1"])
        let p2 = interner.placement(nodeName: "n1", zone: nil, zoneHints: [], nodeHints: [])
        let p3 = interner.placement(nodeName: "n1", zone: nil, zoneHints: [], nodeHints: ["n1"])
        #expect(p1 !== p2 && p1 === p3 && interner.placementCount == 2)
        #expect(interner.placement(nodeName: nil, zone: nil, zoneHints: [], nodeHints: []) == nil)
    }
}
