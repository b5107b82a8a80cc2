import SluiceModel
import SluiceTestSupport
import Testing

extension PacketTests {
    /// ClientIP affinity: each client sticks to one endpoint (ClusterIP and NodePort),
    /// different clients spread; when its endpoint leaves the plan the client moves on and
    /// sticks to its new endpoint.
    @Test("Session affinity: stick, spread, move on when the endpoint goes", arguments: Variant.all)
    func sessionAffinity(_ v: Variant) throws {
        let dp = try Datapath(v, "aff")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        let cip = k.clusterIP(48)
        let backends = Array(a.endpoints[0...2])
        let initial = k.plan(k.ports("aff", clusterIP: 48, nodePort: 30088, affinity: 10800, cluster: k.eps(0, 1, 2)))
        if v.family == .ipv6 && v.loader == .nftScript {
            // IPv6 `affinity-record`: `update @affinity { ip6 saddr . ct original ip6 daddr .
            // meta l4proto . ct original proto-dst : ip6 daddr . th dport }` needs 40 bytes of
            // key and 20 of data, 60 of the 64 register bytes. nft 1.0.6 aborts on it
            // (netlink_linearize.c:799 `dreg < ctx->reg_low`); the netlink applier loads it
            // (data right after the key when rounding up would not fit).
            var loaded = true
            withKnownIssue("IPv6 ClientIP affinity cannot be loaded by nft 1.0.6 (it aborts)") {
                do { try dp.load(initial) } catch { loaded = false; throw error }
            }
            if !loaded { return }
        } else {
            try dp.load(initial)
        }
        let mover = a.extraPodClients[0]
        for proto in Protocols.tested {
            let pn = proto.probeName, tag = "[\(v)] \(proto.rawValue) affinity"
            let clients = a.extraPodClients
            let r = try dp.probe(from: .pod, clients.map { Probe(pn, cip, 80, src: $0, count: 4) })
            var chosen: Set<String> = []
            for (c, answers) in zip(clients, r) {
                Expect.answered(answers, by: backends, peer: c, "\(tag) pod \(c) → \(hostPort(cip, 80))")
                #expect(Expect.endpoints(answers).count == 1, "\(tag): pod \(c) did not stick to one endpoint: \(Expect.show(answers))")
                chosen.formUnion(Expect.endpoints(answers))
            }
            #expect(chosen.count >= 2, "\(tag): \(clients.count) clients all landed on \(chosen.sorted()) (P = 3^-11 by chance)")

            let np = try dp.probe(from: .external, [Probe(pn, a.nodeIP, 30088, src: a.externalClient, count: 4),
                                                    Probe(pn, a.nodeIP, 30088, src: a.externalOutsider, count: 4)])
            for answers in np {
                Expect.answered(answers, by: backends, peer: a.nodeTowardEndpoints, "\(tag) external → NodePort \(hostPort(a.nodeIP, 30088))")
                #expect(Expect.endpoints(answers).count == 1, "\(tag): external client did not stick to one endpoint via the NodePort: \(Expect.show(answers))")
            }
        }

        // The endpoint `mover` sticks to (per protocol) leaves the plan.
        for proto in Protocols.tested {
            // (Re)establish the mover's affinity on the freshly loaded table.
            let before = try dp.probe(from: .pod, Probe(proto.probeName, cip, 80, src: mover, count: 3))
            #expect(Expect.endpoints(before).count == 1, "[\(v)] \(proto.rawValue): \(mover) did not stick: \(Expect.show(before))")
            guard let gone = before.first?.endpoint, let goneIndex = a.endpoints.firstIndex(of: gone) else {
                Issue.record("[\(v)] \(proto.rawValue): \(mover) got no answer: \(Expect.show(before))")
                continue
            }
            let tag = "[\(v)] \(proto.rawValue) affinity after \(gone) left the plan"
            let rest = [0, 1, 2].filter { $0 != goneIndex }

            // a) Applied incrementally, as the proxy does. A replacement (endpoint 4 comes, the
            //    stuck one goes) keeps the slot class, so the diff is elements only. Upstream
            //    deletes the gone endpoint's affinity set; here the client's element in the
            //    dynamic `affinity` map still names the gone endpoint, so new connections keep
            //    going to it (in a cluster: to a deleted pod, for up to the affinity timeout).
            let replaced = k.plan(k.ports("aff", clusterIP: 48, nodePort: 30088, affinity: 10800, cluster: (rest + [3]).map { k.ep($0) }))
            let t = try dp.update(replaced)
            #expect(t.isElementsOnly, "\(tag): a one-for-one endpoint replacement should be elements only")
            let afterUpdate = try dp.probe(from: .pod, Probe(proto.probeName, cip, 80, src: mover, count: 4))
            Expect.answered(afterUpdate, by: (rest + [3]).map { a.endpoints[$0] }, peer: mover, "\(tag) (incremental update)")

            // b) A full reload (fresh table, empty affinity maps): the client moves on and sticks.
            let removed = k.plan(k.ports("aff", clusterIP: 48, nodePort: 30088, affinity: 10800, cluster: rest.map { k.ep($0) }))
            try dp.load(removed)
            let reloaded = try dp.probe(from: .pod, Probe(proto.probeName, cip, 80, src: mover, count: 4))
            Expect.answered(reloaded, by: rest.map { a.endpoints[$0] }, peer: mover, "\(tag) (full reload)")
            #expect(Expect.endpoints(reloaded).count == 1, "\(tag): did not stick to its new endpoint: \(Expect.show(reloaded))")
            try dp.load(initial)
        }
    }

    /// Hairpin: an endpoint reaching its own service and landing on itself is masqueraded
    /// (it sees the node's address); a pod client of the same service is not.
    @Test("Hairpin: an endpoint reaching itself through its service sees the node", arguments: Variant.all)
    func hairpin(_ v: Variant) throws {
        let dp = try Datapath(v, "hairpin")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        let cip = k.clusterIP(49)
        try dp.load(k.plan(k.ports("hp", clusterIP: 49, nodePort: 30089, cluster: k.eps(0))))
        for proto in Protocols.tested {
            let pn = proto.probeName, tag = "[\(v)] \(proto.rawValue)"
            let me = a.endpoints[0]
            Expect.answered(try dp.probe(from: .endpoints, Probe(pn, cip, 80, src: me, count: 3)), by: [me], peer: a.nodeTowardEndpoints,
                            "\(tag) endpoint \(me) → its own ClusterIP \(hostPort(cip, 80)) (hairpin: masqueraded)")
            Expect.answered(try dp.probe(from: .pod, Probe(pn, cip, 80, count: 3)), by: [me], peer: a.podClient,
                            "\(tag) pod → \(hostPort(cip, 80)) (no hairpin: source kept)")
        }
    }
}
