import Foundation

/// The datapath helper (`PacketHelperScript`) installed in a temporary directory for one
/// topology's lifetime, and the processes it runs inside that topology's namespaces:
/// servers that answer with the address pair they saw, probes, traffic streams, sessions.
/// `close()` (also on deinit) kills every process it started and removes the script.
public final class PacketHelper: @unchecked Sendable {
    /// The Python interpreter the helper runs under.
    public let python: String
    private let directory: URL
    private let path: String
    private var processes: [LineProcess] = []
    private let lock = NSLock()
    private var closed = false

    public init() throws {
        python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-dp-\(UUID().uuidString.prefix(8))")
        path = directory.appendingPathComponent("helper.py").path
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try PacketHelperScript.source.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Starts the helper with `arguments` inside `ns`, tracked for `close()`.
    func spawn(in ns: NetworkNamespace, _ arguments: [String]) throws -> LineProcess {
        let p = try LineProcess(["ip", "netns", "exec", ns.name, python, path] + arguments)
        lock.lock()
        processes.append(p)
        lock.unlock()
        return p
    }

    /// Servers inside `ns` on every address × port (TCP and UDP, SCTP with `sctp`), each
    /// connection answered with `<local ip> <local port> <peer ip> <peer port>`. Returns once
    /// they listen; terminating the process stops them.
    public func serve(in ns: NetworkNamespace, addresses: [String], ports: [UInt16], sctp: Bool = false) throws -> LineProcess {
        let p = try spawn(in: ns, ["serve", addresses.joined(separator: ","), ports.map(String.init).joined(separator: ","),
                                   "900", sctp ? "1" : "0"])
        guard p.readLine(timeout: 60) == "ready" else {
            p.terminate()
            throw TopologyError.helperFailed("servers on \(addresses) did not start: \(p.stderrText)")
        }
        return p
    }

    /// Runs a batch of probes inside `ns` (concurrently; attempts within a probe one after
    /// the other) and returns the helper's decoded JSON answer.
    func runProbes(in ns: NetworkNamespace, _ probes: [ServiceTopology.Probe]) throws -> Any {
        let spec = String(decoding: try JSONEncoder().encode(["probes": probes]), as: UTF8.self)
        let r = try ns.runChecked([python, path, "probe", spec])
        guard let data = r.stdout.split(separator: "\n").last.map({ Data($0.utf8) }),
              let obj = try? JSONSerialization.jsonObject(with: data) else {
            throw TopologyError.helperFailed("probe output unreadable: \(r.stdout) \(r.stderr)")
        }
        return obj
    }

    /// The answers of every probe (TCP or SCTP; UDP probes need distinct source ports, which
    /// `ServiceTopology.probe` assigns) run inside `ns`.
    public func probe(in ns: NetworkNamespace, _ probes: [ServiceTopology.Probe]) throws -> [[ServiceTopology.Answer]] {
        let raw = try runProbes(in: ns, probes)
        guard let arrays = raw as? [[String]] else { throw TopologyError.helperFailed("bad probe output: \(raw)") }
        return arrays.map { $0.map(ServiceTopology.Answer.init) }
    }

    /// Connection attempts of `probe` from `ns` until `TrafficStream.stop()` (see
    /// `ServiceTopology.startTraffic`). `pause` seconds between a loop's attempts caps the
    /// rate (a long stream of back-to-back connections would run through the client's
    /// ephemeral ports, each held in TIME_WAIT for a minute); 0 runs them back to back.
    public func startTraffic(in ns: NetworkNamespace, _ probe: ServiceTopology.Probe, parallel: Int = 1,
                             pause: Double = 0) throws -> TrafficStream {
        struct Spec: Encodable { var probe: ServiceTopology.Probe; var parallel: Int; var pause: Double }
        let spec = String(decoding: try JSONEncoder().encode(Spec(probe: probe, parallel: parallel, pause: pause)), as: UTF8.self)
        let p = try spawn(in: ns, ["stream", spec])
        let stream = TrafficStream(process: p, probe: probe, loops: parallel)
        guard p.readLine(timeout: 60) == "started" else {
            p.terminate()
            throw TopologyError.helperFailed("traffic stream did not start: \(p.stderrText)")
        }
        return stream
    }

    /// An HTTP GET of `url` from inside `ns` (5 s timeout): the status and body, or nil
    /// when no HTTP answer came (connection refused, timeout).
    public func httpGet(in ns: NetworkNamespace, _ url: String) throws -> (status: Int, body: String)? {
        let r = try ns.runChecked([python, path, "http", url])
        let text = r.stdout.trimmingCharacters(in: .newlines)
        guard let space = text.firstIndex(of: " "), let status = Int(text[..<space]) else { return nil }
        let encoded = Data(text[text.index(after: space)...].utf8)
        guard let body = try? JSONSerialization.jsonObject(with: encoded, options: [.fragmentsAllowed]) as? String else {
            throw TopologyError.helperFailed("http answer unreadable: \(text)")
        }
        return (status, body)
    }

    /// Kills every process started here and removes the script; safe to call twice.
    public func close() {
        lock.lock()
        let wasClosed = closed
        closed = true
        let ps = processes
        processes = []
        lock.unlock()
        guard !wasClosed else { return }
        for p in ps { p.terminate() }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { close() }
}
