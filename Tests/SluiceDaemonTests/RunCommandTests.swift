import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `sluice run` as a process inside a network namespace (`ip netns exec`): signals, cleanup
/// and kube-proxy flag handling.
@Suite("sluice run (process)", .serialized, .timeLimit(.minutes(2)))
struct RunCommandTests {
    func hasTable(_ ns: NetworkNamespace) throws -> Bool {
        try ns.run(["nft", "list", "table", "ip", "sluice"]).succeeded
    }

    func waitExit(_ p: Process, timeout: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        return !p.isRunning
    }

    @Test("SIGTERM leaves the rules in place; --cleanup removes them; --cleanup-on-exit removes them on SIGTERM")
    func signalsAndCleanup() async throws {
        try requireKernelTestEnvironment()
        let ns = try NetworkNamespace(label: "run")
        defer { ns.close() }
        let dir = try ManifestDir()
        defer { dir.close() }
        try dir.write("web.yaml", serviceYAML("web", clusterIP: "10.96.0.10") + "---\n"
                      + sliceYAML("web-1", service: "web", ips: ["10.244.1.1"]))
        let log = dir.path + "/.run.log"
        let common = ["--source", dir.path, "--hostname-override", nodeName, "--node-ip", "10.77.0.1",
                      "--healthz-bind-address", "127.0.0.1:0", "--metrics-bind-address", "127.0.0.1:0",
                      "--logging-format", "json", "--ipvs-scheduler", "rr", "--conntrack-max-per-core=0", "-v=2"]
        var p = try startSluiceRun(ns, common, log: log)
        defer { if p.isRunning { p.terminate() } }
        try await waitUntil("table created", timeout: .seconds(30)) { try hasTable(ns) }
        kill(p.processIdentifier, SIGTERM)
        #expect(waitExit(p), "sluice run did not stop on SIGTERM")
        #expect(p.terminationStatus == 0)
        #expect(try hasTable(ns), "SIGTERM must leave the rules in place")
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("\"msg\":\"flag accepted but ignored"), "log: \(text)")
        #expect(text.contains("--ipvs-scheduler") && text.contains("--conntrack-max-per-core"))

        // Restart: adopts the table (no flush), then --cleanup-on-exit deletes it on SIGTERM.
        p = try startSluiceRun(ns, common + ["--cleanup-on-exit"], log: log)
        try await waitUntil("restarted daemon serving") {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("\"msg\":\"first sync applied\"")
        }
        #expect(try hasTable(ns))
        kill(p.processIdentifier, SIGTERM)
        #expect(waitExit(p))
        #expect(try !hasTable(ns), "--cleanup-on-exit must delete the table")

        // --cleanup deletes and exits.
        p = try startSluiceRun(ns, common, log: log)
        try await waitUntil("table created again", timeout: .seconds(30)) { try hasTable(ns) }
        kill(p.processIdentifier, SIGINT)
        #expect(waitExit(p))
        #expect(try hasTable(ns))
        let cleanup = try ns.run([try sluiceExecutable(), "run", "--cleanup"])
        #expect(cleanup.succeeded, "\(cleanup.stderr)")
        #expect(try !hasTable(ns))
    }

    @Test("--config: the daemon exits with an error when the file's content changes (kube-proxy does), not on a touch")
    func exitsOnConfigChange() async throws {
        try requireKernelTestEnvironment()
        let ns = try NetworkNamespace(label: "cfg")
        defer { ns.close() }
        let dir = try ManifestDir()
        defer { dir.close() }
        try dir.write("web.yaml", serviceYAML("web", clusterIP: "10.96.0.10") + "---\n"
                      + sliceYAML("web-1", service: "web", ips: ["10.244.1.1"]))
        let config = dir.path + "/.kube-proxy.yaml"
        let text = """
            apiVersion: kubeproxy.config.k8s.io/v1alpha1
            kind: KubeProxyConfiguration
            mode: nftables
            hostnameOverride: \(nodeName)
            healthzBindAddress: 127.0.0.1:0
            metricsBindAddress: 127.0.0.1:0

            """
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let log = dir.path + "/.run.log"
        let p = try startSluiceRun(ns, ["--source", dir.path, "--config", config, "--node-ip", "10.77.0.1", "--logging-format", "json"], log: log)
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        try await waitUntil("table created", timeout: .seconds(30)) { try hasTable(ns) }
        // Same content rewritten: nothing changed, keep running. Waits until the daemon has
        // read the new file twice: the second read begins only after the first read's
        // comparison let it carry on (however long its check interval takes on this machine).
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let reads = try FileReads(path: config)
        defer { reads.close() }
        try await waitUntil("the daemon read the rewritten config twice", timeout: .seconds(60)) { reads.count >= 2 || !p.isRunning }
        #expect(p.isRunning, "exited although the content did not change")
        try (text + "masqueradeAll: true\n").write(toFile: config, atomically: true, encoding: .utf8)
        #expect(waitExit(p, timeout: 20), "sluice run kept running after its --config changed")
        #expect(p.terminationStatus != 0)
        let out = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(out.contains("the configuration file changed"), "log: \(out)")
        #expect(try hasTable(ns), "exiting for a config change leaves the rules in place")
    }

    @Test("--proxy-mode other than nftables, unknown flags, --cold-start-chunk 0 and --version")
    func flags() throws {
        let exe = try sluiceExecutable()
        let bad = try runCommand([exe, "run", "--proxy-mode", "ipvs", "--source", "/nonexistent"])
        #expect(!bad.succeeded)
        #expect(bad.stderr.contains("proxy mode \"ipvs\" is not supported"), "\(bad.stderr)")
        let unknown = try runCommand([exe, "run", "--no-such-flag", "--source", "/nonexistent"])
        #expect(!unknown.succeeded && unknown.stderr.contains("--no-such-flag"), "\(unknown.stderr)")
        let chunk = try runCommand([exe, "run", "--cold-start-chunk", "0", "--source", "/nonexistent"])
        #expect(!chunk.succeeded && chunk.stderr.contains("--cold-start-chunk must be a positive number"), "\(chunk.stderr)")
        let help = try runCommand([exe, "run", "--help"])
        #expect(help.succeeded && !help.stdout.contains("cold-start-chunk"), "--cold-start-chunk is a hidden testing option")
        let version = try runCommand([exe, "run", "--version"])
        #expect(version.succeeded && version.stdout.contains("sluice "))
    }
}
