import Foundation
import SluiceBench
import Testing

/// CI-sized soak of `sluice bench --daemon` (`SoakOptions`): a real `sluice run` child at
/// 100 services × 10 endpoints, a fixed number of endpoint changes through the API watch
/// with every fault injected at least twice, inside a namespace the run creates and
/// deletes. Waits for events, never asserts speed. Must run as root (fails otherwise).
@Suite("sluice bench --daemon soak", .serialized)
struct DaemonSoakTests {
    @Test("every fault twice: every change committed, kernel = fresh compile of the final objects, no fd leak, latency histogram recorded")
    func soak() throws {
        try #require(getuid() == 0, "sluice bench tests must run as root (CI runs them as root; they are never skipped)")
        let exe = try #require(BenchSmokeTests.sluiceBinary(), "the sluice binary is built with the tests")
        let faultCount = SoakFault.allCases.count * 2
        var soak = SoakOptions(changes: 400 * (faultCount + 1), rate: 400, faultEvery: 400, stallChanges: 100,
                               tokenOverlapChanges: 0, sampleSeconds: 1, convergeTimeout: 180)
        // Bookmarks every 0.5 s arm the daemon's progress timeout (2 s) for the stalls.
        soak.bookmarkSeconds = 0.5
        soak.watchProgressTimeout = 2
        var options = DaemonBenchOptions(scales: [Scale(services: 100, endpoints: 10)], sources: [.api], samples: 0,
                                         churnSeconds: 0, burst: 0, timeout: 120)
        options.soak = soak
        let scales = DaemonBenchRunner(options: options, executable: exe, progress: ProgressReporter(enabled: false)).run()
        let r = try #require(scales.first?.results.first)
        #expect(r.error == nil, "\(r.error ?? "")")
        let s = try #require(r.soak, "no soak result; notes: \(r.notes)")
        #expect(s.written == soak.changes)
        for fault in SoakFault.allCases { #expect(s.faults[fault.rawValue] == 2, "\(fault): \(s.faults)") }
        // The daemon noticed each stalled watch by itself (its deadline is 305–604 s away,
        // beyond the convergence budget): the server saw it watch again.
        #expect(s.stallRecoveries.count == 2, "\(s.stallRecoveries)")
        // No update lost: the kernel ends equal to a fresh compile of the server's objects.
        #expect(s.kernelEqualsCompile && s.kernelDifferences == 0, "\(s.kernelDifferences) objects differ")
        #expect(s.drained, "not every change's commit was seen")
        // Reconnecting after each fault must not leak: a leak grows with the faults.
        let start = s.openFilesStart.values.reduce(0, +), end = s.openFilesEnd.values.reduce(0, +)
        #expect(start > 0 && end <= start + 2, "open files \(s.openFilesStart) → \(s.openFilesEnd)")
        #expect(s.samples.count >= 2 && s.samples.allSatisfy { ($0.rssBytes ?? 0) > 0 })
        #expect((s.networkProgramming?.count ?? 0) > 0, "no network programming latency recorded")
        #expect(s.watchesOpened > 0 && !s.serverAnswers.isEmpty)
        #expect(DaemonReport.table(scales).contains("#### Soak"))
        // Its own namespaces are gone (another bench may be running beside it).
        let left = try runProc(["ip", "netns", "list"]).stdout
        for name in [r].compactMap(\.namespace) { #expect(!left.contains(name), "namespace left behind: \(name)") }
        #expect([r].allSatisfy { $0.namespace != nil })
    }

    @Test("a histogram between two scrapes: bucket deltas, quantile bounds")
    func histogram() throws {
        let name = "h"
        func scrape(_ counts: [Double], sum: Double) -> [String: Double] {
            var m: [String: Double] = ["h_sum": sum, "h_count": counts.last!]
            for (le, c) in zip(["0.25", "0.5", "1", "+Inf"], counts) { m["h_bucket{le=\"\(le)\"}"] = c }
            return m
        }
        let h = try #require(PrometheusHistogram(name, before: scrape([1, 1, 2, 2], sum: 1), after: scrape([1, 51, 101, 102], sum: 60)))
        #expect(h.count == 100 && h.sum == 59)
        #expect(h.buckets.map(\.count) == [0, 50, 99, 100])
        #expect(h.quantileBound(0.5) == 0.5 && h.quantileBound(0.99) == 1 && h.quantileBound(1) == nil)
        #expect(PrometheusHistogram("other", before: [:], after: scrape([1, 1, 1, 1], sum: 0)) == nil)
    }
}
