import Foundation
import SluiceCompiler
import SluiceIR
import SluiceModel
import SluiceNetlink
import SluiceTestSupport
import Testing

extension PacketTests {
    /// An owned table (`NFT_TABLE_F_OWNER | NFT_TABLE_F_PERSIST`, what `sluice run` creates)
    /// with a client opening connections all along:
    /// - `nft flush ruleset` passes it by, and `nft delete table` and `nft flush map` are
    ///   refused: no connection fails;
    /// - the owner's socket closes (the daemon stops): the table stays, orphaned;
    /// - a new owner (a restarted daemon) claims it back with nothing flushed, and others are
    ///   refused again; a change after the claim goes in as elements only.
    /// Traffic runs until connections begun after the last step have completed.
    @Test("Owned table: flush ruleset, delete table and a restart of the owner leave every connection served",
          arguments: Variant.all.filter { $0.loader == .netlink })
    func ownedTableWithTraffic(_ v: Variant) throws {
        let dp = try Datapath(v, "own")
        defer { dp.close() }
        let k = dp.kit, a = dp.a, topo = dp.topo
        let family: Family = v.family == .ipv4 ? .ip : .ip6
        let t = "\(family.rawValue) \(Layout.tableName)"
        let cip = k.clusterIP(71)
        let ruleset = Ruleset(tables: [Compiler.compile(k.plan(k.ports("web", clusterIP: 71, cluster: k.eps(0, 1)))).table])

        var owner: NftablesApplier? = try NftablesApplier(namespace: topo.node.name)
        #expect(try owner!.takeOwnership(), "[\(v)] this kernel (\(kernelRelease())) cannot own tables")
        try owner!.apply(ruleset)
        #expect(try topo.node.runChecked(["nft", "list", "table"] + t.split(separator: " ").map(String.init)).stdout.contains("owner"))

        let loops = 2
        let traffic = try topo.startTraffic(from: .pod, Probe("tcp", cip, 80, timeout: 1), parallel: loops)
        defer { traffic.close() }
        func flowing(after moment: Double, _ what: String) throws {
            try traffic.wait(what) { attempts in
                (0..<loops).allSatisfy { l in attempts.filter { $0.loop == l && $0.start > moment }.count >= 10 }
            }
        }
        try flowing(after: 0, "traffic before anything")

        // Others cannot take it down.
        let start = TrafficStream.now()
        try topo.node.runChecked(["nft", "flush", "ruleset"])
        let delete = try topo.node.run(["nft", "delete", "table"] + t.split(separator: " ").map(String.init))
        #expect(!delete.succeeded && delete.stderr.contains("Operation not permitted"), "[\(v)] nft delete table: \(delete)")
        let flushMap = try topo.node.run(["nft", "flush", "map"] + t.split(separator: " ").map(String.init) + ["endpoints-2"])
        #expect(!flushMap.succeeded, "[\(v)] nft flush map of an owned table succeeded")
        try flowing(after: TrafficStream.now(), "traffic after flush ruleset and refused writes")

        // The owner goes away: the table stays (persist), orphaned and writable by whoever claims it.
        owner = nil
        let orphan = try topo.node.runChecked(["nft", "list", "table"] + t.split(separator: " ").map(String.init)).stdout
        #expect(orphan.contains("10.") || orphan.contains("fd00"), "[\(v)] the orphaned table lost its elements")
        try flowing(after: TrafficStream.now(), "traffic with the table orphaned")

        // A restarted owner claims it: nothing to re-apply, others refused again.
        let restarted = try NftablesApplier(namespace: topo.node.name)
        #expect(try restarted.takeOwnership())
        _ = try restarted.adopt(tables: [(family, Layout.tableName)], desired: ruleset)
        #expect(restarted.ownsTables && restarted.ownershipLost == nil)
        #expect(try restarted.apply(ruleset).isNoOp, "[\(v)] re-applying after the claim must send nothing")
        let refused = try topo.node.run(["nft", "delete", "table"] + t.split(separator: " ").map(String.init))
        #expect(!refused.succeeded && refused.stderr.contains("Operation not permitted"), "[\(v)] after the claim: \(refused)")
        let after = k.plan(k.ports("web", clusterIP: 71, cluster: k.eps(0, 1)) + k.ports("api", clusterIP: 72, cluster: k.eps(2, 3)))
        #expect(try restarted.apply(Ruleset(tables: [Compiler.compile(after).table])).transaction.isElementsOnly)
        let end = TrafficStream.now()
        try flowing(after: end, "traffic after the claim")
        let attempts = try traffic.stop()

        let during = attempts.filter { $0.overlaps(start, end) }
        #expect(!during.isEmpty, "[\(v)] no connection was in flight during the flush and the restart")
        let valid = Set(a.endpoints[0...1])
        let failed = attempts.filter { !valid.contains($0.answer.endpoint ?? "") || $0.answer.peer != a.podClient }
        #expect(failed.isEmpty, "[\(v)] \(failed.count) of \(attempts.count) connections failed or went elsewhere: \(failed.prefix(10))")
        Expect.answered(try topo.probe(from: .pod, Probe("tcp", k.clusterIP(72), 80, count: 4)), by: [a.endpoints[2], a.endpoints[3]],
                        peer: a.podClient, "[\(v)] service added after the claim")
    }

    /// A table made without the persist flag (an older Sluice, `sluice apply`) cannot be
    /// claimed: the applier says why and stays unowned, and the table keeps working.
    @Test("A table without the persist flag is adopted unowned, with the reason", arguments: Variant.all.filter { $0.loader == .netlink })
    func unflaggedTableIsAdoptedUnowned(_ v: Variant) throws {
        let dp = try Datapath(v, "ownx")
        defer { dp.close() }
        let k = dp.kit
        let family: Family = v.family == .ipv4 ? .ip : .ip6
        let plan = k.plan(k.ports("web", clusterIP: 73, cluster: k.eps(0, 1)))
        try dp.load(plan)
        let applier = try NftablesApplier(namespace: dp.topo.node.name)
        #expect(try applier.takeOwnership())
        _ = try applier.adopt(tables: [(family, Layout.tableName)], desired: nil)
        #expect(!applier.ownsTables && applier.ownershipLost?.contains("persist") == true)
        #expect(try applier.apply(Ruleset(tables: [Compiler.compile(plan).table])).isNoOp)
    }
}

/// `uname -r`, for messages.
func kernelRelease() -> String {
    (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
}
