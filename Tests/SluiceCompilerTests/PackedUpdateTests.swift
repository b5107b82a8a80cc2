import SluiceTestSupport
import Testing
@testable import SluiceCompiler
import SluiceIR
import SluiceModel

/// The incremental compiler's packed update path (`PackedFragmentDiff`) must give exactly
/// the transactions, conflicts and tables of the general path (`ServiceFragment`s and
/// `dropCommon`), which the other tests check against batch compiles.
struct PackedUpdateTests {
    typealias Rng = SeededGenerator
    let plans = IncrementalCompilerTests()

    /// Random histories of adds, changes and removals (several ports per update, keys shared
    /// between ports, now and then an invalid plan that conflicts with another), applied to
    /// one compiler on each path: every transaction and conflict report is the same.
    @Test(arguments: [21, 22, 23, 24])
    func packedPathEqualsGeneralPath(seed: UInt64) {
        var rng = Rng(state: seed)
        var packed = IncrementalCompiler(context: Fixtures.context)
        var general = IncrementalCompiler(context: Fixtures.context)
        general.packsUpdates = false
        var conflicts = 0
        for step in 0..<80 {
            var changes: [ServicePortName: ServicePortPlan?] = [:]
            for _ in 0..<(1 + rng.int(4)) {
                let i = rng.int(25)
                let name = Fixtures.name("ns", "svc\(i)")
                if rng.int(5) == 0 {
                    changes[name] = .some(nil)
                } else {
                    var p = plans.randomPlan(i, &rng)
                    // Late in the history, a ClusterIP taken from another port: a conflict.
                    if step > 40 && rng.int(4) == 0 { p.clusterIP = .v4(0xAC1E_0000 + UInt32(rng.int(25))) }
                    changes[name] = p
                }
            }
            #expect(packed.update(changes) == general.update(changes), "step \(step)")
            // The general path reports in its dictionaries' order.
            #expect(packed.lastConflicts.sorted() == general.lastConflicts.sorted(), "step \(step)")
            conflicts += packed.lastConflicts.count
        }
        #expect(packed.table.normalized == general.table.normalized)
        #expect(conflicts > 0, "the history includes conflicts")
    }

    /// One endpoint replaced: the diff holds the old endpoint's slot and hairpin elements
    /// and the new one's, nothing the two fragments share.
    @Test func singleEndpointChangeDiff() throws {
        var old = ServicePortPlan(name: Fixtures.name("ns", "web"), family: .ipv4, clusterIP: .v4(0xAC1E_0001), port: 80,
                                  nodePort: 30080, clusterEndpoints: (1...5).map { WeightedEndpoint(ip: .v4(0x0AB4_0000 + $0), port: 8080) },
                                  localEndpoints: [])
        old.localEndpoints = [old.clusterEndpoints[0]]
        var new = old
        new.clusterEndpoints[2] = WeightedEndpoint(ip: .v4(0x0AB4_0063), port: 8080)
        let diff = try #require(PackedFragmentDiff(name: old.name, old: old, new: new, context: Fixtures.context))
        func names(_ entries: [PackedFragmentDiff.Entry]) -> [String] {
            entries.map { diff.sets[Int($0.set)].name }.sorted()
        }
        // The ClusterIP's slot and the NodePort's slot, plus one hairpin pair.
        #expect(diff.removed.count == 3 && diff.added.count == 3)
        #expect(names(diff.removed) == names(diff.added))
        #expect(names(diff.added).contains(Layout.hairpin))
        #expect(diff.removed.allSatisfy { $0.side == .old } && diff.added.allSatisfy { $0.side == .new })
    }

    /// Two endpoints on one address (different ports) put one hairpin key in the fragment
    /// twice; it stays while either is there, and IPv6 plans take the general path.
    @Test func repeatedKeysAndIPv6() throws {
        let twice = ServicePortPlan(name: Fixtures.name("ns", "dup"), family: .ipv4, clusterIP: .v4(0xAC1E_0002), port: 80,
                                    clusterEndpoints: [WeightedEndpoint(ip: .v4(0x0AB4_0001), port: 8080),
                                                       WeightedEndpoint(ip: .v4(0x0AB4_0001), port: 9090)],
                                    localEndpoints: [])
        var once = twice
        once.clusterEndpoints.removeLast()
        let diff = try #require(PackedFragmentDiff(name: twice.name, old: twice, new: once, context: Fixtures.context))
        #expect(diff.removed.map { diff.sets[Int($0.set)].name } == [Layout.endpointMap(.service, .random, slots: 2)]
            .flatMap { [$0, $0] })
        #expect(diff.added.map { diff.sets[Int($0.set)].name } == [Layout.endpointMap(.service, .random, slots: 1)])

        var rng = Rng(state: 5)
        let v6 = plans.randomV6Plan(1, &rng)
        #expect(PackedFragmentDiff(name: v6.name, old: nil, new: v6, context: IncrementalCompilerTests.v6Context) == nil)
    }

    /// A load counts a key its fragment adds twice (one address, two ports) once, as a batch
    /// compile does: removing the service later takes the hairpin element out.
    @Test func loadCountsRepeatedKeysOnce() {
        let twice = ServicePortPlan(name: Fixtures.name("ns", "dup"), family: .ipv4, clusterIP: .v4(0xAC1E_0002), port: 80,
                                    clusterEndpoints: [WeightedEndpoint(ip: .v4(0x0AB4_0001), port: 8080),
                                                       WeightedEndpoint(ip: .v4(0x0AB4_0001), port: 9090)],
                                    localEndpoints: [])
        for streamed in [false, true] {
            var inc = IncrementalCompiler(context: Fixtures.context)
            if streamed { inc.load([twice], maxElementsPerTransaction: 10) { _ in } } else { inc.load([twice]) }
            #expect(inc.table.normalized == Compiler.compile(FamilyPlan(context: Fixtures.context, servicePorts: [twice])).table.normalized)
            let removal: [ServicePortName: ServicePortPlan?] = [twice.name: nil]
            _ = inc.update(removal)
            #expect(inc.element(of: Layout.hairpin, key: [.ipv4(0x0AB4_0001), .ipv4(0x0AB4_0001)]) == nil)
            #expect(inc.serviceElementCount == 0)
        }
    }
}
