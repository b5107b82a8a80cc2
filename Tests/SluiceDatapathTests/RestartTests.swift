import Foundation
import SluiceCompiler
import SluiceIR
import SluiceModel
import SluiceNetlink
import SluiceTestSupport
import Testing

extension PacketTests {
    /// Restart adoption: while a client keeps opening connections to a service, a new
    /// applier (a restarted Sluice) reads the table back over netlink, finds nothing to do,
    /// then applies an unrelated change as elements only. No connection may fail: there is no
    /// window in which packets to the existing service go unmatched.
    ///
    /// The traffic is not a fixed number of connections (which a fast machine finishes before
    /// the restart begins, and a slow one never gets to): it runs until the test stops it, and
    /// the test stops it only once connections begun *after* the restart have completed. A
    /// connection attempt times out after 1 s, less than TCP's first SYN retransmission, so a
    /// SYN that met no rule fails its attempt instead of being retried.
    @Test("Restart adoption: traffic keeps flowing while a new process adopts the table",
          arguments: Variant.all.filter { $0.loader == .netlink })
    func restartAdoptionWithTraffic(_ v: Variant) throws {
        let dp = try Datapath(v, "rst")
        defer { dp.close() }
        let k = dp.kit, a = dp.a
        let cip = k.clusterIP(61)
        let before = k.plan(k.ports("web", clusterIP: 61, cluster: k.eps(0, 1)))
        try dp.load(before)
        let ruleset = Ruleset(tables: [Compiler.compile(before).table])
        let family: Family = v.family == .ipv4 ? .ip : .ip6
        let topo = dp.topo

        // Background traffic: short connections one after another, in two loops so that one
        // loop's bookkeeping between attempts never leaves the service without a connection.
        let loops = 2
        let traffic = try topo.startTraffic(from: .pod, Probe("tcp", cip, 80, timeout: 1), parallel: loops)
        defer { traffic.close() }
        // Flowing before the restart begins: every loop has completed attempts.
        try traffic.wait("traffic before the restart") { attempts in
            (0..<loops).allSatisfy { l in attempts.filter { $0.loop == l }.count >= 10 }
        }

        // "Restart": a fresh applier with no memory adopts what the kernel holds.
        let restartStart = TrafficStream.now()
        let restarted = try NftablesApplier(namespace: topo.node.name)
        let foreign = try restarted.adopt(tables: [(family, Layout.tableName)], desired: ruleset)
        #expect(foreign.isEmpty, "[\(v)] foreign content after adoption: \(foreign)")
        let again = try restarted.apply(ruleset)
        #expect(again.isNoOp, "[\(v)] re-applying after adoption must send nothing; sent \(again.transaction.operations)")
        let after = k.plan(k.ports("web", clusterIP: 61, cluster: k.eps(0, 1)) + k.ports("api", clusterIP: 62, cluster: k.eps(2, 3)))
        let change = try restarted.apply(Ruleset(tables: [Compiler.compile(after).table]))
        #expect(change.transaction.isElementsOnly, "[\(v)] an unrelated new service after restart should be elements only")
        let restartEnd = TrafficStream.now()

        // Still flowing after the restart finished: every loop has completed attempts that
        // began after it. Only then is the traffic stopped.
        try traffic.wait("traffic after the restart") { attempts in
            (0..<loops).allSatisfy { l in attempts.filter { $0.loop == l && $0.start > restartEnd }.count >= 10 }
        }
        let attempts = try traffic.stop()

        let window = String(format: "restart window %.3f–%.3f (%.1f ms)", restartStart, restartEnd, (restartEnd - restartStart) * 1000)
        let during = attempts.filter { $0.overlaps(restartStart, restartEnd) }
        #expect(!during.isEmpty, "[\(v)] no connection was in flight during the restart; \(window); attempts: \(attempts.count)")
        #expect(attempts.contains { $0.end < restartStart } && attempts.contains { $0.start > restartEnd },
                "[\(v)] the traffic did not span the restart; \(window)")
        // Every connection answered by one of the service's endpoints, which saw the pod's address.
        let valid = Set(a.endpoints[0...1])
        let failed = attempts.filter { !valid.contains($0.answer.endpoint ?? "") || $0.answer.peer != a.podClient }
        #expect(failed.isEmpty, "[\(v)] \(failed.count) of \(attempts.count) connections failed or went elsewhere (\(during.count) during the restart); \(window): \(failed.prefix(10))")
        print("[\(v)] restart adoption: \(attempts.count) connections, \(during.count) in flight during the restart (\(String(format: "%.1f", (restartEnd - restartStart) * 1000)) ms)")

        Expect.answered(try topo.probe(from: .pod, Probe("tcp", k.clusterIP(62), 80, count: 4)), by: [a.endpoints[2], a.endpoints[3]],
                        peer: a.podClient, "[\(v)] service added after the restart")
    }
}
