import SluiceModel
import SluiceTestSupport
import Testing

extension PacketTests {
    /// ClusterIP from a pod keeps its source; from outside the pod network (external client,
    /// the node itself) it is masqueraded; `masqueradeAll` masquerades pods too; without a
    /// local-traffic detector nothing is masqueraded (reference §1.8 "Masquerading").
    @Test("ClusterIP: masquerade from outside the pod CIDR, masqueradeAll, no detector", arguments: Variant.all)
    func clusterIPMasquerading(_ v: Variant) throws {
        let dp = try Datapath(v, "cip")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        let vip = k.clusterIP(41)
        let backends = [a.endpoints[0], a.endpoints[1], a.endpoints[2]]
        let ports = k.ports("web", clusterIP: 41, cluster: k.eps(0, 1, 2))

        /// Probes from pod, external client and node at once; checks endpoint and the source it saw.
        func check(_ label: String, pod: String, external: String, node: String) throws {
            var set = ProbeSet()
            for proto in Protocols.tested {
                for host in [ServiceTopology.Host.pod, .external, .node] {
                    set.add(host, "\(proto.rawValue) \(host)", Probe(proto.probeName, vip, 80, count: 6))
                }
            }
            let r = try dp.run(set)
            for proto in Protocols.tested {
                let what = "[\(v)] \(label) \(proto.rawValue) → \(hostPort(vip, 80))"
                Expect.answered(r["\(proto.rawValue) pod"]!, by: backends, peer: pod, "\(what) from pod")
                Expect.answered(r["\(proto.rawValue) external"]!, by: backends, peer: external, "\(what) from external client")
                Expect.answered(r["\(proto.rawValue) node"]!, by: backends, peer: node, "\(what) from the node")
            }
        }

        try dp.load(k.plan(ports))
        try check("pod-CIDR detector", pod: a.podClient, external: a.nodeTowardEndpoints, node: a.nodeTowardEndpoints)

        try dp.load(k.plan(ports, context: k.context(masqueradeAll: true)))
        try check("masqueradeAll", pod: a.nodeTowardEndpoints, external: a.nodeTowardEndpoints, node: a.nodeTowardEndpoints)

        // No detector: the node's own connections leave with the node IP of the default route.
        try dp.load(k.plan(ports, context: k.context(detector: false)))
        try check("no detector", pod: a.podClient, external: a.externalClient, node: a.nodeIP)
    }

    /// Equal weights spread connections over every endpoint (a smoke check; the statistics
    /// are in `weightedSelection`), and the service port is translated to the target port.
    @Test("ClusterIP: every endpoint is used, port translated", arguments: Variant.all)
    func clusterIPSpread(_ v: Variant) throws {
        let dp = try Datapath(v, "spread")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        try dp.load(k.plan(k.ports("web", clusterIP: 41, port: 53, cluster: [k.ep(0, port: 8081), k.ep(1, port: 8081), k.ep(2, port: 8081)])))
        for proto in Protocols.tested {
            let answers = try dp.probe(from: .pod, [Probe(proto.probeName, k.clusterIP(41), 53, count: 60)])[0]
            let what = "[\(v)] \(proto.rawValue) pod → \(hostPort(k.clusterIP(41), 53))"
            Expect.answered(answers, by: Array(a.endpoints[0...2]), peer: a.podClient, what)
            #expect(answers.allSatisfy { if case .answered(_, 8081, _, _) = $0 { return true }; return false },
                    "\(what): expected target port 8081; got \(Expect.show(answers))")
            #expect(Expect.endpoints(answers).count == 3, "\(what): 60 connections over 3 equal endpoints reached only \(Expect.endpoints(answers).sorted())")
        }
    }
}
