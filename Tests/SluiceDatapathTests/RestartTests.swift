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

        // Background traffic: many short connections, one after another.
        final class Box: @unchecked Sendable { var answers: [Answer] = []; var error: (any Error)?; var finished = Date.distantFuture }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let topo = dp.topo
        DispatchQueue.global().async {
            do { box.answers = try topo.probe(from: .pod, Probe("tcp", cip, 80, count: 1500, timeout: 1)) } catch { box.error = error }
            box.finished = Date()
            done.signal()
        }
        Thread.sleep(forTimeInterval: 0.3)

        // "Restart": a fresh applier with no memory adopts what the kernel holds.
        let restarted = try NftablesApplier(namespace: topo.node.name)
        let foreign = try restarted.adopt(tables: [(family, Layout.tableName)], desired: ruleset)
        #expect(foreign.isEmpty, "[\(v)] foreign content after adoption: \(foreign)")
        let again = try restarted.apply(ruleset)
        #expect(again.isNoOp, "[\(v)] re-applying after adoption must send nothing; sent \(again.transaction.operations)")
        let after = k.plan(k.ports("web", clusterIP: 61, cluster: k.eps(0, 1)) + k.ports("api", clusterIP: 62, cluster: k.eps(2, 3)))
        let change = try restarted.apply(Ruleset(tables: [Compiler.compile(after).table]))
        #expect(change.transaction.isElementsOnly, "[\(v)] an unrelated new service after restart should be elements only")

        let restartDone = Date()
        done.wait()
        if let error = box.error { throw error }
        #expect(restartDone < box.finished, "[\(v)] the traffic ended before the restart did; the test proved nothing")
        #expect(box.answers.count == 1500)
        Expect.answered(box.answers, by: [a.endpoints[0], a.endpoints[1]], peer: a.podClient, "[\(v)] connections across the restart")
        Expect.answered(try topo.probe(from: .pod, Probe("tcp", k.clusterIP(62), 80, count: 4)), by: [a.endpoints[2], a.endpoints[3]],
                        peer: a.podClient, "[\(v)] service added after the restart")
    }
}
