import SluiceModel
import SluiceTestSupport
import Testing

extension PacketTests {
    /// eTP=Local (reference §1.8): external clients reach only local endpoints and keep their
    /// source; pods short-circuit to all cluster endpoints unmasqueraded; the node
    /// short-circuits masqueraded. Without local endpoints external traffic is dropped while
    /// pods and the node still get through.
    @Test("externalTrafficPolicy Local: NodePort, LoadBalancer IP, externalIP", arguments: Variant.all)
    func externalTrafficPolicyLocal(_ v: Variant) throws {
        let dp = try Datapath(v, "etp")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        let all = Array(a.endpoints[0...3]), local = [a.endpoints[2], a.endpoints[3]]
        let targets: [(String, String, UInt16)] = [
            ("NodePort", a.nodeIP, 30082), ("LB IP", a.loadBalancerIP, 80), ("externalIP", a.externalIP, 80),
        ]
        func ports(local: [WeightedEndpoint]) -> [ServicePortPlan] {
            k.ports("etp", clusterIP: 45, nodePort: 30082, externalIPs: [a.externalIP], lbIPs: [a.loadBalancerIP],
                    eTPLocal: true, cluster: k.eps(0, 1, 2, 3), local: local)
        }

        try dp.load(k.plan(ports(local: k.eps(2, 3))))
        for proto in Protocols.tested {
            let pn = proto.probeName, tag = "[\(v)] \(proto.rawValue) eTP=Local"
            let probes = targets.map { Probe(pn, $0.1, $0.2, count: 6) }
            let ext = try dp.probe(from: .external, probes)
            let pod = try dp.probe(from: .pod, probes)
            let node = try dp.probe(from: .node, probes)
            for (i, t) in targets.enumerated() {
                let to = "\(t.0) \(hostPort(t.1, t.2))"
                Expect.answered(ext[i], by: local, peer: a.externalClient, "\(tag) external → \(to): local endpoints only, source kept")
                Expect.answered(pod[i], by: all, peer: a.podClient, "\(tag) pod → \(to): short-circuit, not masqueraded")
                Expect.answered(node[i], by: all, peer: a.nodeTowardEndpoints, "\(tag) node → \(to): short-circuit, masqueraded")
            }
            // The short-circuit reaches remote endpoints too (18 tries each: P(miss) = 2^-18).
            let podRemote = Expect.endpoints(pod.flatMap { $0 }).subtracting(local)
            let nodeRemote = Expect.endpoints(node.flatMap { $0 }).subtracting(local)
            #expect(!podRemote.isEmpty, "\(tag): pods were never sent to a non-local endpoint: \(Expect.show(pod.flatMap { $0 }))")
            #expect(!nodeRemote.isEmpty, "\(tag): the node was never sent to a non-local endpoint: \(Expect.show(node.flatMap { $0 }))")
        }

        try dp.load(k.plan(ports(local: [])))
        var ext = ProbeSet(), others = ProbeSet()
        for proto in Protocols.tested {
            for t in targets {
                let key = "\(proto.rawValue) \(t.0)"
                ext.add(.external, key, Probe(proto.probeName, t.1, t.2), parallel: 2)
                others.add(.pod, "pod \(key)", Probe(proto.probeName, t.1, t.2, count: 3))
                others.add(.node, "node \(key)", Probe(proto.probeName, t.1, t.2, count: 3))
            }
        }
        let r = try parallel(2) { i in i == 0 ? try dp.expectNoLeak("[\(v)] external, no local endpoints") { try dp.run(ext) } : try dp.run(others) }
        for proto in Protocols.tested {
            let tag = "[\(v)] \(proto.rawValue) eTP=Local, no local endpoints"
            for t in targets {
                let key = "\(proto.rawValue) \(t.0)", to = "\(t.0) \(hostPort(t.1, t.2))"
                Expect.all(r[0][key]!, .timeout, "\(tag) external → \(to): dropped")
                Expect.answered(r[1]["pod \(key)"]!, by: all, peer: a.podClient, "\(tag) pod → \(to): still short-circuited")
                Expect.answered(r[1]["node \(key)"]!, by: all, peer: a.nodeTowardEndpoints, "\(tag) node → \(to): still short-circuited, masqueraded")
            }
        }
    }

    /// iTP=Local: the ClusterIP reaches local endpoints only; with none it drops.
    @Test("internalTrafficPolicy Local", arguments: Variant.all)
    func internalTrafficPolicyLocal(_ v: Variant) throws {
        let dp = try Datapath(v, "itp")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        let cip = k.clusterIP(46)
        try dp.load(k.plan(k.ports("itp", clusterIP: 46, iTPLocal: true, cluster: k.eps(0, 1, 2, 3), local: k.eps(2))))
        for proto in Protocols.tested {
            let tag = "[\(v)] \(proto.rawValue) iTP=Local → \(hostPort(cip, 80))"
            Expect.answered(try dp.probe(from: .pod, Probe(proto.probeName, cip, 80, count: 8)), by: [a.endpoints[2]], peer: a.podClient,
                            "\(tag) from pod")
            Expect.answered(try dp.probe(from: .node, Probe(proto.probeName, cip, 80, count: 4)), by: [a.endpoints[2]],
                            peer: a.nodeTowardEndpoints, "\(tag) from node")
        }
        try dp.load(k.plan(k.ports("itp", clusterIP: 46, iTPLocal: true, cluster: k.eps(0, 1, 2, 3), local: [])))
        var set = ProbeSet()
        for proto in Protocols.tested {
            set.add(.pod, "\(proto.rawValue) pod", Probe(proto.probeName, cip, 80), parallel: 2)
            set.add(.node, "\(proto.rawValue) node", Probe(proto.probeName, cip, 80))
        }
        let r = try dp.expectNoLeak("[\(v)] iTP=Local without local endpoints") { try dp.run(set) }
        for proto in Protocols.tested {
            let tag = "[\(v)] \(proto.rawValue) iTP=Local without local endpoints → \(hostPort(cip, 80))"
            Expect.all(r["\(proto.rawValue) pod"]!, .timeout, "\(tag) from pod")
            Expect.dropped(r["\(proto.rawValue) node"]!, "\(tag) from node")
        }
    }

    /// iTP=Local as the planner produces it for a ClusterIP-only service: `usesClusterEndpoints`
    /// is false, so `clusterEndpoints` is empty while endpoints exist elsewhere
    /// (`hasAnyEndpoints`). Upstream drops (`no-endpoint-services … : drop`). This was
    /// Rulesets known issue 1 (rejected instead), fixed on main in c1f0020.
    @Test("internalTrafficPolicy Local without local endpoints, plan shaped as the planner makes it", arguments: Variant.all)
    func internalTrafficPolicyLocalPlannerShape(_ v: Variant) throws {
        let dp = try Datapath(v, "itp2")
        defer { dp.close() }
        let k = dp.kit
        let cip = k.clusterIP(46)
        let ports = Protocols.tested.map { proto -> ServicePortPlan in
            var p = k.port("itp", proto, clusterIP: 46, iTPLocal: true, cluster: [], local: [])
            p.hasAnyEndpoints = true
            return p
        }
        try dp.load(k.plan(ports))
        var set = ProbeSet()
        for proto in Protocols.tested {
            set.add(.pod, proto.rawValue, Probe(proto.probeName, cip, 80), parallel: 2)
        }
        let r = try dp.expectNoLeak("[\(v)] iTP=Local, endpoints elsewhere") { try dp.run(set) }
        for proto in Protocols.tested {
            Expect.all(r[proto.rawValue]!, .timeout,
                       "[\(v)] \(proto.rawValue) iTP=Local, endpoints only on other nodes → \(hostPort(cip, 80)) from pod: dropped")
        }
    }

    /// Which endpoints are "terminating" or topology-filtered is the planner's business; the
    /// datapath must use exactly the groups the plan gives: here the cluster group holds only
    /// (terminating fallback) endpoint 5 and the local group only endpoint 6.
    @Test("Endpoint groups of the plan are honoured (terminating fallback, topology)", arguments: Variant.all)
    func endpointGroupsHonoured(_ v: Variant) throws {
        let dp = try Datapath(v, "groups")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        try dp.load(k.plan(k.ports("grp", clusterIP: 47, nodePort: 30087, eTPLocal: true, cluster: k.eps(4), local: k.eps(5))))
        for proto in Protocols.tested {
            let pn = proto.probeName, tag = "[\(v)] \(proto.rawValue)"
            Expect.answered(try dp.probe(from: .pod, Probe(pn, k.clusterIP(47), 80, count: 5)), by: [a.endpoints[4]], peer: a.podClient,
                            "\(tag) pod → ClusterIP: the cluster group (terminating endpoints only)")
            Expect.answered(try dp.probe(from: .external, Probe(pn, a.nodeIP, 30087, count: 5)), by: [a.endpoints[5]],
                            peer: a.externalClient, "\(tag) external → eTP=Local NodePort: the local group")
            Expect.answered(try dp.probe(from: .pod, Probe(pn, a.nodeIP, 30087, count: 5)), by: [a.endpoints[4]], peer: a.podClient,
                            "\(tag) pod → eTP=Local NodePort: short-circuit to the cluster group")
        }
    }
}

extension PacketTests {
    /// An endpoint on the node itself (a hostNetwork pod: its address is the node IP). DNAT
    /// to a local address is delivered through the input path; mixed with a pod endpoint.
    @Test("Endpoint on the node itself (hostNetwork) next to a pod endpoint", arguments: Variant.all)
    func nodeLocalEndpoint(_ v: Variant) throws {
        let dp = try Datapath(v, "hostnet")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        try dp.topo.startNodeServer()
        let nodeEP = WeightedEndpoint(ip: k.ip(a.nodeIP), port: ServiceTopology.nodeServerPort)
        try dp.load(k.plan(k.ports("host", clusterIP: 60, nodePort: 30060, eTPLocal: true, cluster: [nodeEP], local: [nodeEP])
                           + k.ports("mixed", clusterIP: 61, cluster: [nodeEP, k.ep(0)])))
        var set = ProbeSet()
        for proto in Protocols.tested {
            let p = proto.rawValue, pn = proto.probeName
            set.add(.pod, "\(p) pod → ClusterIP", Probe(pn, k.clusterIP(60), 80, count: 3))
            set.add(.external, "\(p) external → eTP=Local NodePort", Probe(pn, a.nodeIP, 30060, count: 3))
            set.add(.pod, "\(p) pod → mixed", Probe(pn, k.clusterIP(61), 80, count: 24))
        }
        let r = try dp.run(set)
        for proto in Protocols.tested {
            let p = proto.rawValue, tag = "[\(v)] \(p)"
            Expect.answered(r["\(p) pod → ClusterIP"]!, by: [a.nodeIP], peer: a.podClient, "\(tag) pod → ClusterIP with the node as endpoint")
            Expect.answered(r["\(p) external → eTP=Local NodePort"]!, by: [a.nodeIP], peer: a.externalClient,
                            "\(tag) external → eTP=Local NodePort, local endpoint on the node: source kept")
            let mixed = r["\(p) pod → mixed"]!
            Expect.answered(mixed, by: [a.nodeIP, a.endpoints[0]], peer: a.podClient, "\(tag) pod → ClusterIP over node and pod endpoints")
            #expect(Expect.endpoints(mixed).count == 2, "\(tag): 24 connections over two equal endpoints reached only \(Expect.endpoints(mixed).sorted())")
        }
    }
}
