import SluiceTestSupport
import Testing
import SluiceCompiler
import SluiceIR
import SluiceModel

/// The incremental compiler's transactions, applied by the fake kernel, must always reach
/// exactly what a batch compile of the same plans produces.
struct IncrementalCompilerTests {
    /// Deterministic pseudo-random numbers (SplitMix64).
    typealias Rng = SeededGenerator

    func randomPlan(_ i: Int, _ rng: inout Rng) -> ServicePortPlan {
        let n = rng.int(5)
        // Endpoints drawn from a small pool so hairpin keys are shared between services.
        let eps = (0..<n).map { _ in
            WeightedEndpoint(ip: .v4(0x0AB4_0000 + UInt32(rng.int(12))), port: 8080, weight: UInt32(rng.int(3) == 0 ? rng.int(4) : 1))
        }
        let uniqueEps = Array(Set(eps)).sorted()
        let local = uniqueEps.filter { _ in rng.int(2) == 0 }
        return ServicePortPlan(
            name: Fixtures.name("ns", "svc\(i)"), family: .ipv4, clusterIP: .v4(0xAC1E_0000 + UInt32(i)), port: 80,
            nodePort: rng.int(3) == 0 ? UInt16(30000 + i) : nil,
            externalIPs: rng.int(4) == 0 ? [.v4(0xC0A8_6300 + UInt32(i))] : [],
            loadBalancerIPs: rng.int(5) == 0 ? [.v4(0x0506_0700 + UInt32(i))] : [],
            loadBalancerSourceRanges: rng.int(2) == 0 ? [CIDR("203.0.113.0/25")!] : [],
            affinityTimeoutSeconds: rng.int(4) == 0 ? [60, 10800][rng.int(2)] : nil,
            externalPolicyLocal: rng.int(3) == 0, internalPolicyLocal: rng.int(5) == 0,
            clusterEndpoints: uniqueEps, localEndpoints: local,
            loadBalancing: rng.int(3) == 0 ? LoadBalancing.allCases[rng.int(3)] : .random)
    }

    @Test(arguments: [1, 2, 3])
    func randomUpdatesMatchBatchCompile(seed: UInt64) throws {
        var rng = Rng(state: seed)
        var inc = IncrementalCompiler(context: Fixtures.context)
        var kernel = Ruleset()
        var current: [ServicePortName: ServicePortPlan] = [:]
        // Cold start through the same path as updates.
        let first = try kernel.applying(diff(kernel, Ruleset(tables: [inc.table])))
        kernel = first
        for step in 0..<60 {
            var changes: [ServicePortName: ServicePortPlan?] = [:]
            for _ in 0..<(1 + rng.int(4)) {
                let i = rng.int(20)
                let name = Fixtures.name("ns", "svc\(i)")
                if rng.int(4) == 0 { changes[name] = .some(nil); current[name] = nil }
                else { let p = randomPlan(i, &rng); changes[name] = p; current[name] = p }
            }
            let tx = inc.update(changes)
            kernel = try kernel.applying(tx)
            let batch = Compiler.compile(FamilyPlan(context: Fixtures.context, servicePorts: Array(current.values))).table
            #expect(kernel.normalized == Ruleset(tables: [batch]).normalized, "step \(step)")
            #expect(inc.table.normalized == batch.normalized, "step \(step)")
        }
    }

    @Test func singleEndpointChangeIsFourElementOperations() throws {
        var inc = IncrementalCompiler(context: Fixtures.context)
        var plans = LayoutTests.plan(services: 200, endpoints: 10).servicePorts
        _ = inc.replaceAll(plans)
        plans[100].clusterEndpoints[4] = WeightedEndpoint(ip: .v4(0x0AFE_0001), port: 8080)
        let tx = inc.update([plans[100].name: plans[100]])
        #expect(tx.isElementsOnly)
        // endpoints-10: delete + add of one slot; hairpin: delete old pair, add new pair.
        #expect(tx.objectCount == 4)
        #expect(tx.operations.count == 4)
    }

    @Test func unchangedUpdateIsEmpty() {
        var inc = IncrementalCompiler(context: Fixtures.context)
        let plans = Fixtures.overall.servicePorts
        _ = inc.replaceAll(plans)
        #expect(inc.update([plans[2].name: plans[2]]).isEmpty)
        #expect(inc.replaceAll(plans).isEmpty)
    }

    static var v6Context: FamilyContext {
        FamilyContext(family: .ipv6, nodeName: "node1", localDetector: .cidrs([Fixtures.cidr("fd00:10::/64")]),
                      nodePortAddresses: .ips([Fixtures.ip("fd00::2")]), nodeIPs: [Fixtures.ip("fd00::2")],
                      serviceCIDRs: [Fixtures.cidr("fd00:30::/112")])
    }

    func randomV6Plan(_ i: Int, _ rng: inout Rng) -> ServicePortPlan {
        let eps = Array(Set((0..<rng.int(4)).map { _ in
            WeightedEndpoint(ip: .v6(0xFD00_0010_0000_0000, UInt64(1 + rng.int(8))), port: 8080)
        })).sorted()
        return ServicePortPlan(
            name: Fixtures.name("ns", "v6svc\(i)"), family: .ipv6, clusterIP: .v6(0xFD00_0030_0000_0000, UInt64(i + 1)), port: 80,
            nodePort: rng.int(2) == 0 ? UInt16(31000 + i) : nil,
            loadBalancerIPs: rng.int(3) == 0 ? [.v6(0x2001_0DB8_0000_0000, UInt64(i + 1))] : [],
            loadBalancerSourceRanges: rng.int(2) == 0 ? [Fixtures.cidr("2001:db8:ff::/48")] : [],
            clusterEndpoints: eps, localEndpoints: eps.filter { _ in rng.int(2) == 0 })
    }

    /// `load` (no transaction) reaches the same state as `replaceAll`, and the streamed
    /// skeleton + service elements describe exactly `table`; IPv4 (packed store) and IPv6
    /// (spilled store) alike.
    @Test(arguments: [4, 5])
    func loadAndStreamMatchBatchCompile(seed: UInt64) throws {
        var rng = Rng(state: seed)
        let v4 = (0..<40).map { randomPlan($0, &rng) }
        let v6 = (0..<25).map { randomV6Plan($0, &rng) }
        for (context, plans) in [(Fixtures.context, v4), (Self.v6Context, v6)] {
            var loaded = IncrementalCompiler(context: context)
            loaded.load(plans)
            var replaced = IncrementalCompiler(context: context)
            _ = replaced.replaceAll(plans)
            let batch = Compiler.compile(FamilyPlan(context: context, servicePorts: plans)).table
            #expect(loaded.table.normalized == batch.normalized)
            #expect(replaced.table.normalized == batch.normalized)
            // Streamed: skeleton plus chunks of 3.
            var streamed = loaded.skeleton
            let source = loaded.serviceElements
            var total = 0
            for name in source.setNames {
                var seen = 0
                source.forEachChunk(of: name, maxCount: 3) { chunk in
                    #expect(chunk.count <= 3 && !chunk.isEmpty)
                    seen += chunk.count
                    for e in chunk { streamed.elements[name, default: [:]][e.key] = e.data ?? [] }
                }
                #expect(seen == source.count(of: name))
                total += seen
            }
            #expect(total == loaded.serviceElementCount)
            #expect(streamed.normalized == batch.normalized)
            // Updates after a load behave as after replaceAll.
            var changes: [ServicePortName: ServicePortPlan?] = [:]
            changes[plans[3].name] = .some(nil)
            var p = plans[5]
            p.clusterEndpoints = Array(p.clusterEndpoints.dropFirst())
            changes[p.name] = p
            #expect(loaded.update(changes) == replaced.update(changes))
            #expect(loaded.table.normalized == replaced.table.normalized)
        }
    }

    @Test func updatesAfterLoadAreIncremental() throws {
        var inc = IncrementalCompiler(context: Fixtures.context)
        var plans = LayoutTests.plan(services: 300, endpoints: 10).servicePorts
        inc.load(plans)
        plans[7].clusterEndpoints[2] = WeightedEndpoint(ip: .v4(0x0AFE_0009), port: 8080)
        let tx = inc.update([plans[7].name: plans[7]])
        #expect(tx.isElementsOnly)
        #expect(tx.objectCount == 4)
        inc.load(plans)
        #expect(inc.update([plans[7].name: plans[7]]).isEmpty)
    }

    /// A load takes its plans in any order, and of two plans with one name the later one:
    /// plans in name order (as the planner hands them over) and the same plans shuffled,
    /// with an older copy of one plan first, load the same table.
    @Test(arguments: [11, 12])
    func loadOrderAndDuplicates(seed: UInt64) {
        var rng = Rng(state: seed)
        let plans = (0..<50).map { randomPlan($0, &rng) }.sorted { $0.name < $1.name }
        var sorted = IncrementalCompiler(context: Fixtures.context)
        sorted.load(plans)
        var stale = plans[17]
        stale.clusterEndpoints = [WeightedEndpoint(ip: .v4(0x0AFE_0001), port: 9090)]
        var shuffled = plans
        for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, rng.int(i + 1)) }
        var other = IncrementalCompiler(context: Fixtures.context)
        other.load([stale] + shuffled)
        #expect(other.table.normalized == sorted.table.normalized)
        var lastWins = IncrementalCompiler(context: Fixtures.context)
        lastWins.load(plans + [stale])
        #expect(lastWins.table.normalized == Compiler.compile(FamilyPlan(
            context: Fixtures.context, servicePorts: plans.map { $0.name == stale.name ? stale : $0 })).table.normalized)
    }

    /// Two ports claim the same slot keys with different data (invalid input: one
    /// ClusterIP, port and protocol): the first keeps them. When it leaves in the same
    /// update that changes the other, the other's elements, shared by its old and new
    /// fragments, enter the table: the update does not skip shared elements once a
    /// conflict was seen.
    @Test func conflictOwnerLeavingHandsItsKeysOver() throws {
        func plan(_ name: String, _ endpoints: [UInt32], nodePort: UInt16? = nil) -> ServicePortPlan {
            ServicePortPlan(name: Fixtures.name("ns", name), family: .ipv4, clusterIP: .v4(0xAC1E_0001), port: 80,
                            nodePort: nodePort,
                            clusterEndpoints: endpoints.map { WeightedEndpoint(ip: .v4($0), port: 8080) }, localEndpoints: [])
        }
        let a = plan("a", [0x0AB4_0001, 0x0AB4_0002]), b = plan("b", [0x0AB4_0003, 0x0AB4_0004])
        var inc = IncrementalCompiler(context: Fixtures.context)
        var kernel = try Ruleset().applying(diff(Ruleset(), Ruleset(tables: [inc.table])))
        kernel = try kernel.applying(inc.update([a.name: a, b.name: b]))
        #expect(!inc.lastConflicts.isEmpty)
        let b2 = plan("b", [0x0AB4_0003, 0x0AB4_0004], nodePort: 30080)
        let removeA: [ServicePortName: ServicePortPlan?] = [a.name: nil, b.name: b2]
        kernel = try kernel.applying(inc.update(removeA))
        let batch = Compiler.compile(FamilyPlan(context: Fixtures.context, servicePorts: [b2])).table
        #expect(kernel.normalized == Ruleset(tables: [batch]).normalized)
        #expect(inc.table.normalized == batch.normalized)
    }

    /// `Element.sort` (packed words for IPv4 layouts) gives `<` order, with IPv6 and mixed
    /// lists too; `sortCancelling` leaves each list sorted and without the shared elements.
    @Test(arguments: [7, 8, 9])
    func elementSortAndCancellationMatchTheirDefinitions(seed: UInt64) {
        var rng = Rng(state: seed)
        func datum() -> Datum {
            switch rng.int(rng.int(10) == 0 ? 7 : 5) {
            case 0: .ipv4(UInt32(rng.int(4)))
            case 1: .proto(UInt8(rng.int(3)))
            case 2: .port(UInt16(rng.int(3)))
            case 3: .integer(UInt32(rng.int(3)))
            case 4: .prefix4(UInt32(rng.int(2)), UInt8(rng.int(3)))
            case 5: .ipv6(0xFD00, UInt64(rng.int(3)))
            default: .prefix6(0xFD00, UInt64(rng.int(2)), UInt8(rng.int(3)))
            }
        }
        func elements(_ map: Bool) -> [Element] {
            (0..<rng.int(60)).map { _ in Element((0..<3).map { _ in datum() }, map ? (0..<2).map { _ in datum() } : nil) }
        }
        for _ in 0..<40 {
            let map = rng.int(2) == 0
            var list = elements(map)
            Element.sort(&list)
            #expect(list == list.sorted())
            let deletes = Array(Set(elements(map))), adds = Array(Set(elements(map) + deletes.filter { _ in rng.int(2) == 0 }))
            var d = deletes, a = adds
            Element.sortCancelling(&d, &a)
            #expect(d == deletes.filter { !adds.contains($0) }.sorted())
            #expect(a == adds.filter { !deletes.contains($0) }.sorted())
        }
    }
}
