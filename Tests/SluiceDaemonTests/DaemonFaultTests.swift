import Foundation
import Glibc
import SluiceDaemon
import SluiceIR
@testable import SluiceNetlink
import SluiceTestSupport
import Testing

/// The daemon's sync loop over a real `NftablesApplier` whose socket has a
/// `NetlinkFaultInjector`: after each fault the loop's retry (a full resync after
/// `retryPeriod`) leaves the kernel equal to a fresh compile of the final objects.
@Suite("Daemon under netlink faults (kernel)", .serialized, .timeLimit(.minutes(3)))
struct DaemonFaultTests {
    static let services = 8

    /// Service `svc<i>` with `endpoints` endpoints, one file per service.
    func writeService(_ dir: ManifestDir, _ i: Int, endpoints: Int) throws {
        try dir.write("svc\(i).yaml", serviceYAML("svc\(i)", clusterIP: "10.96.0.\(10 + i)") + "---\n"
                      + sliceYAML("svc\(i)-1", service: "svc\(i)", ips: (1...endpoints).map { "10.244.\(i).\($0)" }))
    }

    /// (Call after `boundMetricsPort`.)
    func syncFailures(_ daemon: Daemon) throws -> Double {
        let body = try httpGet(port: try #require(daemon.metricsPort), path: "/metrics").body
        return metricValue(body, "kubeproxy_sync_proxy_rules_nftables_sync_failures_total") ?? -1
    }

    /// Edits a file and waits until the sync that fails on the armed fault has been retried:
    /// one more sync failure, one more successful commit, and the kernel equal to a fresh
    /// compile of the directory.
    func change(_ what: String, daemon: Daemon, ns: NetworkNamespace, dir: ManifestDir, faults: NetlinkFaultInjector,
                _ edit: () throws -> Void) async throws {
        let failures = try syncFailures(daemon), commits = await daemon.commits(), injected = faults.injected
        try edit()
        try await waitUntil("\(what): retried and converged") {
            let committed = await daemon.commits()
            return try syncFailures(daemon) > failures && committed > commits && kernelMatches(ns.name, dir.path)
        }
        #expect(faults.injected > injected, "\(what): the fault took effect")
        #expect(try syncFailures(daemon) == failures + 1, "\(what): one failed sync, then the retry")
    }

    @Test("a cold start refused at batch 3, a socket closed mid-batch, a lost verdict, a foreign commit (ERESTART): each retry converges")
    func convergesAfterEachFault() async throws {
        try requireKernelTestEnvironment()
        let ns = try NetworkNamespace(label: "dflt")
        defer { ns.close() }
        let dir = try ManifestDir()
        defer { dir.close() }
        for i in 0..<Self.services { try writeService(dir, i, endpoints: 3) }
        // The cold start streams transactions of ≤ 10 elements (one or two services each);
        // the third is refused by the kernel.
        let faults = NetlinkFaultInjector([3: [.refuse]])
        var c = DaemonConfiguration(options: testOptions(), sources: [ManifestDirectorySource(paths: [dir.path], interval: .milliseconds(100))],
                                    netns: ns.name, healthzBindAddress: "127.0.0.1:0", metricsBindAddress: "127.0.0.1:0",
                                    healthCheckBindHost: "127.0.0.1", retryPeriod: .milliseconds(200))
        c.coldStartChunk = 10
        let name = ns.name
        c.dataplane = {
            let applier = try NftablesApplier(namespace: name, tracksElements: false)
            try applier.takeOwnership()
            applier.socket.faults = faults
            return applier
        }
        try await withDaemon(c) { daemon in
            _ = try await boundMetricsPort(daemon)
            try await waitUntil("first sync converged after the refused batch") {
                let committed = await daemon.commits()
                return try committed >= 1 && kernelMatches(ns.name, dir.path)
            }
            #expect(faults.injected == 1, "the cold-start batch was refused")
            #expect(faults.batchesSent > 3, "the cold start had more than three batches: \(faults.batchesSent)")
            #expect(try syncFailures(daemon) == 1)

            faults.armNext(.closeAfterSend)
            try await change("socket closed mid-batch", daemon: daemon, ns: ns, dir: dir, faults: faults) {
                try writeService(dir, 0, endpoints: 5)
            }
            faults.armNext(.receiveError(ENOBUFS))
            try await change("verdict lost (ENOBUFS on receive)", daemon: daemon, ns: ns, dir: dir, faults: faults) {
                try dir.remove("svc1.yaml")
            }
            faults.armNext(.sendError(ENOBUFS))
            try await change("ENOBUFS on send", daemon: daemon, ns: ns, dir: dir, faults: faults) {
                try writeService(dir, 9, endpoints: 2)
            }
            faults.armNext(.beforeSend {
                _ = try? NetlinkSocket(namespace: name).commit([.addTable(.ip, "foreign", comment: nil)])
            })
            try await change("generation changed (ERESTART)", daemon: daemon, ns: ns, dir: dir, faults: faults) {
                try writeService(dir, 2, endpoints: 1)
            }
            #expect(try ns.runChecked(["nft", "list", "tables"]).stdout.contains("foreign"), "the foreign commit happened")
            // The table is still owned by the daemon's (new) socket: another writer is refused.
            let foreign = try ns.run(["nft", "add", "element", "ip", "sluice", "cluster-ips", "{ 10.96.9.9 }"])
            #expect(!foreign.succeeded, "the table is owned again after the reopen: \(foreign)")
        }
    }
}
