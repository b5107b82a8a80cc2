import Testing
import SluiceCompiler
import SluiceIR
import SluiceModel

/// Packet-level semantics of compiled rulesets, checked with the IR interpreter
/// (`walk`), kernel-free. The same cases run against the real kernel in SluiceNetlinkTests.
struct SemanticsTests {
    let table = Compiler.compile(Fixtures.overall).table
    let node = NodeEnvironment(localAddresses: [.ipv4(0xC0A8_0002)]) // 192.168.0.2

    func d(_ s: String) -> Datum { Fixtures.ip(s).datum }

    func outcomes(from src: String, to dst: String, _ port: UInt16, proto: UInt8 = 6,
                  origin: Packet.Origin = .network(interface: "eth0")) -> [Outcome] {
        walk(Packet(saddr: d(src), daddr: d(dst), proto: proto, dport: port, origin: origin), through: table, node: node)
    }

    func targets(_ o: [Outcome]) -> [String: Double] {
        var m: [String: Double] = [:]
        for x in o { m[x.dnat.map { "\($0.address):\($0.port)" } ?? x.description, default: 0] += x.probability }
        return m
    }

    @Test func clusterIPFromPodIsSplitEvenlyAndNotMasqueraded() {
        let o = outcomes(from: "10.0.1.5", to: "172.30.0.44", 80)
        #expect(targets(o) == ["10.180.0.4:80": 0.5, "10.180.0.5:80": 0.5])
        #expect(o.allSatisfy { $0.fate == .accepted && !$0.masqueraded })
    }

    @Test func clusterIPFromOutsidePodNetworkIsMasqueraded() {
        let o = outcomes(from: "192.168.0.10", to: "172.30.0.41", 80)
        #expect(o.count == 1)
        #expect(o[0].dnat?.address == d("10.180.0.1"))
        #expect(o[0].masqueraded)
    }

    @Test func unknownPortOnClusterIPIsRejectedAndUnallocatedIPDropped() {
        #expect(outcomes(from: "10.0.1.5", to: "172.30.0.41", 443).map(\.fate) == [.rejected])
        #expect(outcomes(from: "10.0.1.5", to: "172.30.0.50", 80).map(\.fate) == [.dropped])
    }

    @Test func serviceWithoutEndpointsRejects() {
        #expect(outcomes(from: "10.0.1.5", to: "172.30.0.46", 80).map(\.fate) == [.rejected])
    }

    @Test func nodePortClusterPolicyIsMasqueraded() {
        let o = outcomes(from: "203.0.113.9", to: "192.168.0.2", 3003)
        #expect(o.count == 1)
        #expect(o[0].dnat?.address == d("10.180.0.3"))
        #expect(o[0].masqueraded)
    }

    @Test func localPolicyWithoutLocalEndpointsDropsExternalButShortCircuitsPodsAndNode() {
        #expect(outcomes(from: "203.0.113.9", to: "192.168.0.2", 3001).map(\.fate) == [.dropped])
        #expect(outcomes(from: "203.0.113.9", to: "1.2.3.4", 80).map(\.fate) == [.dropped])
        let pod = outcomes(from: "10.0.1.5", to: "1.2.3.4", 80)
        #expect(pod.count == 1 && pod[0].dnat?.address == d("10.180.0.2") && !pod[0].masqueraded)
        let host = outcomes(from: "192.168.0.2", to: "192.168.99.22", 80, origin: .localProcess)
        #expect(host.count == 1 && host[0].dnat?.address == d("10.180.0.2") && host[0].masqueraded)
    }

    @Test func loadBalancerSourceRangesAreEnforcedBeforeDNAT() {
        #expect(outcomes(from: "198.51.100.1", to: "5.6.7.8", 80).map(\.fate) == [.dropped])
        let allowed = outcomes(from: "203.0.113.5", to: "5.6.7.8", 80)
        #expect(allowed.count == 1 && allowed[0].dnat?.address == d("10.180.0.3") && allowed[0].masqueraded)
        // NodePorts are not subject to the ranges.
        #expect(outcomes(from: "198.51.100.1", to: "192.168.0.2", 3002).first?.dnat?.address == d("10.180.0.3"))
    }

    @Test func hairpinIsMasqueraded() {
        let o = outcomes(from: "10.180.0.1", to: "172.30.0.41", 80)
        #expect(o.count == 1 && o[0].dnat?.address == d("10.180.0.1") && o[0].masqueraded)
    }

    @Test func externalIPClusterPolicy() {
        let o = outcomes(from: "203.0.113.9", to: "192.168.99.33", 80)
        #expect(targets(o) == ["10.180.0.4:80": 0.5, "10.180.0.5:80": 0.5])
        #expect(o.allSatisfy { $0.masqueraded })
    }

    @Test func nonServiceTrafficIsUntouched() {
        let o = outcomes(from: "10.0.1.5", to: "8.8.8.8", 53, proto: 17)
        #expect(o.count == 1 && o[0].fate == .accepted && o[0].dnat == nil && !o[0].masqueraded)
    }
}

/// Regressions found in the golden review.
struct PolicyRegressionTests {
    let node = NodeEnvironment(localAddresses: [.ipv4(0xC0A8_0002)])

    func walkTo(_ table: Table, from: String, to: String, _ port: UInt16) -> [Outcome] {
        walk(Packet(saddr: Fixtures.ip(from).datum, daddr: Fixtures.ip(to).datum, proto: 6, dport: port,
                    origin: .network(interface: "eth0")), through: table, node: node)
    }

    @Test func internalLocalPolicyWithoutLocalEndpointsDropsEvenWithoutExternalAccess() {
        // kube-proxy: iTP=Local, endpoints only on other nodes → drop (not reject).
        let plan = FamilyPlan(context: Fixtures.context, servicePorts: [
            ServicePortPlan(name: Fixtures.name("ns", "itp"), family: .ipv4, clusterIP: Fixtures.ip("172.30.0.92"), port: 80,
                            internalPolicyLocal: true, clusterEndpoints: [], localEndpoints: [], hasAnyEndpoints: true),
        ])
        let table = Compiler.compile(plan).table
        #expect(walkTo(table, from: "10.0.1.5", to: "172.30.0.92", 80).map(\.fate) == [.dropped])
    }

    @Test func nodeInsideSourceRangesAllowsEveryVIPOfTheService() {
        var ctx = Fixtures.context
        ctx.nodeIPs = [Fixtures.ip("192.0.2.5")]
        let plan = FamilyPlan(context: ctx, servicePorts: [
            ServicePortPlan(name: Fixtures.name("ns", "lb"), family: .ipv4, clusterIP: Fixtures.ip("172.30.0.60"), port: 80,
                            loadBalancerIPs: [Fixtures.ip("192.0.2.10"), Fixtures.ip("192.0.2.11")],
                            loadBalancerSourceRanges: [Fixtures.cidr("192.0.2.0/29")],
                            clusterEndpoints: [Fixtures.ep("10.180.0.1")]),
        ])
        let table = Compiler.compile(plan).table
        #expect(walkTo(table, from: "192.0.2.11", to: "192.0.2.10", 80).first?.dnat?.address == Fixtures.ip("10.180.0.1").datum)
        #expect(walkTo(table, from: "192.0.2.10", to: "192.0.2.11", 80).first?.dnat?.address == Fixtures.ip("10.180.0.1").datum)
        #expect(walkTo(table, from: "198.51.100.1", to: "192.0.2.10", 80).map(\.fate) == [.dropped])
    }
}
