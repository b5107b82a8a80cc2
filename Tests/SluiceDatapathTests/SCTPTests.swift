import SluiceModel
import SluiceTestSupport
import Testing

/// Evaluated once: SCTP needs the kernel's `sctp` module, which this development machine does
/// not have. Only these SCTP cases are skipped then; TCP and UDP run everywhere.
let kernelHasSCTP = ServiceTopology.kernelSupportsSCTP()

extension PacketTests {
    /// SCTP through the same layout: ClusterIP from a pod (source kept) and from outside
    /// (masqueraded), NodePort, and reject without endpoints.
    @Test("SCTP: ClusterIP, NodePort, reject", .enabled(if: kernelHasSCTP, "the kernel has no SCTP support (sctp module missing)"),
          arguments: Variant.all)
    func sctp(_ v: Variant) throws {
        let dp = try Datapath(v, "sctp")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        #expect(dp.topo.sctpSupported, "the endpoint servers did not start SCTP listeners")
        let backends = [a.endpoints[0], a.endpoints[1]]
        try dp.load(k.plan([
            k.port("s", .sctp, clusterIP: 41, nodePort: 30070, cluster: k.eps(0, 1)),
            k.port("empty", .sctp, clusterIP: 42),
        ]))
        var set = ProbeSet()
        set.add(.pod, "pod → ClusterIP", Probe("sctp", k.clusterIP(41), 80, count: 4))
        set.add(.external, "external → ClusterIP", Probe("sctp", k.clusterIP(41), 80, count: 2))
        set.add(.external, "external → NodePort", Probe("sctp", a.nodeIP, 30070, count: 2))
        set.add(.pod, "pod → ClusterIP without endpoints", Probe("sctp", k.clusterIP(42), 80, count: 2))
        let r = try dp.run(set)
        Expect.answered(r["pod → ClusterIP"]!, by: backends, peer: a.podClient, "[\(v)] SCTP pod → ClusterIP")
        Expect.answered(r["external → ClusterIP"]!, by: backends, peer: a.nodeTowardEndpoints, "[\(v)] SCTP external → ClusterIP")
        Expect.answered(r["external → NodePort"]!, by: backends, peer: a.nodeTowardEndpoints, "[\(v)] SCTP external → NodePort")
        Expect.all(r["pod → ClusterIP without endpoints"]!, .refused, "[\(v)] SCTP pod → ClusterIP without endpoints: reject")
    }
}
