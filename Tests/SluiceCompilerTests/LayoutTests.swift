import Testing
import SluiceCompiler
import SluiceIR
import SluiceModel

/// The layout requirement: chains, rules and jumps do not grow with services or endpoints.
struct LayoutTests {
    static func plan(services: Int, endpoints: Int, trafficCounters: Bool = false) -> FamilyPlan {
        var ports: [ServicePortPlan] = []
        ports.reserveCapacity(services)
        for s in 0..<services {
            let cip = IPAddress.v4(0xAC1E_0000 + UInt32(s))          // 172.30.x.y
            let eps = (0..<endpoints).map { e in
                WeightedEndpoint(ip: .v4(0x0AB4_0000 + UInt32(s * endpoints + e)), port: 8080)
            }
            ports.append(ServicePortPlan(name: Fixtures.name("ns", "svc\(s)"), family: .ipv4, clusterIP: cip, port: 80,
                                         nodePort: s % 10 == 0 ? UInt16(30000 + s % 2000) : nil,
                                         clusterEndpoints: eps))
        }
        var context = Fixtures.context
        context.trafficCounters = trafficCounters
        return FamilyPlan(context: context, servicePorts: ports)
    }

    /// With and without `--traffic-counters` (its chain and set are fixed too).
    @Test(arguments: [false, true])
    func chainsRulesAndJumpsDoNotGrowWithServices(trafficCounters: Bool) {
        let small = Compiler.compile(Self.plan(services: 10, endpoints: 10, trafficCounters: trafficCounters)).table
        let large = Compiler.compile(Self.plan(services: 10_000, endpoints: 10, trafficCounters: trafficCounters)).table
        #expect(small.chains.count == large.chains.count)
        #expect(small.ruleCount == large.ruleCount)
        #expect(small.jumpCount == large.jumpCount)
        #expect(small.sets.count == large.sets.count)
        #expect(large.validate() == [])
        // 10k ClusterIPs × 10 slots in the endpoint map.
        #expect(large.elements["endpoints-10"]?.count == 100_000)
        #expect(large.elementCount > small.elementCount * 500)
    }

    @Test func newEndpointCountAddsOneClassNotOneChainPerService() {
        var p = Self.plan(services: 100, endpoints: 3)
        let before = Compiler.compile(p).table
        p.servicePorts[5].clusterEndpoints.append(WeightedEndpoint(ip: .v4(0x0AFF_0001), port: 8080))
        let after = Compiler.compile(p).table
        #expect(after.chains.count == before.chains.count + 1)      // dnat-endpoints-4
        #expect(after.sets.count == before.sets.count + 1)          // endpoints-4
        #expect(after.ruleCount == before.ruleCount + 2)            // its dnat rule and the jump to it
        // The class change leaves every existing class chain (and its map binding) alone:
        // `services` gains one jump, the new chain holds the new dnat rule.
        let tx = diff(Ruleset(tables: [before]), Ruleset(tables: [after]))
        let rewritten = Set(tx.operations.compactMap { op -> String? in
            if case .addRule(_, _, let chain, _) = op { return chain }
            return nil
        })
        #expect(rewritten == [Layout.services, "dnat-endpoints-4"])
        #expect(!tx.operations.contains { if case .flushChain(_, _, "dnat-endpoints-3") = $0 { return true }; return false })
    }

    @Test func endpointChangeDiffsToElementOperationsOnly() {
        var p = Self.plan(services: 1000, endpoints: 10)
        let before = Compiler.compile(p).table
        p.servicePorts[500].clusterEndpoints[3] = WeightedEndpoint(ip: .v4(0x0AFE_0001), port: 8080)
        let after = Compiler.compile(p).table
        let tx = diff(Ruleset(tables: [before]), Ruleset(tables: [after]))
        #expect(tx.isElementsOnly)
        // One slot remapped (delete + add) and the hairpin set updated.
        #expect(tx.objectCount == 4)
    }
}
