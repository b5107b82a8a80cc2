import Foundation
import Testing
@testable import SluiceModel

@Suite struct ManifestLoaderTests {
    /// Three Services, one per document; `port` of the second, and an extra comment line in the first.
    func threeServices(port: Int, extraLine: Bool = false, brokenThird: Bool = false) -> String {
        (extraLine ? "# edited\n" : "") + (0..<3).map { i in
            let body = "apiVersion: v1\nkind: Service\nmetadata: {name: s\(i), namespace: d}\nspec: {clusterIP: 10.96.0.\(10 + i), ports: [{port: \(i == 1 ? port : 80)}]}\n"
            return "---\n" + (i == 2 && brokenThird ? body + "  bad: [unclosed\n" : body)
        }.joined()
    }

    @Test("an edit re-parses only the documents it changed; the result equals a fresh parse, line numbers included")
    func documentCacheReusesUnchangedDocuments() {
        let loader = ManifestLoader()
        var cache = DocumentCache()
        let first = loader.parse(text: threeServices(port: 80, brokenThird: true), file: "m.yaml", documents: &cache)
        #expect(cache.lastParsed == 3 && cache.count == 3)
        // One document edited: one parse; same result as without the cache.
        let edited = threeServices(port: 81, brokenThird: true)
        let second = loader.parse(text: edited, file: "m.yaml", documents: &cache)
        #expect(cache.lastParsed == 1 && cache.count == 3)
        #expect(second == loader.parse(text: edited, file: "m.yaml"))
        #expect(second.objects.services.map { $0.object.spec.ports?.first?.port } == [80, 81])
        #expect(second.diagnostics == first.diagnostics && second.diagnostics.count == 1)
        // A line added before every document moves them all: the ones that parsed cleanly are
        // reused where they now stand; the broken one is parsed again, and its error names
        // its new line.
        let shifted = threeServices(port: 81, extraLine: true, brokenThird: true)
        let third = loader.parse(text: shifted, file: "m.yaml", documents: &cache)
        #expect(cache.lastParsed == 1)
        #expect(third == loader.parse(text: shifted, file: "m.yaml"))
        #expect(third.diagnostics != second.diagnostics, "the error's line moved with the edit")
        // A document inserted in front renumbers the rest: only it and the broken one are parsed.
        let node = "---\napiVersion: v1\nkind: Node\nmetadata: {name: n1}\n"
        let inserted = node + shifted
        let fourth = loader.parse(text: inserted, file: "m.yaml", documents: &cache)
        #expect(cache.lastParsed == 2)
        #expect(fourth == loader.parse(text: inserted, file: "m.yaml"))
        #expect(fourth.diagnostics.first?.document == 4)
    }

    @Test func multiDocumentYAMLWithUnknownKinds() {
        let yaml = """
            # leading comment
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: prod}
            spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            ---
            apiVersion: v1
            kind: Node
            metadata: {name: node-a}
            ---
            """
        let r = loadYAML(yaml)
        #expect(r.diagnostics.isEmpty)
        #expect(r.objects.services.map(\.object.serviceName.description) == ["prod/web"])
        #expect(r.objects.services.first?.file == "Rulesets/test.yaml")
        #expect(r.objects.services.first?.object.spec.ports?.first?.protocol == nil)  // defaulted later
        #expect(r.objects.nodes.count == 1)
        #expect(r.objects.count == 2)
    }

    @Test func brokenDocumentIsReportedAndLoadingContinues() {
        let yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: a}
            spec: {clusterIP: 10.96.0.1}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: b
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: c}
            spec: {clusterIP: 10.96.0.3, ports: [{port: "eighty"}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: d}
            """
        let r = loadYAML(yaml, file: "m.yaml")
        #expect(r.objects.services.compactMap(\.object.metadata.name) == ["a", "d"])
        #expect(r.diagnostics.count == 2)
        #expect(r.diagnostics[0].description.hasPrefix("m.yaml (document 2): YAML parse error at line "))
        #expect(r.diagnostics[1].description == "m.yaml (document 3): Service default/c: spec.ports[0].port: expected a number")
    }

    @Test func kindListWithMixedItems() {
        let yaml = """
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: Service
              metadata: {name: web, namespace: default}
              spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80}]}
            - apiVersion: discovery.k8s.io/v1
              kind: EndpointSlice
              metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
              addressType: IPv4
              endpoints: [{addresses: [10.0.0.1]}]
              ports: [{name: http, port: 8080}]
            - kind: ConfigMap
              metadata: {name: ignored}
            """
        let r = loadYAML(yaml)
        #expect(r.diagnostics.isEmpty)
        #expect(r.objects.services.count == 1)
        #expect(r.objects.endpointSlices.count == 1)
    }

    @Test func typedListItemsWithoutKind() {
        let yaml = """
            kind: ServiceList
            apiVersion: v1
            metadata: {resourceVersion: "256"}
            items:
            - metadata: {name: a, namespace: default, resourceVersion: "248"}
              spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}
            - metadata: {name: b, namespace: default}
              spec: {clusterIP: 10.96.0.2, ports: [{port: 80}]}
            """
        let r = loadYAML(yaml)
        #expect(r.objects.services.compactMap(\.object.metadata.name) == ["a", "b"])
        #expect(r.objects.services.first?.object.metadata.resourceVersion == "248")
    }

    /// The recorded/constructed API server JSON from the reference (managedFields trimmed),
    /// with `"endpoints": null` and unknown fields.
    @Test func jsonFileWithEndpointSliceList() {
        let json = """
            {"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"293"},"items":[
             {"metadata":{"name":"web-abc12","generateName":"web-","namespace":"default","resourceVersion":"255","labels":{"endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io","kubernetes.io/service-name":"web"},"annotations":{"endpoints.kubernetes.io/last-change-trigger-time":"2026-11-26T18:19:03Z"},"ownerReferences":[{"apiVersion":"v1","kind":"Service","name":"web"}]},
              "addressType":"IPv4","endpoints":[{"addresses":["10.244.1.5"],"conditions":{"ready":true,"serving":true,"terminating":false},"targetRef":{"kind":"Pod","name":"web-7d4b9-xk2lp"},"nodeName":"node-a","zone":"zone-a","hints":{"forZones":[{"name":"zone-a"}],"forNodes":[{"name":"node-a"}]}},
               {"addresses":["10.244.2.9"],"conditions":{"ready":false,"serving":true,"terminating":true},"nodeName":"node-b","zone":"zone-b","hints":{"forZones":[{"name":"zone-b"}]}}],
              "ports":[{"name":"http","protocol":"TCP","port":8080,"appProtocol":"http"},{"name":"dns","protocol":"UDP","port":53}]},
             {"metadata":{"name":"empty","namespace":"default","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","endpoints":null,"ports":null}
            ]}
            """
        let r = ManifestLoader().parse(text: json, file: "api/slices.json")
        #expect(r.diagnostics.isEmpty)
        let slices = r.objects.endpointSlices.map(\.object)
        #expect(slices.count == 2)
        #expect(slices[0].endpoints?[0].hints?.forNodes?.first?.name == "node-a")
        #expect(slices[0].endpoints?[1].conditions?.terminating == true)
        #expect(slices[0].metadata.annotation(WellKnownKeys.lastChangeTriggerTime) == "2026-11-26T18:19:03Z")
        #expect(slices[1].endpoints == nil)
        #expect(slices[1].ports == nil)
    }

    @Test func jsonServiceDecodesAllFields() throws {
        let json = """
            {"kind":"Service","apiVersion":"v1","metadata":{"name":"web-lb","namespace":"default","labels":{"app":"web"},"annotations":{"n":"3"},"deletionTimestamp":"2026-11-26T18:30:00Z"},"spec":{"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080,"nodePort":32482},{"name":"named","port":81,"targetPort":"web"}],"selector":{"app":"web"},"clusterIP":"10.96.232.144","clusterIPs":["10.96.232.144"],"type":"LoadBalancer","sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":600}},"loadBalancerSourceRanges":["203.0.113.0/24"],"externalTrafficPolicy":"Local","internalTrafficPolicy":"Cluster","healthCheckNodePort":31941,"ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","trafficDistribution":"PreferClose","allocateLoadBalancerNodePorts":true},"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.127","ipMode":"VIP","ports":[{"port":80,"protocol":"TCP"}]}]},"conditions":[]}}
            """
        // The same bytes through JSONDecoder (what a watch client uses) and the loader.
        let viaJSON = try JSONDecoder().decode(Service.self, from: Data(json.utf8))
        let viaLoader = ManifestLoader().parse(text: json, file: "svc.json").objects.services.first?.object
        #expect(viaJSON == viaLoader)
        #expect(viaJSON.spec.ports?[0].targetPort == .int(8080))
        #expect(viaJSON.spec.ports?[1].targetPort == .string("web"))
        #expect(viaJSON.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds == 600)
        #expect(viaJSON.status.loadBalancer?.ingress?.first?.ipMode == "VIP")
        #expect(viaJSON.metadata.deletionTimestamp == "2026-11-26T18:30:00Z")
        #expect(viaJSON.spec.trafficDistribution == "PreferClose")
    }

    @Test func nodeJSONFromTheReference() throws {
        let json = """
            {"metadata":{"name":"node-a","resourceVersion":"304","labels":{"kubernetes.io/hostname":"node-a","topology.kubernetes.io/zone":"zone-a"}},"spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24","fd00:10:244:1::/64"],"taints":[{"key":"node.kubernetes.io/not-ready","effect":"NoSchedule"}]},"status":{"addresses":[{"type":"InternalIP","address":"192.168.10.11"},{"type":"InternalIP","address":"fd00:192:168:10::11"},{"type":"Hostname","address":"node-a"}],"daemonEndpoints":{"kubeletEndpoint":{"Port":0}}}}
            """
        let node = try JSONDecoder().decode(Node.self, from: Data(json.utf8))
        #expect(node.zone == "zone-a")
        #expect(node.podCIDRStrings == ["10.244.1.0/24", "fd00:10:244:1::/64"])
        #expect(node.spec.taints?.first?.key == "node.kubernetes.io/not-ready")
        #expect(node.status.addresses?.count == 3)
    }

    @Test func directoriesAreWalkedRecursivelyInSortedOrder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-loader-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        try fm.createDirectory(at: dir.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try fm.createDirectory(at: dir.appendingPathComponent("..data"), withIntermediateDirectories: true)
        func write(_ path: String, _ text: String) throws {
            try text.write(to: dir.appendingPathComponent(path), atomically: true, encoding: .utf8)
        }
        try write("b.yaml", serviceYAML("b", clusterIP: "10.96.0.2"))
        try write("a.yml", serviceYAML("a", clusterIP: "10.96.0.1"))
        try write("sub/c.json", #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"c"},"spec":{"clusterIP":"10.96.0.3"}}"#)
        try write("notes.txt", "kind: Service\nmetadata: {name: txt}\n")
        try write("..data/hidden.yaml", serviceYAML("hidden", clusterIP: "10.96.0.9"))
        try write("broken.yaml", "kind: Service\nmetadata: {name: [\n")
        let base = dir.path
        let r = ManifestLoader().load(paths: [base, base + "/notes.txt", base + "/missing.yaml"])
        #expect(r.objects.services.compactMap(\.object.metadata.name) == ["a", "b", "c", "txt"])
        #expect(r.objects.services.map(\.file) == ["\(base)/a.yml", "\(base)/b.yaml", "\(base)/sub/c.json", "\(base)/notes.txt"])
        #expect(r.diagnostics.count == 2)
        #expect(r.diagnostics[0].file == "\(base)/broken.yaml")
        #expect(r.diagnostics[0].document == 1)
        #expect(r.diagnostics[1].description == "\(base)/missing.yaml: no such file or directory")
    }

    @Test func documentSplitting() {
        let docs = splitYAMLDocuments("a: 1\n---\nb: 2\n--- \n...\n---\nc: 3\n")
        #expect(docs.map(\.index) == [1, 2, 3, 4])
        #expect(docs[1].firstLine == 2)
        #expect(docs.map { $0.text.trimmingSpaces } == ["a: 1", "b: 2", "", "c: 3"])
    }
}
