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

    @Test("slices decoded separately keep one copy of a long node name; short names are left alone")
    func slicesShareLongNodeNames() {
        let node = "ip-10-0-7-17.eu-west-1.compute.internal"
        var manifests: [String] = []
        for i in 0..<3 {
            manifests.append(serviceYAML("s\(i)", clusterIP: "10.96.0.\(i + 1)"))
            manifests.append(sliceYAML("s\(i)-a", service: "s\(i)", endpoints: [
                "{addresses: [\"10.1.0.\(i + 1)\"], nodeName: \(node), zone: eu-west-1a}",
            ]))
        }
        var planner = IncrementalPlanner(options: NodeOptions(nodeName: "node-a", nodeIPs: [ip("192.168.10.11")]))
        // One object per batch: each slice is decoded and validated on its own.
        for o in loadYAML(manifests.joined(separator: "---\n")).objects.sourcedObjects {
            _ = planner.apply([o.object.key: o])
        }
        let endpoints = planner.validSlices.flatMap(\.endpoints)
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
}
