import SluiceModel
import SluiceTestSupport
import Testing

extension PacketTests {
    /// No endpoints at all → reject (connection refused / ICMP port unreachable, at once) on
    /// the ClusterIP, NodePort, externalIP and LB IP; Local policy without local endpoints →
    /// drop (timeout); unknown port of a ClusterIP → reject; unallocated IP in a ServiceCIDR
    /// → drop (and it never leaves the node).
    @Test("No endpoints reject, Local policy drops, unknown ClusterIP port rejects, unallocated IP drops", arguments: Variant.all)
    func rejectVersusDrop(_ v: Variant) throws {
        let dp = try Datapath(v, "rej")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        try dp.load(k.plan(
            k.ports("empty", clusterIP: 50, nodePort: 30090, externalIPs: [a.externalIP], lbIPs: [a.loadBalancerIP])
                + k.ports("etp", clusterIP: 51, nodePort: 30091, lbIPs: [a.loadBalancerIP2], eTPLocal: true, cluster: k.eps(0))
                + k.ports("itp", clusterIP: 52, iTPLocal: true, cluster: k.eps(0))
                + k.ports("web", clusterIP: 53, cluster: k.eps(1))))
        var set = ProbeSet()
        var rejects: [String] = [], drops: [String] = []
        let ok = "pod → ClusterIP with an endpoint (control)"
        for proto in Protocols.tested {
            let pn = proto.probeName, p = proto.rawValue
            func reject(_ host: ServiceTopology.Host, _ label: String, _ probe: Probe) {
                set.add(host, "\(p) \(label)", probe)
                rejects.append("\(p) \(label)")
            }
            func drop(_ host: ServiceTopology.Host, _ label: String, _ probe: Probe) {
                set.add(host, "\(p) \(label)", probe, parallel: 2)
                drops.append("\(p) \(label)")
            }
            reject(.pod, "pod → ClusterIP without endpoints", Probe(pn, k.clusterIP(50), 80, count: 3))
            reject(.pod, "pod → unknown port 81 of a ClusterIP", Probe(pn, k.clusterIP(53), 81, count: 3))
            reject(.external, "external → NodePort without endpoints", Probe(pn, a.nodeIP, 30090, count: 3))
            reject(.external, "external → externalIP without endpoints", Probe(pn, a.externalIP, 80, count: 3))
            reject(.external, "external → LB IP without endpoints", Probe(pn, a.loadBalancerIP, 80, count: 3))
            reject(.node, "node → ClusterIP without endpoints", Probe(pn, k.clusterIP(50), 80, count: 2))
            reject(.node, "node → unknown port 81 of a ClusterIP", Probe(pn, k.clusterIP(53), 81, count: 2))
            drop(.pod, "pod → iTP=Local ClusterIP without local endpoints", Probe(pn, k.clusterIP(52), 80))
            drop(.pod, "pod → unallocated IP in the ServiceCIDR", Probe(pn, k.clusterIP(99), 80))
            drop(.external, "external → eTP=Local NodePort without local endpoints", Probe(pn, a.nodeIP, 30091))
            drop(.external, "external → eTP=Local LB IP without local endpoints", Probe(pn, a.loadBalancerIP2, 80))
            drop(.external, "external → unallocated IP in the ServiceCIDR", Probe(pn, k.clusterIP(99), 80))
            drop(.node, "node → unallocated IP in the ServiceCIDR", Probe(pn, k.clusterIP(99), 80))
            set.add(.pod, "\(p) \(ok)", Probe(pn, k.clusterIP(53), 80, count: 2))
        }
        // Every probe at once: the drops cost one timeout in total, and none may leak.
        let r = try dp.expectNoLeak("drops and rejects") { try dp.run(set) }
        for label in rejects { Expect.all(r[label]!, .refused, "[\(v)] \(label): reject") }
        for label in drops { Expect.dropped(r[label]!, "[\(v)] \(label): drop") }
        for proto in Protocols.tested {
            Expect.answered(r["\(proto.rawValue) \(ok)"]!, by: [a.endpoints[1]], peer: a.podClient, "[\(v)] \(proto.rawValue) \(ok)")
        }
    }
}
