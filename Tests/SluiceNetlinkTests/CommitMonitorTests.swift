import Foundation
import SluiceIR
import SluiceNetlink
import SluiceTestSupport
import Testing

/// `CommitMonitor` against the kernel: every commit in the monitored namespace is announced
/// by NFT_MSG_NEWGEN on the nf_tables multicast group. Runs in its own namespace.
@Suite("Commit monitor (kernel)", .serialized, .timeLimit(.minutes(2)))
struct CommitMonitorTests {
    @Test("a committed transaction is reported with its generation, element counts and elements")
    func reportsCommits() throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "cmon") { ns in
            let monitor = try CommitMonitor(namespace: ns.name)
            defer { monitor.stop() }
            let applier = try NftablesApplier(namespace: ns.name)
            let before = try applier.socket.currentGeneration()
            try applier.apply(Ruleset(tables: [slotTable(endpoints: 30)]))
            let first = try #require(monitor.next(timeout: 30), "no NEWGEN within 30 s")
            #expect(first.generation == before &+ 1)
            // 30 slot elements + 30 service elements, all in table ip sluice.
            #expect(first.elementsAdded[.ip] == 60, "\(first.elementsAdded)")
            #expect(first.otherMessages > 0)
            #expect(first.pid != nil)   // the committing task (thread id)
            #expect(first.time <= CommitMonitor.now())

            // A second commit, with the elements captured: one slot element replaced.
            monitor.captureElements = true
            var changed = slotTable(endpoints: 30)
            let key: [Datum] = [.ipv4(ip4("10.96.0.0")), .tcp, .port(1000), .integer(0)]
            changed.elements["slots"]![key] = [.ipv4(ip4("10.77.0.9")), .port(9090)]
            try applier.apply(Ruleset(tables: [changed]))
            let second = try #require(monitor.next(timeout: 30), "no NEWGEN for the second commit")
            #expect(second.generation == first.generation &+ 1)
            #expect(second.elementsAdded[.ip] == 1 && second.elementsDeleted[.ip] == 1)
            let added = try #require(second.elements.first { $0.added })
            #expect(added.table == "sluice" && added.set == "slots" && added.family == .ip)
            #expect(Array(added.data.prefix(6)) == [10, 77, 0, 9, 0x23, 0x82], "\(added.data)")
            #expect(monitor.overruns == 0 && monitor.failure == nil)
        }
    }
}
