import SluiceModel
import SluiceTestSupport
import Testing

extension PacketTests {
    /// NodePorts answer on `nodePortAddresses` only: the listed node IP with `.ips`, every
    /// local address except loopback with `.all`. eTP=Cluster masquerades every source.
    @Test("NodePort: on nodePortAddresses (.ips and .all), not on other addresses", arguments: Variant.all)
    func nodePortAddresses(_ v: Variant) throws {
        let dp = try Datapath(v, "np")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        let backends = [a.endpoints[0], a.endpoints[1]]
        let ports = k.ports("np", clusterIP: 42, nodePort: 30080, cluster: k.eps(0, 1))
        let loopback = v.family == .ipv4 ? "127.0.0.1" : "::1"

        try dp.load(k.plan(ports))
        var ips = ProbeSet()
        for proto in Protocols.tested {
            let pn = proto.probeName, p = proto.rawValue
            ips.add(.external, "\(p) external → node IP \(hostPort(a.nodeIP, 30080))", Probe(pn, a.nodeIP, 30080, count: 4))
            ips.add(.pod, "\(p) pod → node IP (eTP=Cluster: masqueraded)", Probe(pn, a.nodeIP, 30080, count: 3))
            ips.add(.node, "\(p) node → its own node IP", Probe(pn, a.nodeIP, 30080, count: 3))
            ips.add(.external, "\(p) external → other node address \(hostPort(a.otherNodeIP, 30080)) (nothing listens there)", Probe(pn, a.otherNodeIP, 30080, count: 2))
            ips.add(.external, "\(p) external → node's address on its link \(hostPort(a.nodeTowardExternal, 30080))", Probe(pn, a.nodeTowardExternal, 30080, count: 2))
            ips.add(.node, "\(p) node → \(hostPort(loopback, 30080)): localhost NodePorts are never DNATed", Probe(pn, loopback, 30080))
        }
        let r1 = try dp.run(ips)
        for (i, item) in ips.items.enumerated() {
            let what = "[\(v)] .ips \(item.label)"
            if i % 6 < 3 {
                Expect.answered(r1[item.label]!, by: backends, peer: a.nodeTowardEndpoints, what)
            } else {
                Expect.all(r1[item.label]!, .refused, what)
            }
        }

        try dp.load(k.plan(ports, context: k.context(nodePorts: .all)))
        var all = ProbeSet()
        for proto in Protocols.tested {
            let pn = proto.probeName, p = proto.rawValue
            for target in [a.nodeIP, a.otherNodeIP, a.nodeTowardExternal] {
                all.add(.external, "\(p) external → \(hostPort(target, 30080))", Probe(pn, target, 30080, count: 3))
            }
            all.add(.node, "\(p) node → loopback NodePort", Probe(pn, loopback, 30080))
            // An address that is not the node's is not a NodePort address: not DNATed, routed on.
            all.add(.external, "\(p) external → non-local \(hostPort(a.loadBalancerIP2, 30080)) (routed to the dead end)",
                    Probe(pn, a.loadBalancerIP2, 30080))
        }
        let before = try dp.topo.leakedPackets()
        let r2 = try dp.run(all)
        #expect(try dp.topo.leakedPackets() - before >= UInt64(Protocols.tested.count),
                "[\(v)] .all: the probes to a non-local address should have been routed on (not DNATed)")
        for (i, item) in all.items.enumerated() {
            let what = "[\(v)] .all \(item.label)"
            switch i % 5 {
            case 0, 1, 2: Expect.answered(r2[item.label]!, by: backends, peer: a.nodeTowardEndpoints, what)
            case 3: Expect.all(r2[item.label]!, .refused, what)
            default: Expect.dropped(r2[item.label]!, what)
            }
        }
    }

    /// externalIPs (eTP=Cluster): reachable from outside, pods and the node; always masqueraded.
    @Test("externalIPs: reachable from everywhere, masqueraded", arguments: Variant.all)
    func externalIPs(_ v: Variant) throws {
        let dp = try Datapath(v, "extip")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        let backends = [a.endpoints[0], a.endpoints[1]]
        try dp.load(k.plan(k.ports("ext", clusterIP: 43, externalIPs: [a.externalIP], cluster: k.eps(0, 1))))
        for proto in Protocols.tested {
            let p = Probe(proto.probeName, a.externalIP, 80, count: 4)
            let tag = "[\(v)] \(proto.rawValue) → externalIP \(hostPort(a.externalIP, 80))"
            Expect.answered(try dp.probe(from: .external, p), by: backends, peer: a.nodeTowardEndpoints, "\(tag) from external")
            Expect.answered(try dp.probe(from: .pod, p), by: backends, peer: a.nodeTowardEndpoints, "\(tag) from pod")
            Expect.answered(try dp.probe(from: .node, p), by: backends, peer: a.nodeTowardEndpoints, "\(tag) from node")
        }
    }

    /// loadBalancerSourceRanges: allowed sources reach the VIP, others (external or pods) are
    /// dropped before DNAT; NodePort and ClusterIP are not filtered; with the node inside a
    /// range, the VIP itself is an allowed source (a node reaching a VIP bound locally).
    @Test("LoadBalancer: loadBalancerSourceRanges", arguments: Variant.all)
    func loadBalancerSourceRanges(_ v: Variant) throws {
        let dp = try Datapath(v, "lbsr")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        let backends = [a.endpoints[0], a.endpoints[1]]
        let vip = a.loadBalancerIP, cip = k.clusterIP(44)
        try dp.load(k.plan(k.ports("lb", clusterIP: 44, nodePort: 30081, lbIPs: [vip], ranges: [a.externalRange], cluster: k.eps(0, 1))))
        var set = ProbeSet()
        for proto in Protocols.tested {
            let pn = proto.probeName, p = proto.rawValue
            set.add(.external, "\(p) \(a.externalClient) (in \(a.externalRange)) → VIP", Probe(pn, vip, 80, src: a.externalClient, count: 4))
            set.add(.external, "\(p) \(a.externalOutsider) (outside \(a.externalRange)) → VIP", Probe(pn, vip, 80, src: a.externalOutsider), parallel: 2)
            set.add(.external, "\(p) outsider → NodePort (ranges do not apply)", Probe(pn, a.nodeIP, 30081, src: a.externalOutsider, count: 2))
            set.add(.external, "\(p) outsider → ClusterIP (ranges do not apply)", Probe(pn, cip, 80, src: a.externalOutsider, count: 2))
            set.add(.pod, "\(p) pod outside the ranges → VIP", Probe(pn, vip, 80), parallel: 2)
        }
        let r = try dp.expectNoLeak("filtered VIP") { try dp.run(set) }
        for proto in Protocols.tested {
            let p = proto.rawValue, tag = "[\(v)] \(p)"
            let allowed = "\(p) \(a.externalClient) (in \(a.externalRange)) → VIP"
            Expect.answered(r[allowed]!, by: backends, peer: a.nodeTowardEndpoints, "[\(v)] \(allowed)")
            let outsider = "\(p) \(a.externalOutsider) (outside \(a.externalRange)) → VIP"
            Expect.all(r[outsider]!, .timeout, "[\(v)] \(outsider)")
            for label in ["\(p) outsider → NodePort (ranges do not apply)", "\(p) outsider → ClusterIP (ranges do not apply)"] {
                Expect.answered(r[label]!, by: backends, peer: a.nodeTowardEndpoints, "[\(v)] \(label)")
            }
            Expect.all(r["\(p) pod outside the ranges → VIP"]!, .timeout, "\(tag) pod outside the ranges → VIP")
        }

        // A VIP bound on the node: the node's connections to it leave with the VIP as source.
        let localVIP = a.loadBalancerIP2
        try dp.topo.addNodeAddress(localVIP)
        let nodeRange = v.family == .ipv4 ? "192.168.0.0/24" : "2001:db8::/64"
        for (ranges, allowed) in [([a.externalRange, nodeRange], true), ([a.externalRange], false)] {
            try dp.load(k.plan(k.ports("lb", clusterIP: 44, nodePort: 30081, lbIPs: [localVIP], ranges: ranges, cluster: k.eps(0, 1))))
            var set = ProbeSet()
            for proto in Protocols.tested {
                set.add(.node, proto.rawValue, Probe(proto.probeName, localVIP, 80), parallel: 3)
            }
            let r = try dp.run(set)
            for proto in Protocols.tested {
                let what = "[\(v)] \(proto.rawValue) node → its own VIP \(hostPort(localVIP, 80)) with ranges \(ranges)"
                if allowed {
                    Expect.answered(r[proto.rawValue]!, by: backends, peer: a.nodeTowardEndpoints, "\(what) (node IP in a range: VIP allowed)")
                } else {
                    Expect.dropped(r[proto.rawValue]!, "\(what) (node IP in no range)")
                }
            }
        }

        // Upstream allows every LB VIP of the service as a source on every VIP (the firewall
        // chain is per service port: `ip saddr != { ranges, VIP1, VIP2 } drop`). (Rulesets
        // known issue 2, fixed on main in c1f0020.)
        try dp.load(k.plan(k.ports("lb", clusterIP: 44, lbIPs: [vip, localVIP], ranges: [a.externalRange, nodeRange], cluster: k.eps(0, 1))))
        var other = ProbeSet()
        for proto in Protocols.tested {
            other.add(.node, "\(proto.rawValue) other", Probe(proto.probeName, vip, 80, src: localVIP), parallel: 2)
            other.add(.node, "\(proto.rawValue) own", Probe(proto.probeName, localVIP, 80, count: 2))
        }
        let o = try dp.run(other)
        for proto in Protocols.tested {
            let what = "[\(v)] \(proto.rawValue) node → VIP \(hostPort(vip, 80)) from the service's other VIP \(localVIP) (node IP in a range)"
            Expect.answered(o["\(proto.rawValue) own"]!, by: backends, peer: a.nodeTowardEndpoints, "[\(v)] \(proto.rawValue) node → its own VIP (control)")
            Expect.answered(o["\(proto.rawValue) other"]!, by: backends, peer: a.nodeTowardEndpoints, what)
        }
    }
}
