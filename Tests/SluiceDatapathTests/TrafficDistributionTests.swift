import Foundation
import SluiceModel
import SluiceTestSupport
import Testing

extension PacketTests {
    /// `trafficDistribution` through the one planner, with real connections:
    /// - PreferSameNode: node hints pick this node's endpoint; with no endpoint hinted for this
    ///   node, the zone hints apply (the fallback);
    /// - PreferSameZone and PreferClose (its older name): this zone's endpoints;
    /// - one ready endpoint without hints: topology is ignored, every endpoint is used;
    /// - Pods selected by label get the hints the EndpointSlice controller would write;
    /// - relabelling this Node to another zone re-plans: the zone's endpoints change.
    @Test("Topology: PreferSameNode (zone fallback), PreferSameZone, PreferClose, a missing hint, pods, a zone relabel", arguments: IPFamily.allCases)
    func trafficDistribution(_ family: IPFamily) throws {
        let dp = try Datapath(Variant(family: family, loader: .netlink), "topo")
        defer { dp.close() }
        let a = dp.a, e = a.endpoints
        let objects = TopologyObjects(a: a, family: family)
        var planner = IncrementalPlanner(options: NodeOptions(nodeName: "node1", clusterCIDRs: [CIDR(a.podCIDR)!],
                                                              nodeIPs: [IPAddress(a.nodeIP)!]))
        func load(_ yaml: String, first: Bool) throws {
            let changes = planner.apply(objects.changes(yaml))
            #expect(changes.diagnostics.filter { $0.severity == .error }.isEmpty, "\(changes.diagnostics)")
            let context = try #require(planner.nodeContext?.families.first { $0.family == family })
            let plan = FamilyPlan(context: context, servicePorts: planner.servicePorts(family))
            if first { try dp.load(plan) } else { try dp.update(plan) }
        }
        func served(_ n: Int) throws -> Set<String> {
            Expect.endpoints(try dp.probe(from: .pod, Probe("tcp", a.serviceIP(n), 80, count: 40)))
        }
        try load(objects.all(zone: "zone-a"), first: true)
        #expect(try served(71) == [e[0]], "PreferSameNode: this node's endpoint")
        #expect(try served(72) == [e[1], e[3]], "PreferSameNode without this node's hint: zone-a")
        #expect(try served(73) == [e[0], e[1]], "PreferSameZone: zone-a")
        #expect(try served(74) == [e[0], e[1]], "PreferClose: zone-a")
        #expect(try served(75) == [e[0], e[1], e[2]], "a ready endpoint without hints: all")
        #expect(try served(76) == [e[4]], "pods by label, PreferClose: the zone-a pod")
        // This node moves to zone-b: every zone choice follows.
        try load(objects.node(zone: "zone-b"), first: false)
        #expect(try served(71) == [e[0]], "PreferSameNode still picks this node")
        #expect(try served(72) == [e[2]], "fallback: now zone-b")
        #expect(try served(73) == [e[2]], "PreferSameZone: now zone-b")
        #expect(try served(76) == [e[5]], "pods: now the zone-b pod")
    }
}

/// The manifests of the topology test: this node `node1`, nodes 2–4 (zones a, b, a).
struct TopologyObjects {
    let a: ServiceTopology.Addresses
    let family: IPFamily

    func changes(_ yaml: String) -> ObjectChanges {
        ManifestLoader().parse(text: yaml, file: "topology.yaml").objects.upsertChanges
    }

    func node(zone: String) -> String {
        """
        apiVersion: v1
        kind: Node
        metadata: {name: node1, labels: {topology.kubernetes.io/zone: \(zone)}}
        status: {addresses: [{type: InternalIP, address: "\(a.nodeIP)"}]}
        """
    }

    func all(zone: String) -> String {
        var docs = [node(zone: zone), """
            apiVersion: networking.k8s.io/v1
            kind: ServiceCIDR
            metadata: {name: services}
            spec: {cidrs: ["\(a.serviceCIDR)"]}
            """]
        for (n, z) in [("node2", "zone-a"), ("node3", "zone-b"), ("node4", "zone-a")] {
            docs.append("apiVersion: v1\nkind: Node\nmetadata: {name: \(n), labels: {topology.kubernetes.io/zone: \(z)}}")
        }
        // (endpoint, node, zone) with node hints / zone hints as the controller writes them.
        let sameNode = [(0, "node1", "zone-a"), (1, "node2", "zone-a"), (2, "node3", "zone-b")]
        let fallback = [(1, "node2", "zone-a"), (2, "node3", "zone-b"), (3, "node4", "zone-a")]
        docs += service(71, "same-node", "PreferSameNode") + [slice("same-node", sameNode, nodeHints: true)]
        docs += service(72, "fallback", "PreferSameNode") + [slice("fallback", fallback, nodeHints: true)]
        docs += service(73, "same-zone", "PreferSameZone") + [slice("same-zone", sameNode, nodeHints: false)]
        docs += service(74, "close", "PreferClose") + [slice("close", sameNode, nodeHints: false)]
        docs += service(75, "missing", "PreferSameZone") + [slice("missing", sameNode, nodeHints: false, unhinted: 2)]
        docs += service(76, "pods", "PreferClose", selector: true)
        docs += [pod("web-a", 4, "node2"), pod("web-b", 5, "node3")]
        return docs.joined(separator: "\n---\n")
    }

    func service(_ n: Int, _ name: String, _ distribution: String, selector: Bool = false) -> [String] {
        ["""
        apiVersion: v1
        kind: Service
        metadata: {name: \(name), namespace: default}
        spec:
          clusterIP: "\(a.serviceIP(n))"
          trafficDistribution: \(distribution)
          \(selector ? "selector: {app: web}" : "type: ClusterIP")
          ports: [{name: p, protocol: TCP, port: 80, targetPort: 8080}]
        """]
    }

    func slice(_ service: String, _ eps: [(Int, String, String)], nodeHints: Bool, unhinted: Int? = nil) -> String {
        var lines = ["apiVersion: discovery.k8s.io/v1", "kind: EndpointSlice",
                     "metadata: {name: \(service)-1, namespace: default, labels: {kubernetes.io/service-name: \(service)}}",
                     "addressType: \(family == .ipv4 ? "IPv4" : "IPv6")", "ports: [{name: p, protocol: TCP, port: 8080}]", "endpoints:"]
        for (i, node, zone) in eps {
            lines += ["- addresses: [\"\(a.endpoints[i])\"]", "  conditions: {ready: true}", "  nodeName: \(node)", "  zone: \(zone)"]
            guard i != unhinted else { continue }
            lines.append("  hints: {forZones: [{name: \(zone)}]\(nodeHints ? ", forNodes: [{name: \(node)}]" : "")}")
        }
        return lines.joined(separator: "\n")
    }

    func pod(_ name: String, _ i: Int, _ node: String) -> String {
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: \(name), namespace: default, labels: {app: web}}
        spec: {nodeName: \(node), containers: [{name: c, ports: [{containerPort: 8080}]}]}
        status:
          podIP: "\(a.endpoints[i])"
          podIPs: [{ip: "\(a.endpoints[i])"}]
          conditions: [{type: Ready, status: "True"}]
        """
    }
}
