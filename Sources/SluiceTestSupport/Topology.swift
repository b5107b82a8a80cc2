import Foundation
import SluiceIR
#if canImport(Glibc)
import Glibc
#endif

/// A Kubernetes node in miniature, built from network namespaces, for real-packet tests.
///
/// ```
///   pod client  ──veth── ┐                     ┌── veth ── endpoints (pods 1…6, servers)
///   10.0.1.5, .100…      │                     │           10.180.0.1…6 / fd00:180::1…6
///                        node  (ruleset loaded here, forwarding on)
///   external client ─veth┘ │                   
///   203.0.113.10 / .200    └── up0 ══ up1  dead-end uplink: node IPs 192.168.0.2 (+ .1.2),
///                                           default routes via a neighbour that never answers
/// ```
///
/// - The **node** namespace holds the ruleset. Its uplink `up0` carries the node IPs and the
///   default routes; its veth peer `up1` stays in the node namespace and drops what it gets
///   (frames to a MAC nobody has), so unrouted service IPs still traverse every hook. A
///   separate `inet sluice-probe` table counts TCP/UDP/SCTP packets leaving through `up0`:
///   a packet that should have been dropped or DNATed but leaked shows up there.
/// - **pod** and **external** clients each sit behind their own veth, routed via the node.
/// - The **endpoints** namespace carries every endpoint address on one veth and runs servers
///   on each address and port that answer with `<local ip> <local port> <peer ip> <peer port>`,
///   so a test sees which endpoint answered and whether the source was masqueraded. Which
///   endpoints are "local" (same node) is purely a property of the plan.
///
/// Every name is unique per topology; nothing is created in, or connects to, the root
/// namespace. `close()` (also on deinit) kills the helper processes and deletes the namespaces.
public final class ServiceTopology: @unchecked Sendable {
    /// Where a probe starts.
    public enum Host: String, Sendable, CaseIterable {
        case node, pod, external, endpoints
    }

    /// The address plan for one IP family.
    public struct Addresses: Sendable {
        public let family: Family
        /// The pod network (`--cluster-cidr`), containing the pod client and every endpoint.
        public let podCIDR: String
        /// The ServiceCIDR; ClusterIPs used by tests come from here.
        public let serviceCIDR: String
        /// The node's primary IP (on the uplink): the NodePort address.
        public let nodeIP: String
        /// Another local address of the node, not a NodePort address unless `.all`.
        public let otherNodeIP: String
        /// The node's address on each veth (what a masqueraded endpoint sees is `nodeTowardEndpoints`).
        public let nodeTowardPods: String
        public let nodeTowardExternal: String
        public let nodeTowardEndpoints: String
        /// The pod client's main address and extra source addresses (distinct clients).
        public let podClient: String
        public let extraPodClients: [String]
        /// External client inside `externalRange`, and one outside it.
        public let externalClient: String
        public let externalOutsider: String
        public let externalRange: String
        /// Endpoint (pod) addresses behind the node.
        public let endpoints: [String]
        /// Addresses routed nowhere but the dead end: load balancer VIPs and external IPs.
        public let loadBalancerIP: String
        public let loadBalancerIP2: String
        public let externalIP: String

        var prefix: Int { family == .ip ? 24 : 64 }
        var hostPrefix: Int { family == .ip ? 32 : 128 }
        /// `ip` option selecting this family.
        var ipFlag: String { family == .ip ? "-4" : "-6" }

        /// A ClusterIP inside the ServiceCIDR, numbered like `172.30.0.<n>` / `fd01::<n>`.
        public func serviceIP(_ n: Int) -> String { family == .ip ? "172.30.0.\(n)" : "fd01::\(n)" }
    }

    public static let v4 = Addresses(
        family: .ip, podCIDR: "10.0.0.0/8", serviceCIDR: "172.30.0.0/16",
        nodeIP: "192.168.0.2", otherNodeIP: "192.168.1.2",
        nodeTowardPods: "10.0.1.1", nodeTowardExternal: "203.0.113.1", nodeTowardEndpoints: "10.180.0.254",
        podClient: "10.0.1.5", extraPodClients: (100...111).map { "10.0.1.\($0)" },
        externalClient: "203.0.113.10", externalOutsider: "203.0.113.200", externalRange: "203.0.113.0/25",
        endpoints: (1...6).map { "10.180.0.\($0)" },
        loadBalancerIP: "198.51.100.50", loadBalancerIP2: "198.51.100.51", externalIP: "198.51.100.60")

    public static let v6 = Addresses(
        family: .ip6, podCIDR: "fd00::/16", serviceCIDR: "fd01::/112",
        nodeIP: "2001:db8::2", otherNodeIP: "2001:db8:2::2",
        nodeTowardPods: "fd00:10::1", nodeTowardExternal: "2001:db8:1::1", nodeTowardEndpoints: "fd00:180::fe",
        podClient: "fd00:10::5", extraPodClients: (0x100...0x10b).map { "fd00:10::\(String($0, radix: 16))" },
        externalClient: "2001:db8:1::10", externalOutsider: "2001:db8:1::200", externalRange: "2001:db8:1::/120",
        endpoints: (1...6).map { "fd00:180::\($0)" },
        loadBalancerIP: "2001:db8:5::50", loadBalancerIP2: "2001:db8:5::51", externalIP: "2001:db8:5::60")

    public static func addresses(_ family: Family) -> Addresses { family == .ip ? v4 : v6 }

    public let node: NetworkNamespace
    public let pod: NetworkNamespace
    public let external: NetworkNamespace
    public let endpoints: NetworkNamespace
    /// Ports every endpoint server listens on.
    public let endpointPorts: [UInt16]
    /// Whether this kernel can open SCTP sockets (checked inside the endpoints namespace).
    public let sctpSupported: Bool

    /// The helper processes (servers, probes, streams, sessions) of this topology.
    private let helper: PacketHelper
    private let lock = NSLock()
    private var closed = false
    private var nextUDPSourcePort = 10_000

    /// Builds the namespaces, links, addresses and servers.
    public init(label: String = "dp", endpointPorts: [UInt16] = [8080, 8081]) throws {
        self.endpointPorts = endpointPorts
        let helper = try PacketHelper()
        self.helper = helper
        var made: [NetworkNamespace] = []
        func cleanUp() {
            for n in made { n.close() }
            helper.close()
        }
        let sctp: Bool
        do {
            func ns(_ role: String) throws -> NetworkNamespace {
                let n = try NetworkNamespace(label: "\(label.prefix(8))-\(role)")
                made.append(n)
                return n
            }
            let (n, p, e, s) = (try ns("node"), try ns("pod"), try ns("ext"), try ns("eps"))
            sctp = try Self.build(node: n, pod: p, external: e, endpoints: s)
        } catch {
            cleanUp()
            throw error
        }
        node = made[0]
        pod = made[1]
        external = made[2]
        endpoints = made[3]
        sctpSupported = sctp
        do {
            try startServers()
        } catch {
            close()
            throw error
        }
    }

    /// Whether the kernel can open SCTP sockets, checked in a throwaway namespace (the
    /// `sctp` module may be absent, as on the development machines).
    public static func kernelSupportsSCTP() -> Bool { kernelHasSCTP }

    /// Checked once per process.
    private static let kernelHasSCTP: Bool = {
        guard getuid() == 0, let ns = try? NetworkNamespace(label: "sctp") else { return false }
        defer { ns.close() }
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
        let r = try? ns.run([python, "-c", "import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()"])
        return r?.succeeded ?? false
    }()

    public func namespace(_ host: Host) -> NetworkNamespace {
        switch host {
        case .node: node
        case .pod: pod
        case .external: external
        case .endpoints: endpoints
        }
    }

    private static func build(node: NetworkNamespace, pod: NetworkNamespace, external: NetworkNamespace,
                              endpoints: NetworkNamespace) throws -> Bool {
        let all = [node, pod, external, endpoints]
        for n in all {
            // No DAD: IPv6 addresses are usable at once; no ICMP rate limits: every reject answers.
            try n.runChecked(["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
                              "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"])
        }
        try node.runChecked(["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                             "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"])
        // Every `ip` command goes into one `ip -n <ns> -batch -` per namespace (a test builds
        // dozens of links, addresses and routes; one process each would dominate set-up).
        var batches: [String: [String]] = [:]
        func ip(_ n: NetworkNamespace, _ args: String...) {
            batches[n.name, default: []].append(args.joined(separator: " "))
        }
        // Veths are created inside the node namespace with the peer moved straight into its
        // namespace: the root namespace never sees them.
        for (peerNS, link) in [(pod, "pod0"), (external, "ext0"), (endpoints, "eps0")] {
            ip(node, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", peerNS.name)
            ip(node, "link", "set", link, "up")
            ip(peerNS, "link", "set", "eth0", "up")
        }
        ip(node, "link", "add", "up0", "type", "veth", "peer", "name", "up1")
        ip(node, "link", "set", "up0", "up")
        ip(node, "link", "set", "up1", "up")
        for a in [v4, v6] {
            /// Secondary addresses are never picked as a source unless a socket binds them
            /// (IPv4 picks the primary; IPv6 would prefer the newest, so they are deprecated).
            func addr(_ n: NetworkNamespace, _ address: String, _ dev: String, secondary: Bool = false) {
                var line = "addr add \(address)/\(a.prefix) dev \(dev)"
                if a.family == .ip6 { line += " nodad" }
                if a.family == .ip6 && secondary { line += " preferred_lft 0" }
                batches[n.name, default: []].append(line)
            }
            addr(node, a.nodeTowardPods, "pod0")
            addr(node, a.nodeTowardExternal, "ext0")
            addr(node, a.nodeTowardEndpoints, "eps0")
            addr(node, a.nodeIP, "up0")
            addr(node, a.otherNodeIP, "up0", secondary: true)
            addr(pod, a.podClient, "eth0")
            for c in a.extraPodClients { addr(pod, c, "eth0", secondary: true) }
            addr(external, a.externalClient, "eth0")
            addr(external, a.externalOutsider, "eth0", secondary: true)
            for e in a.endpoints { addr(endpoints, e, "eth0") }
            ip(pod, "route", "add", "default", "via", a.nodeTowardPods)
            ip(external, "route", "add", "default", "via", a.nodeTowardExternal)
            ip(endpoints, "route", "add", "default", "via", a.nodeTowardEndpoints)
            // The dead end: a gateway whose MAC nobody has; up1 discards the frames.
            let gw = a.family == .ip ? "192.168.0.254" : "fe80::dead"
            ip(node, "neigh", "add", gw, "lladdr", "02:00:00:00:de:ad", "dev", "up0", "nud", "permanent")
            ip(node, "route", "add", "default", "via", gw, "dev", "up0")
        }
        // The node first: it creates the veths whose peers the others configure.
        for n in [node, pod, external, endpoints] {
            guard let lines = batches[n.name] else { continue }
            try runChecked(["ip", "-n", n.name, "-batch", "-"], input: lines.joined(separator: "\n") + "\n")
        }
        try node.runChecked(["nft", "-f", "-"], input: """
            table inet sluice-probe {
                counter leaked { }
                chain postrouting {
                    type filter hook postrouting priority 300; policy accept;
                    oifname "up0" meta l4proto { tcp, udp, sctp } counter name "leaked"
                }
            }
            """)
        return kernelHasSCTP
    }

    private func startServers() throws {
        _ = try helper.serve(in: endpoints, addresses: Self.v4.endpoints + Self.v6.endpoints, ports: endpointPorts,
                             sctp: sctpSupported)
    }

    /// Port of the node's own server (`startNodeServer`).
    public static let nodeServerPort: UInt16 = 8090

    /// Starts a server in the node namespace itself on the node IPs (a hostNetwork endpoint,
    /// i.e. an endpoint whose address is the node's), port `nodeServerPort`.
    public func startNodeServer() throws {
        _ = try helper.serve(in: node, addresses: [Self.v4.nodeIP, Self.v6.nodeIP], ports: [Self.nodeServerPort])
    }

    // MARK: Probes

    /// `count` connection attempts (TCP/SCTP) or datagrams (UDP) to `dst:port`.
    public struct Probe: Sendable, Codable, CustomStringConvertible {
        public var proto: String
        public var dst: String
        public var port: UInt16
        public var src: String?
        public var sport: Int?
        public var count: Int
        public var timeout: Double
        public var summary: Bool

        public init(_ proto: String, _ dst: String, _ port: UInt16, src: String? = nil, count: Int = 1,
                    timeout: Double = 1.0) {
            self.proto = proto
            self.dst = dst
            self.port = port
            self.src = src
            self.count = count
            self.timeout = timeout
            self.summary = false
        }

        public var description: String {
            let d = dst.contains(":") ? "[\(dst)]" : dst
            return "\(proto.uppercased()) \(src.map { "\($0) → " } ?? "")\(d):\(port)"
        }
    }

    /// What one attempt got back.
    public enum Answer: Sendable, Hashable, CustomStringConvertible {
        /// An endpoint answered: its own address and the peer address it saw.
        case answered(endpoint: String, endpointPort: UInt16, peer: String, peerPort: UInt16)
        /// Connection refused / ICMP port unreachable (a reject, or no listener).
        case refused
        /// Nothing came back in time (a drop).
        case timeout
        case other(String)

        init(_ text: String) {
            let f = text.split(separator: " ").map(String.init)
            if f.count == 5, f[0] == "ok", let lp = UInt16(f[2]), let pp = UInt16(f[4]) {
                self = .answered(endpoint: f[1], endpointPort: lp, peer: f[3], peerPort: pp)
            } else if text == "refused" {
                self = .refused
            } else if text == "timeout" {
                self = .timeout
            } else {
                self = .other(text)
            }
        }

        public var endpoint: String? { if case .answered(let e, _, _, _) = self { return e }; return nil }
        public var peer: String? { if case .answered(_, _, let p, _) = self { return p }; return nil }

        public var description: String {
            switch self {
            case .answered(let e, let ep, let p, _): return "\(e):\(ep) saw \(p)"
            case .refused: return "refused"
            case .timeout: return "timeout"
            case .other(let s): return s
            }
        }
    }

    /// Runs every probe concurrently from `host` (attempts within a probe are sequential) and
    /// returns the answers per probe. UDP probes get fresh, never reused source ports so a
    /// stale conntrack entry from an earlier attempt can never capture a new datagram.
    public func probe(from host: Host, _ probes: [Probe]) throws -> [[Answer]] {
        let raw = try runProbes(from: host, probes)
        guard let arrays = raw as? [[String]] else { throw TopologyError.helperFailed("bad probe output: \(raw)") }
        return arrays.map { $0.map(Answer.init) }
    }

    /// One probe.
    public func probe(from host: Host, _ probe: Probe) throws -> [Answer] {
        try self.probe(from: host, [probe])[0]
    }

    /// `count` attempts, summarized as answering endpoint (or outcome) → count; for large
    /// statistical samples.
    public func tally(from host: Host, _ probe: Probe) throws -> [String: Int] {
        var p = probe
        p.summary = true
        let raw = try runProbes(from: host, [p])
        guard let arr = raw as? [[String: Int]], arr.count == 1 else { throw TopologyError.helperFailed("bad tally output: \(raw)") }
        return arr[0]
    }

    private func runProbes(from host: Host, _ probes: [Probe]) throws -> Any {
        var ps = probes
        lock.lock()
        for i in ps.indices where ps[i].proto == "udp" && ps[i].sport == nil {
            if nextUDPSourcePort + ps[i].count > 32_000 { nextUDPSourcePort = 10_000 }
            ps[i].sport = nextUDPSourcePort
            nextUDPSourcePort += ps[i].count
        }
        lock.unlock()
        return try helper.runProbes(in: namespace(host), ps)
    }

    // MARK: Sessions

    /// A TCP connection kept open across ruleset changes.
    public final class Session: @unchecked Sendable {
        let process: LineProcess
        /// The greeting: which endpoint accepted the connection.
        public let first: Answer

        init(process: LineProcess, timeout: Double) {
            self.process = process
            first = process.readLine(timeout: timeout + 5).map(Answer.init) ?? .other("no answer: \(process.stderrText)")
        }

        /// Sends a line over the open connection and returns the endpoint's answer.
        /// `timeout` is a safety net: every caller expects an answer.
        public func ping(timeout: Double = 10) -> Answer {
            process.writeLine("ping")
            return process.readLine(timeout: timeout).map(Answer.init) ?? .timeout
        }

        public func close() { process.terminate() }
    }

    /// Opens a TCP connection from `host` and keeps it open until `close()`.
    public func openSession(from host: Host, to dst: String, port: UInt16, src: String? = nil,
                            timeout: Double = 1.0) throws -> Session {
        let p = try helper.spawn(in: namespace(host), ["session", "tcp", dst, String(port), src ?? "", String(timeout)])
        return Session(process: p, timeout: timeout)
    }

    // MARK: Traffic that runs until stopped

    /// Connection attempts of one probe, one after another in `parallel` loops, from the
    /// moment this returns until `TrafficStream.stop()`. A test that needs traffic *across*
    /// an event starts the stream, waits until attempts have completed, causes the event,
    /// waits until attempts that began after the event have completed, and stops the stream:
    /// however fast or slow the machine, the traffic covers the whole event. `probe.count` is
    /// ignored; source ports are ephemeral.
    public func startTraffic(from host: Host, _ probe: Probe, parallel: Int = 1) throws -> TrafficStream {
        try helper.startTraffic(in: namespace(host), probe, parallel: parallel)
    }

    // MARK: Node state

    /// Packets (TCP/UDP/SCTP) that left the node through the dead-end uplink so far.
    public func leakedPackets() throws -> UInt64 {
        let out = try node.runChecked(["nft", "list", "counter", "inet", "sluice-probe", "leaked"]).stdout
        guard let r = out.range(of: "packets ") else { throw TopologyError.helperFailed("no counter: \(out)") }
        let digits = out[r.upperBound...].prefix { $0.isNumber }
        return UInt64(digits) ?? 0
    }

    /// Adds an address to the node's uplink (e.g. a load balancer VIP bound on the node).
    public func addNodeAddress(_ address: String) throws {
        var args = ["ip", "-n", node.name, "addr", "add", address + (address.contains(":") ? "/128" : "/32"), "dev", "up0"]
        if address.contains(":") { args.append("nodad") }
        try runChecked(args)
    }

    public func removeNodeAddress(_ address: String) throws {
        try runChecked(["ip", "-n", node.name, "addr", "del", address + (address.contains(":") ? "/128" : "/32"), "dev", "up0"])
    }

    /// Kills every helper process and deletes the namespaces; safe to call twice.
    public func close() {
        lock.lock()
        let wasClosed = closed
        closed = true
        lock.unlock()
        guard !wasClosed else { return }
        helper.close()
        for n in [node, pod, external, endpoints] { n.close() }
    }

    deinit { close() }
}

/// Traffic started by `ServiceTopology.startTraffic`: attempts keep going until `stop()`.
/// Times are `TrafficStream.now()` seconds (CLOCK_MONOTONIC, the clock the helper stamps
/// attempts with), so a test can place its own events among the attempts.
public final class TrafficStream: @unchecked Sendable {
    /// One connection attempt, as it completed.
    public struct Attempt: Sendable, CustomStringConvertible {
        /// Which loop made it (`0..<loops`).
        public var loop: Int
        public var start: Double
        public var end: Double
        public var answer: ServiceTopology.Answer

        /// Whether the attempt was in flight at some moment of `from...to`.
        public func overlaps(_ from: Double, _ to: Double) -> Bool { start <= to && end >= from }

        public var description: String {
            "loop \(loop) \(String(format: "%.3f", start))–\(String(format: "%.3f", end)): \(answer)"
        }
    }

    public let probe: ServiceTopology.Probe
    public let loops: Int
    private let process: LineProcess
    private var received: [Attempt] = []
    private var finished = false

    init(process: LineProcess, probe: ServiceTopology.Probe, loops: Int) {
        self.process = process
        self.probe = probe
        self.loops = loops
    }

    /// Now on the clock attempts are stamped with (CLOCK_MONOTONIC, in seconds).
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// The attempts completed so far.
    public var attempts: [Attempt] {
        drain(timeout: 0)
        return received
    }

    /// Reads what the helper printed until `timeout` seconds pass without a line; returns
    /// false once the helper said "done" (or exited).
    @discardableResult
    private func drain(timeout: Double) -> Bool {
        guard !finished else { return false }
        var wait = timeout
        while let line = process.readLine(timeout: wait) {
            wait = 0
            if line == "done" { finished = true; return false }
            let f = line.split(separator: " ", maxSplits: 3).map(String.init)
            guard f.count == 4, let loop = Int(f[0]), let start = Double(f[1]), let end = Double(f[2]) else {
                received.append(Attempt(loop: -1, start: 0, end: 0, answer: .other("unreadable helper line: \(line)")))
                continue
            }
            received.append(Attempt(loop: loop, start: start, end: end, answer: ServiceTopology.Answer(f[3])))
        }
        if process.finishedOutput { finished = true; return false }
        return true
    }

    /// Waits until `condition` holds for the attempts completed so far. `timeout` is only a
    /// safety net (the helper or the datapath is broken): it throws, naming `what`.
    public func wait(_ what: String, timeout: Double = 120, until condition: ([Attempt]) -> Bool) throws {
        let deadline = Self.now() + timeout
        while true {
            let running = drain(timeout: 0.05)
            if condition(received) { return }
            guard running else {
                throw TopologyError.helperFailed("traffic ended while waiting for \(what): \(process.stderrText)")
            }
            if Self.now() > deadline {
                throw TopologyError.helperFailed("timed out after \(Int(timeout)) s waiting for \(what); \(received.count) attempts so far")
            }
        }
    }

    /// Stops the loops (each finishes its attempt in flight) and returns every attempt.
    public func stop(timeout: Double = 120) throws -> [Attempt] {
        if !finished { process.writeLine("stop") }
        let deadline = Self.now() + timeout
        while drain(timeout: 0.1) {
            if Self.now() > deadline {
                close()
                throw TopologyError.helperFailed("traffic did not stop within \(Int(timeout)) s")
            }
        }
        close()
        return received
    }

    /// Kills the helper (also when a test fails before `stop()`).
    public func close() { process.terminate() }
}

public enum TopologyError: Error, CustomStringConvertible {
    case helperFailed(String)
    public var description: String {
        switch self {
        case .helperFailed(let s): return "datapath helper: \(s)"
        }
    }
}
