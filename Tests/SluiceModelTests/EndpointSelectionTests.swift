import Testing
@testable import SluiceModel

/// Endpoint merging and kube-proxy's CategorizeEndpoints, through the planner.
@Suite struct EndpointSelectionTests {
    let node = """
        apiVersion: v1
        kind: Node
        metadata: {name: node-a, labels: {topology.kubernetes.io/zone: zone-a}}
        status: {addresses: [{type: InternalIP, address: 192.168.10.11}]}

        """

    @Test func readyEndpointsAreSortedByIPPortString() {
        let r = planYAML(docs(serviceYAML("web"), sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.2]}", "{addresses: [10.0.0.10]}", "{addresses: [10.0.0.3], conditions: {ready: false}}",
        ])))
        let p = r.port("default/web:http")!
        // "10.0.0.10:8080" < "10.0.0.2:8080" as strings, as kube-proxy sorts.
        #expect(p.clusterEndpoints.strings == ["10.0.0.10:8080", "10.0.0.2:8080"])
        #expect(p.hasAnyEndpoints)
        #expect(p.localEndpoints.isEmpty)  // Cluster policies do not use local endpoints
    }

    @Test func terminatingFallbackWhenNoReadyEndpoint() {
        let r = planYAML(docs(serviceYAML("web"), sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.1], conditions: {ready: false, serving: true, terminating: true}}",
            "{addresses: [10.0.0.2], conditions: {ready: false, serving: false, terminating: true}}",
            "{addresses: [10.0.0.3], conditions: {ready: false, serving: true, terminating: false}}",
        ])))
        let p = r.port("default/web:http")!
        #expect(p.clusterEndpoints.strings == ["10.0.0.1:8080"])
        #expect(p.hasAnyEndpoints)
    }

    @Test func terminatingEndpointsUnusedWhileAnyIsReady() {
        let r = planYAML(docs(serviceYAML("web"), sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.1], conditions: {ready: false, serving: true, terminating: true}}",
            "{addresses: [10.0.0.2]}",
        ])))
        #expect(r.port("default/web:http")!.clusterEndpoints.strings == ["10.0.0.2:8080"])
    }

    @Test func noUsableEndpointMeansNoEndpoints() {
        let r = planYAML(docs(serviceYAML("web"), sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.2], conditions: {ready: false, serving: false, terminating: true}}",
        ])))
        let p = r.port("default/web:http")!
        #expect(p.clusterEndpoints.isEmpty)
        #expect(!p.hasAnyEndpoints)
    }

    @Test func zoneHintsFilterClusterEndpoints() {
        let r = planYAML(docs(node, serviceYAML("web"), sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.1], zone: zone-a, hints: {forZones: [{name: zone-a}]}}",
            "{addresses: [10.0.0.2], zone: zone-b, hints: {forZones: [{name: zone-b}]}}",
        ])))
        #expect(r.port("default/web:http")!.clusterEndpoints.strings == ["10.0.0.1:8080"])
    }

    @Test func zoneHintsIgnoredWhenNotEveryReadyEndpointIsHinted() {
        let r = planYAML(docs(node, serviceYAML("web"), sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.1], hints: {forZones: [{name: zone-a}]}}",
            "{addresses: [10.0.0.2]}",
            // Not ready: its missing hint does not matter.
            "{addresses: [10.0.0.3], conditions: {ready: false}}",
        ])))
        #expect(r.port("default/web:http")!.clusterEndpoints.strings == ["10.0.0.1:8080", "10.0.0.2:8080"])
    }

    @Test func zoneHintsIgnoredWhenNoneNamesThisZone() {
        let r = planYAML(docs(node, serviceYAML("web"), sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.1], hints: {forZones: [{name: zone-b}]}}",
            "{addresses: [10.0.0.2], hints: {forZones: [{name: zone-c}]}}",
        ])))
        #expect(r.port("default/web:http")!.clusterEndpoints.count == 2)
    }

    @Test func zoneHintsNeedTheNodeZoneLabel() {
        // No Node object: the zone is unknown, hints cannot apply.
        let r = planYAML(docs(serviceYAML("web"), sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.1], hints: {forZones: [{name: zone-a}]}}",
            "{addresses: [10.0.0.2], hints: {forZones: [{name: zone-b}]}}",
        ])))
        #expect(r.port("default/web:http")!.clusterEndpoints.count == 2)
    }

    @Test func nodeHintsWinOverZoneHints() {
        let r = planYAML(docs(node, serviceYAML("web"), sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.1], hints: {forZones: [{name: zone-a}], forNodes: [{name: node-b}]}}",
            "{addresses: [10.0.0.2], hints: {forZones: [{name: zone-a}], forNodes: [{name: node-a}]}}",
        ])))
        #expect(r.port("default/web:http")!.clusterEndpoints.strings == ["10.0.0.2:8080"])
    }

    @Test func incompleteNodeHintsFallBackToZoneHints() {
        let r = planYAML(docs(node, serviceYAML("web"), sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.1], hints: {forZones: [{name: zone-a}], forNodes: [{name: node-a}]}}",
            "{addresses: [10.0.0.2], hints: {forZones: [{name: zone-a}]}}",
            "{addresses: [10.0.0.3], hints: {forZones: [{name: zone-b}], forNodes: [{name: node-c}]}}",
        ])))
        #expect(r.port("default/web:http")!.clusterEndpoints.strings == ["10.0.0.1:8080", "10.0.0.2:8080"])
    }

    @Test func topologyIsIgnoredByTheTerminatingFallback() {
        let r = planYAML(docs(node, serviceYAML("web"), sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.1], conditions: {ready: false, serving: true, terminating: true}, hints: {forZones: [{name: zone-b}]}}",
        ])))
        #expect(r.port("default/web:http")!.clusterEndpoints.strings == ["10.0.0.1:8080"])
    }

    @Test func localEndpointsForExternalTrafficPolicyLocal() {
        let svc = serviceYAML("web", spec: ["type: NodePort", "externalTrafficPolicy: Local"],
                              ports: ["{name: http, port: 80, nodePort: 30080}"])
        let r = planYAML(docs(node, svc, sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.1], nodeName: node-a}",
            "{addresses: [10.0.0.2], nodeName: node-b}",
            "{addresses: [10.0.0.3], nodeName: node-a, conditions: {ready: false, serving: true, terminating: true}}",
        ])))
        let p = r.port("default/web:http")!
        #expect(p.externalPolicyLocal)
        #expect(p.localEndpoints.strings == ["10.0.0.1:8080"])
        #expect(p.clusterEndpoints.strings == ["10.0.0.1:8080", "10.0.0.2:8080"])  // for short-circuited traffic
        #expect(p.localReadyEndpointCount == 1)
    }

    @Test func localEndpointsFallBackToLocalServingTerminating() {
        let svc = serviceYAML("web", spec: ["type: NodePort", "externalTrafficPolicy: Local"],
                              ports: ["{name: http, port: 80, nodePort: 30080}"])
        let r = planYAML(docs(svc, sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.1], nodeName: node-a, conditions: {ready: false, serving: true, terminating: true}}",
            "{addresses: [10.0.0.2], nodeName: node-b}",
        ])))
        let p = r.port("default/web:http")!
        #expect(p.localEndpoints.strings == ["10.0.0.1:8080"])
        #expect(p.clusterEndpoints.strings == ["10.0.0.2:8080"])
        #expect(p.localReadyEndpointCount == 0)  // terminating endpoints are not counted
        #expect(p.hasAnyEndpoints)
    }

    @Test func internalTrafficPolicyLocalUsesOnlyLocalEndpoints() {
        let svc = serviceYAML("web", spec: ["internalTrafficPolicy: Local"])
        let r = planYAML(docs(svc, sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.2], nodeName: node-b}",
        ])))
        let p = r.port("default/web:http")!
        #expect(!p.usesClusterEndpoints)
        #expect(p.clusterEndpoints.isEmpty)
        #expect(p.localEndpoints.isEmpty)
        #expect(p.hasAnyEndpoints)  // endpoints exist elsewhere: drop, not reject
    }

    @Test func duplicateEndpointExistingWinsUnlessNewIsLocal() {
        let svc = serviceYAML("web", spec: ["type: NodePort", "externalTrafficPolicy: Local"],
                              ports: ["{name: http, port: 80, nodePort: 30080}"])
        // Slices are visited by name: "web-a" first. 10.0.0.1 appears in both; the later one is
        // local and wins (its weight 7 shows it). 10.0.0.2 appears in both, neither local:
        // the first (weight 3) stays.
        let r = planYAML(docs(svc,
            sliceYAML("web-a", service: "web", annotations: ["sluice.dev/weight": "3"], endpoints: [
                "{addresses: [10.0.0.1], nodeName: node-b}", "{addresses: [10.0.0.2], nodeName: node-b}",
            ]),
            sliceYAML("web-b", service: "web", annotations: ["sluice.dev/weight": "7"], endpoints: [
                "{addresses: [10.0.0.1], nodeName: node-a}", "{addresses: [10.0.0.2], nodeName: node-c}",
            ])))
        let p = r.port("default/web:http")!
        #expect(p.clusterEndpoints == [WeightedEndpoint(ip: ip("10.0.0.1"), port: 8080, weight: 7),
                                       WeightedEndpoint(ip: ip("10.0.0.2"), port: 8080, weight: 3)])
        #expect(p.localEndpoints.strings == ["10.0.0.1:8080"])
    }

    @Test func portsMatchByNameAndProtocol() {
        let svc = serviceYAML("dns", ports: ["{name: dns, port: 53, protocol: UDP}", "{name: dns-tcp, port: 53, protocol: TCP}"])
        let r = planYAML(docs(svc, sliceYAML("dns-1", service: "dns", endpoints: ["{addresses: [10.0.0.5]}"],
                                             ports: ["{name: dns, port: 5353, protocol: UDP}",
                                                     "{name: dns-tcp, port: 5354}",
                                                     "{name: dns, port: 9999, protocol: TCP}"])))
        #expect(r.port("default/dns:dns")!.clusterEndpoints.strings == ["10.0.0.5:5353"])
        #expect(r.port("default/dns:dns-tcp")!.clusterEndpoints.strings == ["10.0.0.5:5354"])
    }

    @Test func slicesOfOtherNamespacesAndServicesDoNotMix() {
        let r = planYAML(docs(serviceYAML("web"),
                              sliceYAML("web-1", service: "web", ns: "other", endpoints: ["{addresses: [10.0.0.1]}"]),
                              sliceYAML("api-1", service: "api", endpoints: ["{addresses: [10.0.0.2]}"])))
        #expect(r.port("default/web:http")!.clusterEndpoints.isEmpty)
    }

    @Test func localReadyCountIsDistinctIPsOverAllPorts() {
        let svc = serviceYAML("web", spec: ["type: LoadBalancer", "externalTrafficPolicy: Local", "healthCheckNodePort: 31941"],
                              ports: ["{name: http, port: 80, nodePort: 30080}", "{name: https, port: 443, nodePort: 30443}"])
        let r = planYAML(docs(svc, sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.1], nodeName: node-a}", "{addresses: [10.0.0.2], nodeName: node-a}",
            "{addresses: [10.0.0.3], nodeName: node-b}",
            "{addresses: [10.0.0.4], nodeName: node-a, conditions: {ready: false}}",
        ], ports: ["{name: http, port: 8080}", "{name: https, port: 8443}"])))
        #expect(r.port("default/web:http")!.localReadyEndpointCount == 2)
        #expect(r.port("default/web:https")!.localReadyEndpointCount == 2)
        #expect(r.port("default/web:http")!.healthCheckNodePort == 31941)
    }

    @Test func categorizeWithoutEndpoints() {
        let c = CategorizedEndpoints(endpoints: [], usesClusterEndpoints: true, usesLocalEndpoints: true,
                                     nodeName: "node-a", zone: "zone-a")
        #expect(c.clusterEndpoints.isEmpty && c.localEndpoints.isEmpty && !c.hasAnyEndpoints)
    }

    @Test func topologyModeDirect() {
        let a = Endpoint(ip: ip("10.0.0.1"), port: 80, zoneHints: ["zone-a"], nodeHints: ["node-a"])
        let b = Endpoint(ip: ip("10.0.0.2"), port: 80, zoneHints: ["zone-b"], nodeHints: ["node-b"])
        #expect(CategorizedEndpoints.topologyMode([a, b], nodeName: "node-a", zone: "zone-b") == .preferSameNode)
        #expect(CategorizedEndpoints.topologyMode([a, b], nodeName: "node-x", zone: "zone-b") == .preferSameZone)
        #expect(CategorizedEndpoints.topologyMode([a, b], nodeName: "node-x", zone: "zone-x") == CategorizedEndpoints.TopologyMode.none)
        #expect(CategorizedEndpoints.topologyMode([a, b], nodeName: "node-x", zone: nil) == CategorizedEndpoints.TopologyMode.none)
    }
}

/// Sluice's `sluice.dev/weight` annotation.
@Suite struct WeightTests {
    @Test func weightAppliesToEverySliceEndpointAndDefaultsToOne() {
        let r = planYAML(docs(serviceYAML("web"),
            sliceYAML("web-a", service: "web", annotations: ["sluice.dev/weight": "5"],
                      endpoints: ["{addresses: [10.0.0.1]}", "{addresses: [10.0.0.2]}"]),
            sliceYAML("web-b", service: "web", endpoints: ["{addresses: [10.0.0.3]}"])))
        let p = r.port("default/web:http")!
        #expect(p.clusterEndpoints.map(\.weight) == [5, 5, 1])
        #expect(p.clusterEndpoints.totalWeight == 11)
    }

    @Test func zeroWeightEndpointsAreKept() {
        let r = planYAML(docs(serviceYAML("web"),
            sliceYAML("web-a", service: "web", annotations: ["sluice.dev/weight": "0"], endpoints: ["{addresses: [10.0.0.1]}"]),
            sliceYAML("web-b", service: "web", annotations: ["sluice.dev/weight": "1000"], endpoints: ["{addresses: [10.0.0.2]}"])))
        let p = r.port("default/web:http")!
        #expect(p.clusterEndpoints == [WeightedEndpoint(ip: ip("10.0.0.1"), port: 8080, weight: 0),
                                       WeightedEndpoint(ip: ip("10.0.0.2"), port: 8080, weight: 1000)])
    }

    @Test func allZeroWeightGroupStillHasEndpoints() {
        let r = planYAML(docs(serviceYAML("web"),
            sliceYAML("web-a", service: "web", annotations: ["sluice.dev/weight": "0"], endpoints: ["{addresses: [10.0.0.1]}"])))
        let p = r.port("default/web:http")!
        #expect(p.hasAnyEndpoints)
        #expect(p.clusterEndpoints.count == 1)
        #expect(p.clusterEndpoints.totalWeight == 0)
    }

    @Test("a bad weight is reported and the default weight used: a typo never drops the slice's endpoints",
          arguments: ["abc", "1001", "-1", "1.5", "", "0x10"])
    func badWeightFallsBackToDefault(_ text: String) {
        let r = planYAML(docs(serviceYAML("web"),
            sliceYAML("web-a", service: "web", annotations: ["sluice.dev/weight": text], endpoints: ["{addresses: [10.0.0.1]}"]),
            sliceYAML("web-b", service: "web", endpoints: ["{addresses: [10.0.0.2]}"])))
        #expect(r.descriptions == [
            "Rulesets/test.yaml: EndpointSlice default/web-a: metadata.annotations[\"sluice.dev/weight\"]: \"\(text)\" is not an integer 0-1000; weight 1 used",
        ])
        #expect(r.port("default/web:http")!.clusterEndpoints.strings == ["10.0.0.1:8080", "10.0.0.2:8080"])
    }

    @Test("loopback, multicast, unspecified and broadcast endpoints are left out with an error naming the field",
          arguments: ["127.0.0.1", "224.0.0.1", "0.0.0.0", "255.255.255.255"])
    func specialEndpointAddressesRejected(_ address: String) {
        let r = planYAML(docs(serviceYAML("web"),
            sliceYAML("web-a", service: "web", endpoints: ["{addresses: [\"\(address)\"]}", "{addresses: [10.0.0.2]}"])))
        #expect(r.descriptions.count == 1)
        #expect(r.descriptions.first?.contains("EndpointSlice default/web-a: endpoints[0].addresses[0]: \(address) is") == true)
        #expect(r.port("default/web:http")!.clusterEndpoints.strings == ["10.0.0.2:8080"])
    }

    @Test func weightParsing() {
        #expect(EndpointSliceValidator.parseWeight(" 42 ") == 42)
        #expect(EndpointSliceValidator.parseWeight("0") == 0)
        #expect(EndpointSliceValidator.parseWeight("1000") == 1000)
        #expect(EndpointSliceValidator.parseWeight("1001") == nil)
        #expect(EndpointSliceValidator.parseWeight("+5") == nil)
    }
}

@Suite struct TextOrderTests {
    /// Octets and ports around every change of digit count.
    static let octets: [UInt32] = [0, 1, 2, 9, 10, 11, 19, 20, 99, 100, 101, 199, 200, 249, 250, 255]
    static let ports: [UInt16?] = [nil, 0, 1, 8, 9, 10, 80, 443, 999, 1000, 8080, 9999, 10000, 65535]

    @Test("IPv4 keys order exactly as the texts kube-proxy sorts by (address, and ip:port)")
    func ipv4KeysOrderAsTheirTexts() {
        var items: [(key: TextOrder, text: String)] = []
        for a in Self.octets where a % 3 == 0 || a < 12 {
            for c in Self.octets {
                for port in Self.ports {
                    let ip = IPAddress.v4(a << 24 | 244 << 16 | c << 8 | (c ^ 7) & 0xff)
                    let text = port.map { Endpoint(ip: ip, port: $0).description } ?? ip.description
                    items.append((TextOrder(ip, port: port), text))
                }
            }
        }
        let byKey = items.sorted { $0.key < $1.key }.map(\.text)
        let byText = items.map(\.text).sorted()
        #expect(byKey == byText)
        // Equal texts, equal keys; different texts, different keys.
        #expect(Set(items.map(\.key)).count == Set(items.map(\.text)).count)
    }

    @Test("IPv6 keys are the texts")
    func ipv6KeysAreTexts() {
        let a = IPAddress("fd00::10")!, b = IPAddress("fd00::9")!
        #expect(TextOrder(a, port: 80) == .text("[fd00::10]:80"))
        #expect((TextOrder(a, port: nil) < TextOrder(b, port: nil)) == (a.description < b.description))
    }
}

@Suite struct ConcurrentMapTests {
    @Test("concurrentMap keeps the elements' order, maps each once, and gives each worker its index", arguments: [1, 2, 3, 8])
    func ordered(workers: Int) {
        let items = Array(0..<1000)
        let out = items.concurrentMap(workers: workers) { w, x in (w, x * 2) }
        #expect(out.map(\.1) == items.map { $0 * 2 })
        #expect(out.allSatisfy { $0.0 >= 0 && $0.0 < min(workers, items.count) })
        #expect(Set(out.map(\.0)).count == min(workers, items.count))
        #expect([Int]().concurrentMap(workers: workers) { _, x in x }.isEmpty)
    }
}
