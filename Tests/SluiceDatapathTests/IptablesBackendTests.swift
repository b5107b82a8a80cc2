import SluiceEmit
import SluiceIR
import SluiceModel
import SluiceTestSupport
import Testing

extension PacketTests {
    /// The iptables backend (kube-proxy iptables-mode chains through `iptables-restore`) passes
    /// the same packet cases for IPv4 ClusterIP, NodePort and LoadBalancer, for a full load and
    /// for a `--noflush` partial update.
    @Test("iptables backend: ClusterIP, NodePort and LoadBalancer (IPv4), full and --noflush partial")
    func iptablesBackend() throws {
        let dp = try Datapath(Variant(family: .ipv4, loader: .netlink), "ipt")
        defer { dp.close() }
        try requireKernelTestEnvironment(tools: ["ip", "iptables-restore", "python3"])
        let k = dp.kit, a = dp.a
        let vip = a.loadBalancerIP, cip = k.clusterIP(51)
        let backends = [a.endpoints[0], a.endpoints[1]]
        let plan = k.plan(k.ports("web", clusterIP: 51, nodePort: 30091, lbIPs: [vip], ranges: [a.externalRange], cluster: k.eps(0, 1)))
        try dp.topo.node.runChecked(["iptables-restore"], input: renderIptablesRestore(plan))

        for proto in Protocols.tested {
            let pn = proto.probeName, tag = "[iptables] \(proto.rawValue)"
            Expect.answered(try dp.topo.probe(from: .pod, Probe(pn, cip, 80, count: 8)), by: backends, peer: a.podClient,
                            "\(tag) pod → ClusterIP (source kept)")
            Expect.answered(try dp.topo.probe(from: .external, Probe(pn, a.nodeIP, 30091, src: a.externalClient, count: 4)),
                            by: backends, peer: a.nodeTowardEndpoints, "\(tag) external → NodePort (masqueraded)")
            Expect.answered(try dp.topo.probe(from: .external, Probe(pn, vip, 80, src: a.externalClient, count: 4)),
                            by: backends, peer: a.nodeTowardEndpoints, "\(tag) allowed source → LB VIP")
            Expect.all(try dp.topo.probe(from: .external, Probe(pn, vip, 80, src: a.externalOutsider)), .timeout,
                       "\(tag) source outside loadBalancerSourceRanges → LB VIP (dropped)")
        }

        // kube-proxy's partial sync: only the changed service's chains, with --noflush.
        let scaled = k.plan(k.ports("web", clusterIP: 51, nodePort: 30091, lbIPs: [vip], ranges: [a.externalRange], cluster: k.eps(2)))
        try dp.topo.node.runChecked(["iptables-restore", "--noflush"], input: renderIptablesRestoreUpdate(from: plan, to: scaled))
        for proto in Protocols.tested {
            Expect.answered(try dp.topo.probe(from: .pod, Probe(proto.probeName, cip, 80, count: 4)), by: [a.endpoints[2]], peer: a.podClient,
                            "[iptables --noflush] \(proto.rawValue) pod → ClusterIP after the endpoint change")
        }
    }
}
