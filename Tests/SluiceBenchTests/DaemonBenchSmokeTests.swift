import Foundation
import SluiceBench
import Testing

/// CI smoke run of `sluice bench --daemon` at 50 services × 2: a real `sluice run` child per
/// source, inside a namespace the run creates and deletes. Checks that every measurement
/// produced sane results; never asserts speed. Must run as root (fails otherwise).
@Suite("sluice bench --daemon smoke", .serialized)
struct DaemonBenchSmokeTests {
    @Test("API watch and watched directory: first sync, RSS, a commit for every single change, burst, churn")
    func smoke() throws {
        try #require(getuid() == 0, "sluice bench tests must run as root (CI runs them as root; they are never skipped)")
        let exe = try #require(BenchSmokeTests.sluiceBinary(), "the sluice binary is built with the tests")
        let options = DaemonBenchOptions(scales: [Scale(services: 50, endpoints: 2)], samples: 20, directorySamples: 5,
                                         churnSeconds: 2, churnRate: 200, churnMaxLag: 5, burst: 100, timeout: 60)
        let scales = DaemonBenchRunner(options: options, executable: exe, progress: ProgressReporter(enabled: false)).run()
        let results = try #require(scales.first?.results)
        #expect(results.map(\.source) == [.api, .directory])
        let expected = expectedElementCount(Scale(services: 50, endpoints: 2))
        for r in results {
            #expect(r.error == nil, "\(r.source): \(r.error ?? "")")
            let first = try #require(r.firstSync, "\(r.source): no first sync")
            #expect(first.seconds != nil && first.detection == "metrics", "\(r.source): \(first)")
            #expect(first.kernelElements == expected && first.commits >= 1)
            #expect((r.rssAfterFirstSyncBytes ?? 0) > 0 && (r.peakRSSBytes ?? 0) >= (r.rssAfterFirstSyncBytes ?? 0))
            let want = r.source == .api ? options.samples : options.directorySamples
            #expect(r.eventToKernel?.summary?.n == want, "\(r.source): \(String(describing: r.eventToKernel))")
            #expect(r.missedChanges == 0)
            #expect((r.commitsPerChange?.min ?? 0) >= 1)
            // The daemon's own account: a sync per change at least, each holding a commit.
            let syncs = try #require(r.singleChangeSyncs, "\(r.source): no syncs in /metrics")
            #expect(syncs.syncs >= want && syncs.commits >= want && syncs.meanSyncSeconds > 0, "\(syncs)")
            #expect((syncs.meanCommitSeconds ?? 0) > 0 && (syncs.meanCommitSeconds ?? 0) <= syncs.meanSyncSeconds * Double(syncs.syncs) / Double(syncs.commits))
            #expect(r.monitorOverruns == 0)
        }
        let api = try #require(results.first { $0.source == .api })
        let burst = try #require(api.burst)
        #expect(burst.seconds != nil && burst.commits >= 1 && burst.commits <= burst.changes)
        let churn = try #require(api.churn)
        #expect(churn.written > 0 && churn.lag?.n == churn.written && churn.drainSeconds != nil, "\(churn)")
        #expect(!DaemonReport.table(scales).isEmpty)
        // Its own namespaces are gone (another bench may be running beside it).
        let left = try runProc(["ip", "netns", "list"]).stdout
        for name in results.compactMap(\.namespace) { #expect(!left.contains(name), "namespace left behind: \(name)") }
        #expect(results.allSatisfy { $0.namespace != nil })
    }

    @Test("first sync timed from the kernel's element notifications (the monitor listening from the start)")
    func firstSyncFromKernel() throws {
        try #require(getuid() == 0, "sluice bench tests must run as root (CI runs them as root; they are never skipped)")
        let exe = try #require(BenchSmokeTests.sluiceBinary(), "the sluice binary is built with the tests")
        var options = DaemonBenchOptions(scales: [Scale(services: 20, endpoints: 2)], sources: [.api], samples: 3,
                                         churnSeconds: 0, burst: 0, timeout: 60)
        options.firstSyncFromKernel = true
        let scales = DaemonBenchRunner(options: options, executable: exe, progress: ProgressReporter(enabled: false)).run()
        let r = try #require(scales.first?.results.first)
        #expect(r.error == nil, "\(r.error ?? "")")
        let first = try #require(r.firstSync)
        #expect(first.seconds != nil && first.detection == "elementCount", "\(first)")
        #expect(first.kernelElements == expectedElementCount(Scale(services: 20, endpoints: 2)))
        #expect(r.eventToKernel?.summary?.n == 3)
    }

    @Test("change addresses round-trip through element bytes; objects are valid JSON")
    func objects() throws {
        var c = DaemonCluster(scale: Scale(services: 3, endpoints: 2))
        let id = c.change(service: 1)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(c.sliceJSON(1).utf8)) as? [String: Any])
        let eps = try #require(json["endpoints"] as? [[String: Any]])
        let addr = try #require((eps.compactMap { $0["addresses"] as? [String] }.joined()).first { $0.hasPrefix("10.192.") })
        let bytes = addr.split(separator: ".").map { UInt8($0)! } + [0, 0, 31, 144]
        #expect(DaemonCluster.changeID(inElementBytes: bytes) == id)
        #expect(DaemonCluster.changeID(inElementBytes: [10, 128, 0, 1]) == nil)
        _ = try JSONSerialization.jsonObject(with: Data(c.serviceJSON(2).utf8))
        _ = try JSONSerialization.jsonObject(with: Data(DaemonCluster.nodeJSON.utf8))
    }
}
