import Testing
import SluiceCompiler
import SluiceIR
import SluiceModel

struct SlotAllocationTests {
    func eps(_ weights: [UInt32]) -> [WeightedEndpoint] {
        weights.enumerated().map { WeightedEndpoint(ip: .v4(0x0A00_0001 + UInt32($0.offset)), port: 80, weight: $0.element) }
    }

    @Test func equalWeightsGiveOneSlotPerEndpoint() throws {
        for n in [1, 2, 3, 7, 64] {
            let a = try #require(SlotAllocation(eps(Array(repeating: 5, count: n))))
            #expect(a.total == UInt32(n))
            #expect(a.slots.allSatisfy { $0.count == 1 })
        }
    }

    @Test func unequalWeightsAreExactWhenTheyFit() throws {
        let a = try #require(SlotAllocation(eps([1, 2, 997])))
        #expect(a.total == 1000)
        #expect(a.slots.map(\.count) == [1, 2, 997])
        let b = try #require(SlotAllocation(eps([10, 20, 30])))
        #expect(b.total == 6)
        #expect(b.slots.map(\.count) == [1, 2, 3])
    }

    @Test func weightZeroGetsNoSlotAndAllZeroIsNoEndpoints() throws {
        let a = try #require(SlotAllocation(eps([0, 3, 0, 1])))
        #expect(a.slots.map(\.endpoint.weight) == [3, 1])
        #expect(a.total == 4)
        #expect(SlotAllocation(eps([0, 0])) == nil)
        #expect(SlotAllocation([]) == nil)
    }

    @Test func largeTotalsAreScaledWithinOneTenThousandth() throws {
        let weights: [UInt32] = (0..<40).map { UInt32(($0 * 37) % 1000 + 1) }
        let a = try #require(SlotAllocation(eps(weights)))
        #expect(a.total == 10_000)
        let sum = Double(weights.reduce(0, +))
        for (i, p) in a.probabilities.enumerated() {
            #expect(abs(p.probability - Double(weights[i]) / sum) < 1e-4)
        }
    }

    @Test func walkedProbabilitiesMatchWeights() throws {
        let weights: [UInt32] = [1, 3, 6]
        let plan = FamilyPlan(context: Fixtures.context, servicePorts: [
            ServicePortPlan(name: Fixtures.name("ns", "w"), family: .ipv4, clusterIP: Fixtures.ip("172.30.1.1"), port: 80,
                            clusterEndpoints: eps(weights)),
        ])
        let table = Compiler.compile(plan).table
        let out = walk(Packet(saddr: .ipv4(0x0A00_0105), daddr: Fixtures.ip("172.30.1.1").datum, proto: 6, dport: 80,
                              origin: .network(interface: "eth0")), through: table, node: NodeEnvironment(localAddresses: []))
        #expect(out.count == 3)
        for (i, o) in out.sorted(by: { $0.dnat!.address < $1.dnat!.address }).enumerated() {
            #expect(abs(o.probability - Double(weights[i]) / 10) < 1e-12)
        }
    }
}
