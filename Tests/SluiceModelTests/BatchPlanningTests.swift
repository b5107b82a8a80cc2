import Testing
@testable import SluiceModel

/// `IncrementalPlanner` given all objects at once (a first sync: one context change, every
/// service planned) and given them one at a time must end with the same plans.
@Suite("batch planning")
struct BatchPlanningTests {
    @Test("600 services planned in one batch get the plans they get one object at a time")
    func batchEqualsOneByOne() {
        var manifests: [String] = []
        for i in 0..<600 {
            let (a, b) = (i / 250, i % 250 + 1)
            let spec = i % 3 == 0 ? ["internalTrafficPolicy: Local"] : i % 3 == 1 ? ["sessionAffinity: ClientIP"] : []
            manifests.append(serviceYAML("s\(i)", ns: "ns\(i % 7)", clusterIP: "10.96.\(a).\(b)", spec: spec))
            manifests.append(sliceYAML("s\(i)-a", service: "s\(i)", ns: "ns\(i % 7)", endpoints: [
                "{addresses: [\"10.1.\(a).\(b)\"], nodeName: \(i % 2 == 0 ? "node-c" : "node-a")}",
                "{addresses: [\"10.2.\(a).\(b)\"], nodeName: node-b, conditions: {ready: \(i % 5 != 0)}}",
            ]))
        }
        let loaded = loadYAML(manifests.joined(separator: "---\n"))
        #expect(loaded.diagnostics.isEmpty)
        let objects = loaded.objects.services.map { SourcedObject(.service($0.object), file: $0.file) }
            + loaded.objects.endpointSlices.map { SourcedObject(.endpointSlice($0.object), file: $0.file) }
        let options = NodeOptions(nodeName: "node-a", nodeIPs: [ip("192.168.10.11")])

        var batch = IncrementalPlanner(options: options)
        var all: ObjectChanges = [:]
        for o in objects { all[o.object.key] = o }
        let changes = batch.apply(all)
        #expect(changes.replanned.count == 600)

        var single = IncrementalPlanner(options: options)
        for o in objects { _ = single.apply([o.object.key: o]) }

        #expect(batch.planned.count == 600)
        #expect(batch.planned == single.planned)
        #expect(batch.healthChecks == single.healthChecks && batch.noLocalEndpoints == single.noLocalEndpoints)
        // Internal-Local services (every third) without an endpoint on node-a (every second).
        #expect(batch.noLocalEndpoints["internal"] == 100)
    }

    @Test("servicePorts hands every plan of a family over once, in name order, multi-port services included")
    func servicePortsInNameOrder() {
        var manifests: [String] = []
        for i in 0..<40 {
            let ports = i % 4 == 0 ? ["{name: zz, port: 81}", "{name: aa, port: 80}", "{name: mm, port: 82, protocol: UDP}"]
                                   : ["{name: http, port: 80}"]
            manifests.append(serviceYAML("s\(39 - i)", ns: "ns\(i % 3)", clusterIP: "10.96.0.\(i + 1)", ports: ports))
        }
        let loaded = loadYAML(manifests.joined(separator: "---\n"))
        #expect(loaded.diagnostics.isEmpty)
        var planner = IncrementalPlanner(options: NodeOptions(nodeName: "node-a", nodeIPs: [ip("192.168.10.11")]))
        var all: ObjectChanges = [:]
        for s in loaded.objects.services {
            let o = SourcedObject(.service(s.object), file: s.file)
            all[o.object.key] = o
        }
        _ = planner.apply(all)
        let names = planner.servicePorts(.ipv4).map(\.name)
        let expected = planner.planned.values.flatMap(\.all).map(\.name).sorted()
        #expect(names.count == 40 + 10 * 2)
        #expect(names == expected)
        #expect(planner.servicePorts(.ipv6).isEmpty)
    }
}
