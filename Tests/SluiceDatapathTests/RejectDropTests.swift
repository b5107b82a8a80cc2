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
        for proto in Protocols.tested {
            let pn = proto.probeName, tag = "[\(v)] \(proto.rawValue)"
            var pod = Batch(), ext = Batch(), node = Batch()
            let rejects = [
                pod.add("pod → ClusterIP without endpoints", Probe(pn, k.clusterIP(50), 80, count: 3)),
                pod.add("pod → unknown port 81 of a ClusterIP", Probe(pn, k.clusterIP(53), 81, count: 3)),
            ]
            let extRejects = [
                ext.add("external → NodePort without endpoints", Probe(pn, a.nodeIP, 30090, count: 3)),
                ext.add("external → externalIP without endpoints", Probe(pn, a.externalIP, 80, count: 3)),
                ext.add("external → LB IP without endpoints", Probe(pn, a.loadBalancerIP, 80, count: 3)),
            ]
            let nodeRejects = [
                node.add("node → ClusterIP without endpoints", Probe(pn, k.clusterIP(50), 80, count: 2)),
                node.add("node → unknown port 81 of a ClusterIP", Probe(pn, k.clusterIP(53), 81, count: 2)),
            ]
            let drops = [
                pod.add("pod → iTP=Local ClusterIP without local endpoints", Probe(pn, k.clusterIP(52), 80, count: 2)),
                pod.add("pod → unallocated IP in the ServiceCIDR", Probe(pn, k.clusterIP(99), 80, count: 2)),
            ]
            let extDrops = [
                ext.add("external → eTP=Local NodePort without local endpoints", Probe(pn, a.nodeIP, 30091, count: 2)),
                ext.add("external → eTP=Local LB IP without local endpoints", Probe(pn, a.loadBalancerIP2, 80, count: 2)),
                ext.add("external → unallocated IP in the ServiceCIDR", Probe(pn, k.clusterIP(99), 80, count: 2)),
            ]
            let nodeDrops = [node.add("node → unallocated IP in the ServiceCIDR", Probe(pn, k.clusterIP(99), 80))]
            let ok = pod.add("pod → ClusterIP with an endpoint (control)", Probe(pn, k.clusterIP(53), 80, count: 2))

            // All three batches at once: the drops cost one timeout in total.
            let batches = [(ServiceTopology.Host.pod, pod), (.external, ext), (.node, node)]
            let results = try dp.expectNoLeak("\(tag) drops and rejects") {
                try parallel(batches.count) { i in try dp.probe(from: batches[i].0, batches[i].1.probes) }
            }
            for i in rejects { Expect.all(results[0][i], .refused, "\(tag) \(pod.labels[i]): reject") }
            for i in extRejects { Expect.all(results[1][i], .refused, "\(tag) \(ext.labels[i]): reject") }
            for i in nodeRejects { Expect.all(results[2][i], .refused, "\(tag) \(node.labels[i]): reject") }
            for i in drops { Expect.all(results[0][i], .timeout, "\(tag) \(pod.labels[i]): drop") }
            for i in extDrops { Expect.all(results[1][i], .timeout, "\(tag) \(ext.labels[i]): drop") }
            for i in nodeDrops { Expect.dropped(results[2][i], "\(tag) \(node.labels[i]): drop") }
            Expect.answered(results[0][ok], by: [a.endpoints[1]], peer: a.podClient, "\(tag) \(pod.labels[ok])")
        }
    }
}
