import Foundation
import Logging
import SluiceCompiler
import SluiceDaemon
import SluiceIR
import SluiceModel
import SluiceNetlink
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

let nodeName = "node-a"

func testOptions() -> NodeOptions {
    NodeOptions(nodeName: nodeName, nodeIPs: [IPAddress("10.77.0.1")!])
}

/// A Service with one port `p`; with `nodePort` it is `type: NodePort`.
func serviceYAML(_ name: String, ns: String = "default", clusterIP: String, port: Int = 80, targetPort: Int = 8080,
                 proto: String = "TCP", nodePort: Int? = nil, extraSpec: [String] = [], status: [String] = []) -> String {
    var lines = ["apiVersion: v1", "kind: Service", "metadata: {name: \(name), namespace: \(ns)}", "spec:",
                 "  clusterIP: \"\(clusterIP)\""]
    if nodePort != nil { lines.append("  type: NodePort") }
    lines += extraSpec.map { "  " + $0 }
    let np = nodePort.map { ", nodePort: \($0)" } ?? ""
    lines += ["  ports:", "  - {name: p, port: \(port), targetPort: \(targetPort), protocol: \(proto)\(np)}"]
    if !status.isEmpty { lines.append("status:"); lines += status.map { "  " + $0 } }
    return lines.joined(separator: "\n") + "\n"
}

func sliceYAML(_ name: String, service: String, ns: String = "default", ips: [String], port: Int = 8080,
               proto: String = "TCP", nodeName: String? = nil, ready: Bool = true, annotations: [String: String] = [:]) -> String {
    var lines = ["apiVersion: discovery.k8s.io/v1", "kind: EndpointSlice", "metadata:", "  name: \(name)", "  namespace: \(ns)",
                 "  labels: {kubernetes.io/service-name: \(service)}"]
    if !annotations.isEmpty {
        lines.append("  annotations:")
        lines += annotations.sorted { $0.key < $1.key }.map { "    \($0.key): \"\($0.value)\"" }
    }
    lines += ["addressType: IPv4", "ports:", "- {name: p, port: \(port), protocol: \(proto)}", "endpoints:"]
    for ip in ips {
        lines.append("- addresses: [\"\(ip)\"]")
        lines.append("  conditions: {ready: \(ready)}")
        if let nodeName { lines.append("  nodeName: \(nodeName)") }
    }
    if ips.isEmpty { lines[lines.count - 1] = "endpoints: []" }
    return lines.joined(separator: "\n") + "\n"
}

/// A temporary manifests directory, removed by `close()`.
final class ManifestDir: @unchecked Sendable {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "sluice-daemon-test-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes atomically (rename), as editors and ConfigMap updates do.
    func write(_ name: String, _ text: String) throws {
        let tmp = path + "/." + name + ".tmp"
        try text.write(toFile: tmp, atomically: false, encoding: .utf8)
        guard rename(tmp, path + "/" + name) == 0 else { throw DaemonError("rename failed") }
    }

    func remove(_ name: String) throws { try FileManager.default.removeItem(atPath: path + "/" + name) }

    func close() { try? FileManager.default.removeItem(atPath: path) }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns the time it took.
/// The default is generous: the full suite runs kernel-heavy tests in parallel on 2 cores.
@discardableResult
func waitUntil(_ what: String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Duration {
    let start = ContinuousClock.now
    while true {
        if try await condition() { return ContinuousClock.now - start }
        if ContinuousClock.now - start > timeout {
            Issue.record("timed out after \(timeout) waiting for: \(what)")
            throw DaemonError("timed out waiting for \(what)")
        }
        try await Task.sleep(for: .milliseconds(50))
    }
}

/// The expected ruleset for the files in `dir`: the batch pipeline on the same input.
func batchRuleset(_ dir: String, options: NodeOptions = testOptions()) -> Ruleset {
    let loaded = ManifestLoader().load(paths: [dir])
    return Pipeline.compile(objects: loaded.objects, options: options).ruleset
}

/// Sluice's tables as the kernel has them in namespace `ns`.
func kernelRuleset(_ ns: String, desired: Ruleset) throws -> Ruleset {
    let applier = try NftablesApplier(namespace: ns)
    try applier.adopt(tables: Family.allCases.map { ($0, Layout.tableName) }, desired: desired)
    return applier.committed
}

/// True when the kernel's tables in `ns` equal the batch compile of `dir`.
func kernelMatches(_ ns: String, _ dir: String) throws -> Bool {
    let want = batchRuleset(dir)
    let have = try kernelRuleset(ns, desired: want)
    return diff(have, want).isEmpty
}

let testLogger: Logger = {
    var l = Logger(label: "sluice-test")
    l.logLevel = .warning
    return l
}()

/// Runs a daemon in the background for `body`, stopping it (cancellation) afterwards.
func withDaemon<T>(_ configuration: DaemonConfiguration, _ body: (Daemon) async throws -> T) async throws -> T {
    let daemon = Daemon(configuration: configuration, logger: testLogger)
    // Started on the daemon's own executor: the cooperative pool may be saturated by
    // blocking kernel tests running in parallel.
    let task = Task(executorPreference: DaemonExecutor()) { try await daemon.run() }
    do {
        let r = try await body(daemon)
        task.cancel()
        _ = try? await task.value
        return r
    } catch {
        task.cancel()
        _ = try? await task.value
        throw error
    }
}

typealias HTTPResult = HTTPResponse

/// A blocking HTTP/1.0 GET on 127.0.0.1 (loopback only).
func httpGet(port: Int, path: String) throws -> HTTPResult {
    try loopbackGet(port: port, path: path)
}

/// The value of one sample line of a Prometheus exposition (`name{labels} value`).
func metricValue(_ exposition: String, _ sample: String) -> Double? {
    for line in exposition.split(separator: "\n") where line.hasPrefix(sample + " ") {
        return Double(line.split(separator: " ").last ?? "")
    }
    return nil
}

/// The `sluice` executable next to the test bundle.
func sluiceExecutable() throws -> String {
    var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").deletingLastPathComponent()
    for _ in 0..<6 {
        let candidate = dir.appendingPathComponent("sluice").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    let fallback = FileManager.default.currentDirectoryPath + "/.build/debug/sluice"
    if FileManager.default.isExecutableFile(atPath: fallback) { return fallback }
    throw DaemonError("the sluice executable was not built (swift build --product sluice)")
}

/// Two namespaces for real-packet tests: `node` (where the daemon programs nftables) and
/// `srv` (the endpoints, 10.77.0.2–.4 unless given, each a TCP server on 8080 answering
/// "served by <addr>").
/// Services live in 10.96.0.0/16, routed from the node towards `srv`. Both namespaces exist
/// only for the test; `close()` removes them.
final class PacketRig: @unchecked Sendable {
    let node: NetworkNamespace
    let srv: NetworkNamespace
    private var server: LineProcess?
    static let endpoints = ["10.77.0.2", "10.77.0.3", "10.77.0.4"]
    /// The addresses of `srv` that answer (in 10.77.0.0/24, not .1).
    let endpoints: [String]

    init(label: String, endpoints: [String] = PacketRig.endpoints) throws {
        self.endpoints = endpoints
        node = try NetworkNamespace(label: label)
        do {
            srv = try NetworkNamespace(label: label + "s")
        } catch {
            node.close()
            throw error
        }
        do {
            let suffix = String(node.name.suffix(6))
            let va = "va\(suffix)", vb = "vb\(suffix)"
            try runChecked(["ip", "link", "add", va, "netns", node.name, "type", "veth", "peer", "name", vb, "netns", srv.name])
            try node.runChecked(["ip", "addr", "add", "10.77.0.1/24", "dev", va])
            for a in endpoints { try srv.runChecked(["ip", "addr", "add", "\(a)/24", "dev", vb]) }
            try node.runChecked(["ip", "link", "set", va, "up"])
            try srv.runChecked(["ip", "link", "set", vb, "up"])
            try node.runChecked(["ip", "route", "add", "10.96.0.0/16", "dev", va])
            // Exits when its stdin closes (close(), or this test process dying): it must never
            // outlive the test and hold swift-test's output pipe.
            server = try LineProcess(["ip", "netns", "exec", srv.name, "python3", "-c", """
                import socket, sys, threading
                def serve(s, addr):
                    while True:
                        c, _ = s.accept(); c.sendall(("served by " + addr).encode()); c.close()
                for a in "\(endpoints.joined(separator: " "))".split():
                    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((a, 8080)); s.listen(64)
                    threading.Thread(target=serve, args=(s, a), daemon=True).start()
                print("ready", flush=True)
                sys.stdin.read()
                """])
            // Every endpoint listens once the server says so (the deadline is a safety net).
            guard server?.readLine(timeout: 60) == "ready" else {
                throw DaemonError("endpoint servers did not start: \(server?.stderrText ?? "")")
            }
        } catch {
            close()
            throw error
        }
    }

    /// Outcomes of `count` fresh TCP connections from the node to `ip:port`, one after the
    /// other (so that ClientIP affinity, recorded by the first, holds for the next):
    /// "served by <endpoint>", "refused" (the no-endpoint reject), or "timeout" (1 s).
    func connect(_ ip: String, _ port: Int = 80, count: Int = 1) throws -> [String] {
        try probe([ip], port: port, count: count, parallel: 1)[ip] ?? []
    }

    /// `count` fresh TCP connections from the node to each `ip:port`, `parallel` at a time
    /// (1 s timeout each): the outcomes per address, as `connect` reports them.
    func probe(_ ips: [String], port: Int = 80, count: Int, parallel: Int = 64) throws -> [String: [String]] {
        let r = try node.runChecked(["python3", "-c", """
            import socket, sys
            from concurrent.futures import ThreadPoolExecutor
            ips, port, n, workers = sys.argv[1].split(), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
            def once(ip):
                try:
                    c = socket.create_connection((ip, port), timeout=1)
                    data = c.recv(100).decode(); c.close()
                    return data or "empty"
                except ConnectionRefusedError:
                    return "refused"
                except OSError:
                    return "timeout"
            jobs = [ip for ip in ips for _ in range(n)]
            with ThreadPoolExecutor(workers) as pool:
                for ip, outcome in zip(jobs, pool.map(once, jobs)):
                    print(ip, outcome)
            """, ips.joined(separator: " "), "\(port)", "\(count)", "\(parallel)"])
        var out: [String: [String]] = [:]
        for line in r.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            if parts.count == 2 { out[parts[0], default: []].append(parts[1]) }
        }
        return out
    }

    /// The endpoints that answered `count` connections.
    func servedBy(_ ip: String, _ port: Int = 80, count: Int = 1) throws -> Set<String> {
        Set(try connect(ip, port, count: count).map { $0.hasPrefix("served by ") ? String($0.dropFirst(10)) : $0 })
    }

    func close() {
        server?.terminate()
        node.close()
        srv.close()
    }
}

/// A `last-change-trigger-time` annotation later than every moment before the call, in the
/// past once it returns. The annotation has millisecond resolution, so the stamp is taken
/// 1 ms ahead of now and returned once the clock has passed it: a trigger time the daemon
/// observes (it ignores those from before it started, and those in the future).
func freshTriggerTime() async -> [String: String] {
    let stamp = Date().addingTimeInterval(0.001)
    while Date() < stamp { try? await Task.sleep(for: .microseconds(200)) }
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return ["endpoints.kubernetes.io/last-change-trigger-time": f.string(from: stamp)]
}

/// The daemon's `/metrics` port once its server is bound. The HTTP servers start beside the
/// sync loop, so a first sync does not imply they are listening yet: wait for the port.
func boundMetricsPort(_ daemon: Daemon) async throws -> Int {
    _ = try await waitUntil("metrics server bound") { daemon.metricsPort != nil }
    return try #require(daemon.metricsPort)
}

/// The daemon's `/healthz` port once its server is bound (see `boundMetricsPort`).
func boundHealthzPort(_ daemon: Daemon) async throws -> Int {
    _ = try await waitUntil("healthz server bound") { daemon.healthzPort != nil }
    return try #require(daemon.healthzPort)
}

/// Starts `sluice run ARGS` in `ns` as a child process (`ip netns exec` execs the daemon, so
/// the child's pid is the daemon's); its output goes to `log`. The cold-start test hook's
/// variables are set only from `environment`.
func startSluiceRun(_ ns: NetworkNamespace, _ args: [String], environment: [String: String] = [:], log: String) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["ip", "netns", "exec", ns.name, try sluiceExecutable(), "run"] + args
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "SLUICE_TEST_COLD_START_PAUSE")
    env.removeValue(forKey: "SLUICE_TEST_COLD_START_PAUSE_AFTER")
    p.environment = env.merging(environment) { _, new in new }
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let h = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    p.standardOutput = h
    p.standardError = h
    p.standardInput = FileHandle.nullDevice
    try p.run()
    return p
}
