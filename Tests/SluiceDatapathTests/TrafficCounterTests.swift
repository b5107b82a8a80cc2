import Foundation
import SluiceCompiler
import SluiceIR
import SluiceModel
import SluiceNetlink
import SluiceTestSupport
import Testing

extension PacketTests {
    /// With `--traffic-counters` the kernel counts every packet of a proxied connection, both
    /// directions, under the service address the client used (`service-traffic`), and
    /// `TrafficCounts` names them by service port. UDP attempts are one datagram each way, so
    /// their packet count is exact; TCP's are at least SYN, SYN-ACK, ACK and the endpoint's line.
    @Test("Traffic counters: packets and bytes of both directions counted per service address", arguments: Variant.all)
    func trafficCounters(_ v: Variant) throws {
        let dp = try Datapath(v, "traffic")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        var context = k.context()
        context.trafficCounters = true
        let plan = k.plan(k.ports("traf", clusterIP: 63, cluster: k.eps(0, 1)), context: context)
        try dp.load(plan)
        let n = 4
        var probes = ProbeSet()
        probes.add(.pod, "tcp", Probe("tcp", k.clusterIP(63), 80, count: n))
        probes.add(.pod, "udp", Probe("udp", k.clusterIP(63), 80, count: n))
        let answers = try dp.run(probes)
        for p in ["tcp", "udp"] {
            Expect.answered(answers[p]!, by: [a.endpoints[0], a.endpoints[1]], peer: nil, "[\(v)] \(p)")
        }

        let socket = try NetlinkSocket(namespace: dp.topo.node.name)
        let layout = Layout(v.family)
        var counts = TrafficCounts()
        try counts.read(v.family, services: ServicePortNames(plans: plan.servicePorts)) { try socket.readCounters($0, $1, set: $2) }
        let ip = k.ip(k.clusterIP(63))
        let udp = try #require(counts.tuples[.init(address: ip, proto: .udp, port: 80)], "[\(v)] no UDP counter: \(counts.tuples)")
        let tcp = try #require(counts.tuples[.init(address: ip, proto: .tcp, port: 80)], "[\(v)] no TCP counter: \(counts.tuples)")
        #expect(counts.tuples.count == 2, "[\(v)] only the used tuples: \(counts.tuples)")

        let header: UInt64 = v.family == .ipv4 ? 28 : 48 // IP + UDP headers
        let replies = answers["udp"]!.compactMap { answer -> UInt64? in
            guard case .answered(let e, let ep, let peer, let pp) = answer else { return nil }
            return UInt64("\(e) \(ep) \(peer) \(pp)\n".utf8.count)
        }
        #expect(udp.packets == UInt64(2 * n), "[\(v)] one request and one reply per UDP attempt: \(udp)")
        #expect(udp.bytes == UInt64(2 * n) * header + UInt64(n) * 6 + replies.reduce(0, +), "[\(v)] UDP bytes: \(udp)")
        #expect(tcp.packets >= UInt64(4 * n), "[\(v)] TCP: handshake and the endpoint's line per attempt: \(tcp)")
        #expect(tcp.bytes >= tcp.packets * (header + 12), "[\(v)] TCP bytes: \(tcp)")
        let names = Dictionary(uniqueKeysWithValues: plan.servicePorts.map { ($0.name.proto, $0.name) })
        #expect(counts.services == [names[.udp]!: udp, names[.tcp]!: tcp], "[\(v)] per service port: \(counts.services)")
        let connections = try socket.readCounters(layout.family, Layout.tableName, set: layout.connectionCounters(Layout.serviceConnections))
        #expect(connections[[ip.datum, .udp, .port(80)]]?.packets == UInt64(n), "[\(v)] connections still counted once each")
    }
}
