import Testing
import SluiceCompiler
import SluiceIR
import SluiceModel

/// The targeted (per-transaction) affinity check must reject exactly the entries the whole-table
/// check starts rejecting after the transaction: nothing stale is kept, nothing valid is deleted.
struct AffinityValidityTests {
    /// Every entry the datapath could have recorded in `table`: client . tuple → endpoint, for
    /// every tuple of every slot map (with or without affinity) and every endpoint behind it.
    func candidates(_ table: Table) -> [(nodePort: Bool, key: [Datum], data: [Datum])] {
        var out: [(Bool, [Datum], [Datum])] = []
        for (name, elems) in table.elements {
            let nodePort: Bool
            if name.hasPrefix("nodeport-endpoints-") || name.hasPrefix("nodeport-shortcut-endpoints-") { nodePort = true }
            else if name.hasPrefix("endpoints-") || name.hasPrefix("shortcut-endpoints-") { nodePort = false }
            else { continue }
            for (key, data) in elems {
                out.append((nodePort, [.ipv4(0x0A00_0009)] + key.dropLast(), data))
            }
        }
        return out
    }

    func valid(_ v: AffinityValidity, _ c: (nodePort: Bool, key: [Datum], data: [Datum])) -> Bool {
        c.nodePort ? v.isValidNodePortEntry(key: c.key, data: c.data) : v.isValidServiceEntry(key: c.key, data: c.data)
    }

    @Test(arguments: [11, 12, 13, 14])
    func targetedCheckMatchesWholeTable(seed: UInt64) {
        var rng = IncrementalCompilerTests.Rng(state: seed)
        let gen = IncrementalCompilerTests()
        var inc = IncrementalCompiler(context: Fixtures.context)
        _ = inc.replaceAll((0..<20).map { gen.randomPlan($0, &rng) })
        var rejectedSomething = false, keptSomething = false
        for step in 0..<60 {
            let before = inc.table
            var changes: [ServicePortName: ServicePortPlan?] = [:]
            for _ in 0..<(1 + rng.int(3)) {
                let i = rng.int(20)
                changes[Fixtures.name("ns", "svc\(i)")] = rng.int(5) == 0 ? .some(nil) : gen.randomPlan(i, &rng)
            }
            let tx = inc.update(changes)
            let after = inc.table
            let wholeBefore = AffinityValidity(table: before), wholeAfter = AffinityValidity(table: after)
            let impact = AffinityValidity.Impact(of: tx)
            let targeted = AffinityValidity(table: after, impact: impact)
            for c in candidates(before) + candidates(after) where valid(wholeBefore, c) {
                // Entries recorded before the commit: the targeted check agrees with the whole table.
                #expect(valid(targeted, c) == valid(wholeAfter, c), "step \(step): \(c)")
                if !valid(wholeAfter, c) { rejectedSomething = true; #expect(targeted.mayRejectEntries, "step \(step)") } else { keptSomething = true }
            }
        }
        #expect(rejectedSomething && keptSomething, "the random walk never exercised both outcomes")
    }

    @Test func endpointLeavingIsRejectedOthersKept() {
        let ep = { (i: UInt32) in WeightedEndpoint(ip: .v4(0x0AB4_0000 + i), port: 8080) }
        var plan = ServicePortPlan(name: Fixtures.name("ns", "a"), family: .ipv4, clusterIP: .v4(0xAC1E_0001), port: 80,
                                   nodePort: 30001, affinityTimeoutSeconds: 10800, clusterEndpoints: [ep(1), ep(2)])
        // Same affinity timeout and slot classes as `a` after the change, so no class set goes away.
        let other = ServicePortPlan(name: Fixtures.name("ns", "b"), family: .ipv4, clusterIP: .v4(0xAC1E_0002), port: 80,
                                    nodePort: 30002, affinityTimeoutSeconds: 10800, clusterEndpoints: [ep(1), ep(3)])
        let third = ServicePortPlan(name: Fixtures.name("ns", "d"), family: .ipv4, clusterIP: .v4(0xAC1E_0004), port: 80,
                                    nodePort: 30004, clusterEndpoints: [ep(4)])
        var inc = IncrementalCompiler(context: Fixtures.context)
        _ = inc.replaceAll([plan, other, third])
        plan.clusterEndpoints = [ep(2)]
        let impact = AffinityValidity.Impact(of: inc.update([plan.name: plan]))
        let v = AffinityValidity(table: inc.table, impact: impact)
        let client = Datum.ipv4(0x0A00_0009)
        let tupleA: [Datum] = [.ipv4(0xAC1E_0001), .proto(6), .port(80)]
        let tupleB: [Datum] = [.ipv4(0xAC1E_0002), .proto(6), .port(80)]
        let data = { (i: UInt32) -> [Datum] in [.ipv4(0x0AB4_0000 + i), .port(8080)] }
        #expect(impact.serviceTuples == [tupleA], "\(impact)")
        #expect(impact.nodePortTuples == [[.proto(6), .port(30001)]], "\(impact)")
        #expect(!impact.everything && !impact.leftAClass)
        #expect(!v.isValidServiceEntry(key: [client] + tupleA, data: data(1)))
        #expect(v.isValidServiceEntry(key: [client] + tupleA, data: data(2)))
        #expect(!v.isValidNodePortEntry(key: [client, .proto(6), .port(30001)], data: data(1)))
        #expect(v.isValidNodePortEntry(key: [client, .proto(6), .port(30001)], data: data(2)))
        // Another service's entry to the same endpoint is not touched.
        #expect(v.isValidServiceEntry(key: [client] + tupleB, data: data(1)))
        // Losing affinity makes every entry of the tuple stale.
        plan.affinityTimeoutSeconds = nil
        let lost = AffinityValidity.Impact(of: inc.update([plan.name: plan]))
        #expect(lost.leftAClass && !lost.everything, "\(lost)")
        let v2 = AffinityValidity(table: inc.table, impact: lost)
        #expect(!v2.isValidServiceEntry(key: [client] + tupleA, data: data(2)))
        #expect(v2.isValidServiceEntry(key: [client] + tupleB, data: data(1)))
        // A pure add touches nothing.
        let added = ServicePortPlan(name: Fixtures.name("ns", "c"), family: .ipv4, clusterIP: .v4(0xAC1E_0003), port: 80,
                                    affinityTimeoutSeconds: 60, clusterEndpoints: [ep(3)])
        #expect(AffinityValidity.Impact(of: inc.update([added.name: added])).isEmpty)
    }
}
