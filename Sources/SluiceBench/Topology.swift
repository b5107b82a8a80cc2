import Foundation
import SluiceModel

/// client ns ── veth ── node ns ── veth ── server ns.
///
/// - client 10.200.1.2/24, default route via the node (10.200.1.1);
/// - node: forwarding on, route to the endpoint ranges (10.128.0.0/9) via the server
///   (10.200.2.2); the proxy under test programs this namespace;
/// - server: 10.200.2.2/24 plus the probe service's endpoint addresses, a TCP accept loop
///   on port 8080.
public final class Topology: @unchecked Sendable {
    public let tag: String
    public let node: Netns
    public let client: Netns
    public let server: Netns

    public init(label: String, probeEndpoints: [IPAddress]) throws {
        tag = randomTag(6)
        let base = "sluice-bench-\(label)-\(tag)"
        node = try Netns("\(base)-node")
        do {
            client = try Netns("\(base)-cli")
            server = try Netns("\(base)-srv")
        } catch {
            node.close()
            throw error
        }
        do {
            let vc = "sbc\(tag)", vcn = "sbcn\(tag)", vs = "sbs\(tag)", vsn = "sbsn\(tag)"
            try runChecked(["ip", "link", "add", vc, "netns", client.name, "type", "veth", "peer", "name", vcn, "netns", node.name])
            try runChecked(["ip", "link", "add", vs, "netns", server.name, "type", "veth", "peer", "name", vsn, "netns", node.name])
            try client.exec(["ip", "addr", "add", "10.200.1.2/24", "dev", vc])
            try client.exec(["ip", "link", "set", vc, "up"])
            try client.exec(["ip", "route", "add", "default", "via", "10.200.1.1"])
            try node.exec(["ip", "addr", "add", "10.200.1.1/24", "dev", vcn])
            try node.exec(["ip", "addr", "add", "10.200.2.1/24", "dev", vsn])
            try node.exec(["ip", "link", "set", vcn, "up"])
            try node.exec(["ip", "link", "set", vsn, "up"])
            try node.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            try node.exec(["ip", "route", "add", "10.128.0.0/9", "via", "10.200.2.2"])
            try server.exec(["ip", "addr", "add", "10.200.2.2/24", "dev", vs])
            for ip in probeEndpoints { try server.exec(["ip", "addr", "add", "\(ip)/32", "dev", vs]) }
            try server.exec(["ip", "link", "set", vs, "up"])
            try server.exec(["ip", "route", "add", "default", "via", "10.200.2.1"])
        } catch {
            close()
            throw error
        }
    }

    /// The connection-rate probe for this topology.
    public var probe: ConnProbe { ConnProbe(client: client.name, server: server.name) }

    public func close() {
        client.close()
        server.close()
        node.close()
    }
}

/// Connection-rate test between a topology's client and server namespaces, by name (so the
/// Sluice worker process can run it too).
public final class ConnProbe: @unchecked Sendable {
    public let client: String
    public let server: String
    private var serverProcess: Process?

    public init(client: String, server: String) {
        self.client = client
        self.server = server
    }

    static let serverScript = """
    import socket
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080))
    s.listen(4096)
    while True:
        c, _ = s.accept()
        c.close()
    """

    static let clientScript = """
    import socket, struct, sys, time
    dst = (sys.argv[1], int(sys.argv[2])); dur = float(sys.argv[3])
    linger = struct.pack("ii", 1, 0)
    deadline = time.monotonic() + 5
    while True:
        s = socket.socket(); s.settimeout(1)
        try:
            s.connect(dst); s.close(); break
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                print("0 0 unreachable"); sys.exit(0)
            time.sleep(0.05)
    n = 0; err = 0
    t0 = time.monotonic(); end = t0 + dur
    while True:
        t = time.monotonic()
        if t >= end: break
        s = socket.socket(); s.settimeout(1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        try:
            s.connect(dst); n += 1
        except OSError:
            err += 1
        s.close()
    print(n, err, time.monotonic() - t0)
    """

    public func startServer() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = Netns.commandIn(server, ["python3", "-c", Self.serverScript])
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        ChildRegistry.shared.add(p.processIdentifier)
        serverProcess = p
    }

    public func stopServer() {
        guard let p = serverProcess else { return }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        ChildRegistry.shared.remove(p.processIdentifier)
        serverProcess = nil
    }

    /// New TCP connections per second from the client to `ip:port` (connect, then close
    /// with RST so no TIME_WAIT piles up), `reps` runs of `seconds` each.
    public func connectionRate(to ip: IPAddress, port: UInt16, seconds: Double, reps: Int = 3) throws -> Metric {
        try startServer()
        defer { stopServer() }
        var rates: [Double] = []
        var errors = 0
        for _ in 0..<reps {
            let r = try Netns.runIn(client, ["python3", "-c", Self.clientScript, "\(ip)", "\(port)", "\(seconds)"], timeout: seconds + 30)
            guard r.ok else { throw BenchError("connection test failed: \(r.stderr.prefix(500))") }
            let parts = r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" })
            guard parts.count >= 3, let n = Double(parts[0]), let e = Int(parts[1]) else {
                throw BenchError("connection test: unreachable service \(ip):\(port) (\(r.stdout.prefix(200)))")
            }
            guard let dur = Double(parts[2]), n > 0 else { throw BenchError("connection test: no connection succeeded") }
            rates.append(n / dur)
            errors += e
        }
        let s = Summary(rates)!
        return Metric(status: .ok, unit: "conn/s", value: s.p50, summary: s, samples: rates,
                      detail: ["failedConnects": Double(errors)],
                      note: "client ns → node ns (DNAT) → server ns; python3 connect/RST loop, median of \(reps) × \(seconds) s")
    }

}

extension Netns {
    static func commandIn(_ ns: String, _ args: [String]) -> [String] { ["nsenter", "--net=/run/netns/\(ns)"] + args }
    static func runIn(_ ns: String, _ args: [String], timeout: Double) throws -> ProcResult {
        try runProc(commandIn(ns, args), timeout: timeout)
    }
}
