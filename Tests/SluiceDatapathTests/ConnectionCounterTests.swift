import Foundation
import SluiceCompiler
import SluiceIR
import SluiceModel
import SluiceNetlink
import SluiceTestSupport
import Testing

extension PacketTests {
    /// The kernel counts each new connection once per service address (its original
    /// destination) and once per endpoint; `ConnectionCounts` names them by service port,
    /// NodePort connections included.
    @Test("Connection counters: real connections counted per service address, service port and endpoint", arguments: Variant.all)
    func connectionCounters(_ v: Variant) throws {
        let dp = try Datapath(v, "counters")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        let plan = k.plan([k.port("cnt", .tcp, clusterIP: 61, nodePort: 30061, cluster: k.eps(0, 1)),
                           k.port("idle", .tcp, clusterIP: 62, cluster: k.eps(2))])
        try dp.load(plan)
        var probes = ProbeSet()
        probes.add(.pod, "clusterIP", Probe("tcp", k.clusterIP(61), 80, count: 5))
        probes.add(.external, "nodePort", Probe("tcp", a.nodeIP, 30061, count: 4))
        let answers = try dp.run(probes)
        Expect.answered(answers["clusterIP"]!, by: [a.endpoints[0], a.endpoints[1]], peer: nil, "[\(v)] ClusterIP")
        Expect.answered(answers["nodePort"]!, by: [a.endpoints[0], a.endpoints[1]], peer: nil, "[\(v)] NodePort")

        let socket = try NetlinkSocket(namespace: dp.topo.node.name)
        let layout = Layout(v.family)
        let service = try socket.readCounters(layout.family, Layout.tableName, set: layout.connectionCounters(Layout.serviceConnections))
        let endpoint = try socket.readCounters(layout.family, Layout.tableName, set: layout.connectionCounters(Layout.endpointConnections))
        var counts = ConnectionCounts()
        counts.add(service: service, endpoint: endpoint, services: ServicePortNames(plans: plan.servicePorts))

        let tcp = Datum.tcp
        #expect(service[[k.ip(k.clusterIP(61)).datum, tcp, .port(80)]]?.packets == 5, "[\(v)] ClusterIP counter: \(service)")
        #expect(service[[k.ip(a.nodeIP).datum, tcp, .port(30061)]]?.packets == 4, "[\(v)] NodePort counter: \(service)")
        #expect(service.count == 2, "[\(v)] only the used addresses have counters: \(service)")
        let name = plan.servicePorts.first { $0.name.service.name == "cnt" }!.name
        #expect(counts.services == [name: 9], "[\(v)] per service port: \(counts.services)")
        let perEndpoint = a.endpoints.prefix(2).map { counts.endpoints[.init(address: k.ip($0), proto: .tcp, port: 8080)] ?? 0 }
        #expect(perEndpoint.reduce(0, +) == 9, "[\(v)] per endpoint: \(counts.endpoints)")
        let answeredBy = a.endpoints.prefix(2).map { e in (answers["clusterIP"]! + answers["nodePort"]!).filter { $0.endpoint == e }.count }
        #expect(perEndpoint == answeredBy.map(UInt64.init), "[\(v)] each endpoint counted the connections it answered")
    }
}
