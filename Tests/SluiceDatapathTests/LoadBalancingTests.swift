import Foundation
import SluiceCompiler
import SluiceIR
import SluiceModel
import SluiceTestSupport
import Testing

extension PacketTests {
    /// `sluice.dev/load-balancing` with real connections on two nodes programmed independently
    /// (one through netlink, one through `nft -f`):
    /// - source-hash: every connection of a client lands on one endpoint, the one the packet
    ///   walk computes with the kernel's `jhash`, and the same on both nodes;
    /// - consistent-hash: each flow (client address and port) lands on the predicted endpoint,
    ///   the same on both nodes, through the ClusterIP and through the NodePort.
    @Test("Load balancing: source-hash and consistent-hash pick the predicted endpoint on two nodes", arguments: IPFamily.allCases)
    func hashSelection(_ family: IPFamily) throws {
        let nodes = try [Loader.netlink, .nftScript].map { try Datapath(Variant(family: family, loader: $0), "lb-\($0)") }
        defer { nodes.forEach { $0.close() } }
        let k = nodes[0].kit, a = nodes[0].a
        var sh = k.port("sh", .tcp, clusterIP: 51, cluster: [k.ep(0), k.ep(1), k.ep(2, weight: 2), k.ep(3)])
        sh.loadBalancing = .sourceHash
        var ch = k.port("ch", .tcp, clusterIP: 52, nodePort: 30052, cluster: k.eps(0, 1, 2, 3, 4))
        ch.loadBalancing = .consistentHash
        let plan = k.plan([sh, ch])
        for n in nodes { try n.load(plan) }
        let table = Compiler.compile(plan).table
        let node = NodeEnvironment(localAddresses: [k.ip(a.nodeIP).datum])

        /// The one endpoint the walk predicts for a flow.
        func predicted(_ src: String, _ sport: UInt16, _ dst: String, _ port: UInt16) throws -> String {
            let out = walk(Packet(saddr: k.ip(src).datum, daddr: k.ip(dst).datum, proto: 6, sport: sport, dport: port,
                                  origin: .network(interface: "eth0")), through: table, node: node)
            let target = try #require(out.count == 1 ? out[0].dnat : nil, "walk from \(src):\(sport) to \(dst):\(port): \(out)")
            return try #require(IPAddress(target.address.description)).description
        }
        func endpoint(_ answer: Answer) -> String? { answer.endpoint.flatMap(IPAddress.init)?.description }

        let clients = [a.podClient] + a.extraPodClients
        var reached: Set<String> = []
        for (i, dp) in nodes.enumerated() {
            let label = "[\(family.rawValue), node \(i) via \(dp.variant.loader)]"
            // Source-hash: three connections per client from ephemeral ports.
            let byClient = try dp.probe(from: .pod, clients.map { Probe("tcp", k.clusterIP(51), 80, src: $0, count: 3) })
            for (client, answers) in zip(clients, byClient) {
                let want = try predicted(client, 40000, k.clusterIP(51), 80)
                reached.insert(want)
                #expect(answers.count == 3 && answers.allSatisfy { endpoint($0) == want },
                        "\(label) source-hash: client \(client) expected every connection on \(want); got \(Expect.show(answers))")
            }
            // Consistent-hash: one connection per flow, from fixed source ports.
            var flows: [(src: String, sport: UInt16)] = clients.enumerated().map { ($1, UInt16(21_000 + 7 * $0)) }
            var probes = flows.map { f -> Probe in
                var p = Probe("tcp", k.clusterIP(52), 80, src: f.src)
                p.sport = Int(f.sport)
                return p
            }
            for j in 0..<8 {
                var p = Probe("tcp", a.nodeIP, 30052, src: a.externalClient)
                p.sport = 23_000 + 11 * j
                probes.append(p)
            }
            flows += (0..<8).map { (a.externalClient, UInt16(23_000 + 11 * $0)) }
            let pod = try dp.probe(from: .pod, Array(probes.prefix(clients.count)))
            let external = try dp.probe(from: .external, Array(probes.dropFirst(clients.count)))
            for (f, answers) in zip(flows, pod + external) {
                let (dst, port): (String, UInt16) = f.src == a.externalClient ? (a.nodeIP, 30052) : (k.clusterIP(52), 80)
                let want = try predicted(f.src, f.sport, dst, port)
                #expect(answers.count == 1 && endpoint(answers[0]) == want,
                        "\(label) consistent-hash: flow \(f.src):\(f.sport) → \(dst):\(port) expected \(want); got \(Expect.show(answers))")
            }
        }
        // Thirteen clients over four endpoints: a hash that ignored the client would reach one.
        #expect(reached.count >= 3, "source-hash spread \(clients.count) clients over only \(reached)")
    }
}
