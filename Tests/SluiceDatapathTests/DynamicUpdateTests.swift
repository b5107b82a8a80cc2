import SluiceIR
import SluiceModel
import SluiceTestSupport
import Testing

extension PacketTests {
    /// Incremental updates (the diff transaction): new connections follow an endpoint change
    /// at once; established connections survive unrelated updates, the removal of their
    /// endpoint and even of their whole service (conntrack keeps them, as with kube-proxy).
    @Test("Dynamic updates: new connections follow at once, established ones survive", arguments: Variant.all)
    func dynamicUpdates(_ v: Variant) throws {
        let dp = try Datapath(v, "dyn")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        let cipA = k.clusterIP(41), cipB = k.clusterIP(42), cipC = k.clusterIP(43)
        let svcB = k.ports("b", clusterIP: 42, cluster: k.eps(3))
        try dp.load(k.plan(k.ports("a", clusterIP: 41, cluster: k.eps(0)) + svcB))

        let s1 = try dp.topo.openSession(from: .pod, to: cipA, port: 80)
        defer { s1.close() }
        let s2 = try dp.topo.openSession(from: .pod, to: cipB, port: 80)
        defer { s2.close() }
        let tag = "[\(v)]"
        Expect.answered([s1.first], by: [a.endpoints[0]], peer: a.podClient, "\(tag) long-lived connection 1 → \(hostPort(cipA, 80))")
        Expect.answered([s2.first], by: [a.endpoints[3]], peer: a.podClient, "\(tag) long-lived connection 2 → \(hostPort(cipB, 80))")

        // 1. Service a moves from endpoint 1 to endpoint 2: an element-only transaction.
        let t1 = try dp.update(k.plan(k.ports("a", clusterIP: 41, cluster: k.eps(1)) + svcB))
        #expect(t1.isElementsOnly, "\(tag) swapping one endpoint for another should touch elements only; got:\n\(t1.operations)")
        for proto in Protocols.tested {
            Expect.answered(try dp.probe(from: .pod, Probe(proto.probeName, cipA, 80, count: 5)), by: [a.endpoints[1]], peer: a.podClient,
                            "\(tag) \(proto.rawValue) new connections right after endpoint 1 → 2")
        }
        Expect.answered([s1.ping()], by: [a.endpoints[0]], peer: a.podClient, "\(tag) established connection to the removed endpoint 1")
        Expect.answered([s2.ping()], by: [a.endpoints[3]], peer: a.podClient, "\(tag) established connection to an unrelated service")

        // 2. Service a scales to two endpoints, service c appears.
        try dp.update(k.plan(k.ports("a", clusterIP: 41, cluster: k.eps(1, 2)) + svcB + k.ports("c", clusterIP: 43, cluster: k.eps(4))))
        for proto in Protocols.tested {
            let r = try dp.probe(from: .pod, [Probe(proto.probeName, cipA, 80, count: 20), Probe(proto.probeName, cipC, 80, count: 3)])
            Expect.answered(r[0], by: [a.endpoints[1], a.endpoints[2]], peer: a.podClient, "\(tag) \(proto.rawValue) after scaling to 2 endpoints")
            #expect(Expect.endpoints(r[0]).count == 2, "\(tag) \(proto.rawValue): 20 connections reached only \(Expect.endpoints(r[0]).sorted())")
            Expect.answered(r[1], by: [a.endpoints[4]], peer: a.podClient, "\(tag) \(proto.rawValue) new service c")
        }
        Expect.answered([s1.ping()], by: [a.endpoints[0]], peer: a.podClient, "\(tag) established connection after a second update")
        Expect.answered([s2.ping()], by: [a.endpoints[3]], peer: a.podClient, "\(tag) unrelated established connection after a second update")

        // 3. Service a is deleted: its ClusterIP is now unallocated (dropped), yet the
        //    established connection lives on until it closes.
        try dp.update(k.plan(svcB + k.ports("c", clusterIP: 43, cluster: k.eps(4))))
        let gone = try dp.probe(from: .pod, Protocols.tested.map { Probe($0.probeName, cipA, 80) })
        for (proto, r) in zip(Protocols.tested, gone) {
            Expect.all(r, .timeout, "\(tag) \(proto.rawValue) deleted service's ClusterIP")
        }
        Expect.answered([s1.ping()], by: [a.endpoints[0]], peer: a.podClient, "\(tag) established connection after its service was deleted")
        Expect.answered([s2.ping()], by: [a.endpoints[3]], peer: a.podClient, "\(tag) unrelated established connection after a service was deleted")
    }
}
