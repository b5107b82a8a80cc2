import SluiceCompiler
import SluiceIR
import SluiceModel
import SluiceTestSupport
import Testing

/// `sluice.dev/load-balancing`: the kernel's `jhash`, the Maglev table, and what the packet
/// walk predicts for hash-selected services (the real-packet checks live in
/// SluiceDatapathTests/LoadBalancingTests).
struct LoadBalancingTests {
    /// `jhash` is lookup3's `hashlittle`; these are the vectors of lookup3.c's own driver.
    @Test func jenkinsHashMatchesLookup3Vectors() {
        let text = Array("Four score and seven years ago".utf8)
        #expect(JenkinsHash.jhash([], seed: 0) == 0xdead_beef)
        #expect(JenkinsHash.jhash([], seed: 0xdead_beef) == 0xbd5b_7dde)
        #expect(JenkinsHash.jhash(text, seed: 0) == 0x1777_0551)
        #expect(JenkinsHash.jhash(text, seed: 1) == 0xcd62_8161)
    }

    @Test func maglevSharesAreEqualWithinOneSlot() {
        for n in [1, 2, 3, 7, 12, 13, 60] {
            let eps = (0..<n).map { Fixtures.ep("10.180.\($0 / 250).\($0 % 250 + 1)", 8080) }
            let table = MaglevTable(SlotAllocation(eps)!)
            #expect(table.size >= UInt32(n) * MaglevTable.slotsPerEndpoint)
            #expect(!table.entries.contains(-1))
            var counts = [Int](repeating: 0, count: n)
            for i in table.entries { counts[i] += 1 }
            #expect(counts.max()! - counts.min()! <= 1, "\(n) endpoints: \(counts)")
        }
    }

    @Test func maglevFollowsWeights() {
        let eps = [Fixtures.ep("10.180.0.1", weight: 1), Fixtures.ep("10.180.0.2", weight: 3), Fixtures.ep("10.180.0.3", weight: 0)]
        let alloc = SlotAllocation(eps)!
        let table = MaglevTable(alloc)
        var counts: [WeightedEndpoint: Int] = [:]
        for i in table.entries { counts[alloc.slots[i].endpoint, default: 0] += 1 }
        #expect(counts.count == 2, "weight 0 gets no slot")
        let share = Double(counts[eps[1]]!) / Double(table.size)
        #expect(abs(share - 0.75) <= 2 / Double(table.size), "weight 3 of 4 holds \(share) of \(table.size) slots")
    }

    /// Every node builds the same table from the same endpoints, in whatever order they come.
    @Test func maglevTableDoesNotDependOnEndpointOrder() {
        let eps = (1...9).map { Fixtures.ep("10.180.0.\($0)", 8080) }
        var rng = SeededGenerator(state: 7)
        let a = MaglevTable(SlotAllocation(eps)!)
        let shuffled = SlotAllocation(eps.shuffled(using: &rng))!
        let b = MaglevTable(shuffled)
        #expect(a.entries.map { SlotAllocation(eps)!.slots[$0].endpoint } == b.entries.map { shuffled.slots[$0].endpoint })
    }

    func plan(_ mode: LoadBalancing, _ endpoints: [WeightedEndpoint]) -> FamilyPlan {
        FamilyPlan(context: Fixtures.context, servicePorts: [
            ServicePortPlan(name: Fixtures.name("ns", "hashed"), family: .ipv4, clusterIP: Fixtures.ip("172.30.0.50"), port: 80,
                            nodePort: 30050, clusterEndpoints: endpoints, loadBalancing: mode),
        ])
    }

    /// The endpoint the walk picks for one flow (nil unless exactly one outcome, p = 1).
    func endpoint(_ table: Table, _ src: UInt32, _ sport: UInt16, to dst: String = "172.30.0.50", _ port: UInt16 = 80) -> Datum? {
        let out = walk(Packet(saddr: .ipv4(src), daddr: Fixtures.ip(dst).datum, proto: 6, sport: sport, dport: port,
                              origin: .network(interface: "eth0")),
                       through: table, node: NodeEnvironment(localAddresses: [Fixtures.ip("192.168.0.2").datum]))
        guard out.count == 1, out[0].probability == 1 else { return nil }
        return out[0].dnat?.address
    }

    /// Consistent-hash: remove one of ten endpoints and only the flows it held move, plus a
    /// small Maglev reshuffle; random flows over 4000 (client, port) pairs.
    @Test func consistentHashMovesAboutOneNthOfFlowsWhenAnEndpointLeaves() throws {
        let eps = (1...10).map { Fixtures.ep("10.180.0.\($0)", 8080) }
        let before = Compiler.compile(plan(.consistentHash, eps)).table
        let after = Compiler.compile(plan(.consistentHash, eps.filter { $0.ip != Fixtures.ip("10.180.0.4") })).table
        var rng = SeededGenerator(state: 42)
        var moved = 0, onRemoved = 0
        let flows = 4000
        for _ in 0..<flows {
            let src = UInt32.random(in: 0xcb00_7100...0xcb00_71ff, using: &rng)
            let sport = UInt16.random(in: 1024...65535, using: &rng)
            let a = try #require(endpoint(before, src, sport))
            let b = try #require(endpoint(after, src, sport))
            if a == Fixtures.ip("10.180.0.4").datum { onRemoved += 1 } else if a != b { moved += 1 }
            // The NodePort picks from a table of its own, built from the same endpoints.
            #expect(endpoint(before, src, sport, to: "192.168.0.2", 30050) == a)
        }
        let share = Double(onRemoved) / Double(flows)
        let extra = Double(moved) / Double(flows)
        #expect(abs(share - 0.1) < 0.03, "the removed endpoint held \(share) of flows")
        // Maglev's table repair moves a few more; random selection would move 90%.
        #expect(extra < 0.05, "\(moved) of \(flows) flows on remaining endpoints moved")
    }

    /// Source-hash: one client, one endpoint, whatever its source port; different clients spread.
    @Test func sourceHashDependsOnTheClientAddressOnly() throws {
        let eps = (1...4).map { Fixtures.ep("10.180.0.\($0)", 8080) }
        let table = Compiler.compile(plan(.sourceHash, eps)).table
        var seen: Set<Datum> = []
        for client in UInt32(0xcb00_7101)...0xcb00_7140 {
            let first = try #require(endpoint(table, client, 40000))
            for sport in [1024, 33333, 65535] as [UInt16] { #expect(endpoint(table, client, sport) == first) }
            seen.insert(first)
        }
        #expect(seen.count == 4, "64 clients reached \(seen.count) of 4 endpoints")
    }

    /// Without a known client the walk reports the distribution: the slot shares.
    @Test func unknownClientGivesTheDistribution() {
        let eps = [Fixtures.ep("10.180.0.1", weight: 1), Fixtures.ep("10.180.0.2", weight: 3)]
        let table = Compiler.compile(plan(.sourceHash, eps)).table
        let out = walk(Packet(saddr: Fixtures.ip("203.0.113.9").datum, daddr: Fixtures.ip("172.30.0.50").datum, proto: 6, dport: 80,
                              origin: .network(interface: "eth0"), unknownFields: [.ipSaddr, .thSport]),
                       through: table, node: NodeEnvironment(localAddresses: []))
        let p = Dictionary(uniqueKeysWithValues: out.compactMap { o in o.dnat.map { ($0.address, o.probability) } })
        #expect(p == [Fixtures.ip("10.180.0.1").datum: 0.25, Fixtures.ip("10.180.0.2").datum: 0.75])
    }

    /// The layout stays flat: modes add one slot map and chain per modulus, never per service.
    @Test func hashModesKeepTheLayoutFlat() {
        func chains(_ services: Int) -> Int {
            let ports = (0..<services).map { i in
                ServicePortPlan(name: Fixtures.name("ns", "s\(i)"), family: .ipv4, clusterIP: Fixtures.ip("172.30.1.\(i + 1)"), port: 80,
                                clusterEndpoints: (1...3).map { Fixtures.ep("10.180.\(i).\($0)", 8080) },
                                loadBalancing: LoadBalancing.allCases[i % 3])
            }
            return Compiler.compile(FamilyPlan(context: Fixtures.context, servicePorts: ports)).table.chains.count
        }
        #expect(chains(6) == chains(60))
    }
}
