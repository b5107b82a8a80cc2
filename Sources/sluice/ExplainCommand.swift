import Foundation
import ArgumentParser
import SluiceCompiler
import SluiceIR
import SluiceModel
import SluiceNetlink

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a new connection would hit.",
        discussion: """
        Compiles the manifests and walks the first packet of a connection through the compiled \
        table, hook by hook, as the kernel would. Prints each endpoint with its probability and \
        whether the connection is masqueraded, or the drop/reject and the rule that decided it.

        --from defaults to an address outside the cluster (198.51.100.1 or 2001:db8::1). An \
        address of the node itself is treated as a process on the node.

        A service with `sluice.dev/load-balancing: source-hash` picks its endpoint from the client \
        address: with --from, explain names the one endpoint that client gets; without, it \
        prints the distribution over clients. `consistent-hash` also hashes the client port \
        (--from-port).

        --live walks the tables read back from the kernel instead (--netns for another \
        namespace): no manifests are needed, affinity entries are what the kernel holds, and the \
        kernel's connection counters for the destination and its endpoints are printed too. The \
        node's addresses are then its interfaces' addresses (read over rtnetlink) and those in \
        `nodeport-ips`. --source still names the services.

        An endpoint derived from a Pod (a selector Service without EndpointSlices) is named \
        with its pod, e.g. `→ 10.244.1.20:8080 (pod shop/tomcat-0)`.
        """)

    @Option(name: .customLong("source"), help: "A manifest file or directory (repeatable).", completion: .file())
    var sources: [String] = []

    @Option(name: .customLong("to"), help: "Destination IP:PORT[/PROTO], e.g. 10.96.0.10:80/tcp or [fd00::10]:53/udp.")
    var destination: String

    @Option(name: .customLong("from"), help: "Client source address.")
    var from: String?

    @Option(name: .customLong("from-port"), help: "Client source port (only consistent-hash services depend on it).")
    var fromPort: UInt16?

    @Option(name: .customLong("local-address"), help: "Another address of the node (repeatable). The node's InternalIPs and NodePort addresses always count; add others, e.g. with --nodeport-addresses 0.0.0.0/0.")
    var localAddresses: [String] = []

    @Flag(help: "Also print every rule that matched.")
    var trace = false

    @OptionGroup var node: NodeOptionArguments

    @Flag(help: "Walk the tables read back from the kernel (no manifests needed; --source only names services).")
    var live = false

    @Option(name: .customLong("netns"), help: "With --live: read this named network namespace.", completion: .networkNamespaces)
    var netns: String?

    func validate() throws {
        guard live || !sources.isEmpty else { throw ValidationError("give at least one --source, or --live") }
        guard netns == nil || live else { throw ValidationError("--netns needs --live") }
    }

    func run() throws {
        guard let dst = Destination(destination) else {
            throw ValidationError("--to must look like 10.96.0.10:80/tcp or [fd00::10]:53/udp")
        }
        let family: IPFamily = dst.address.family
        let src = try source(family)
        var extra: [Datum] = []
        for text in localAddresses {
            guard let ip = IPAddress(text) else { throw ValidationError("--local-address \(text) is not an IP address") }
            extra.append(ip.datum)
        }
        guard var scene = try live ? liveScene(dst) : manifestScene(dst) else {
            print(live ? "no \(family.rawValue) table \(Layout.tableName) in the kernel: Sluice does not touch this packet"
                       : "no \(family.rawValue) services: Sluice does not touch this packet")
            return
        }
        scene.nodeAddresses.formUnion(extra)
        let origin: Packet.Origin = scene.nodeAddresses.contains(src.datum) ? .localProcess : .network(interface: "eth0")
        var unknown: Set<PayloadField> = []
        if from == nil { unknown.insert(family == .ipv4 ? .ipSaddr : .ip6Saddr) }
        if fromPort == nil { unknown.insert(.thSport) }
        let packet = Packet(saddr: src.datum, daddr: dst.address.datum, proto: dst.proto.number, sport: fromPort ?? 40000,
                            dport: dst.port, origin: origin, unknownFields: unknown)
        let outcomes = walk(packet, through: scene.table, node: NodeEnvironment(localAddresses: scene.nodeAddresses))
        print("\(dst.proto.rawValue) \(dst.address.datum.withPort(dst.port)) from \(origin == .localProcess ? "a process on the node" : "\(src)")")
        for match in scene.services { print("  service: \(match)") }
        for o in outcomes.sorted(by: { $0.probability > $1.probability }) { printOutcome(o, pods: scene.pods) }
        if let counts = scene.counters { printCounters(counts, dst, outcomes) }
    }

    /// `--from`, or an address outside the cluster.
    func source(_ family: IPFamily) throws -> IPAddress {
        guard let from else { return family == .ipv4 ? IPAddress("198.51.100.1")! : IPAddress("2001:db8::1")! }
        guard let ip = IPAddress(from), ip.family == family else {
            throw ValidationError("--from must be an address of the same family as --to")
        }
        return ip
    }

    /// What the walk needs: the table, the node's addresses, and what names the destination.
    struct Scene {
        var table: Table
        var nodeAddresses: Set<Datum>
        var services: [String] = []
        var pods: [Datum: String] = [:]
        /// The kernel's connection counters (`--live`).
        var counters: ConnectionCounts?
    }

    /// The compiled manifests.
    func manifestScene(_ dst: Destination) throws -> Scene? {
        let result = Pipeline.compile(sources: sources, flags: node.flags)
        report(result.diagnostics)
        let family = dst.address.family
        guard let fam = result.plan.family(family),
              let table = result.ruleset.table(Layout(family).family, Layout.tableName) else { return nil }
        return Scene(table: table, nodeAddresses: Set(fam.context.nodeIPs.map(\.datum) + nodePortAddresses(fam.context)),
                     services: describeTarget(dst, in: fam), pods: endpointPods(dst, in: fam, result.planned.endpointPods))
    }

    /// The table read back from the kernel, dynamic state (affinity, counters) included.
    /// The node's addresses are its interfaces' and those in `nodeport-ips` (plus `--local-address`).
    func liveScene(_ dst: Destination) throws -> Scene? {
        let layout = Layout(dst.address.family)
        let socket = try NetlinkSocket(namespace: netns)
        guard let read = try socket.readTable(layout.family, Layout.tableName, dynamicElements: true) else { return nil }
        for f in read.foreign { FileHandle.standardError.write(Data("warning: foreign content left out of the walk: \(f)\n".utf8)) }
        let table = read.table
        // The node's own addresses: every interface address of the namespace (what `fib daddr
        // type local` sees), plus `nodeport-ips`.
        let interfaces = try InterfaceAddresses.dump(namespace: netns).compactMap { IPAddress($0.address)?.datum }
        var scene = Scene(table: table, nodeAddresses: Set((table.elements[Layout.nodePortIPs] ?? [:]).keys.compactMap(\.first) + interfaces))
        if !sources.isEmpty {
            let result = Pipeline.compile(sources: sources, flags: node.flags)
            if let fam = result.plan.family(dst.address.family) {
                scene.services = describeTarget(dst, in: fam)
                scene.pods = endpointPods(dst, in: fam, result.planned.endpointPods)
            }
        }
        if table.set(named: Layout.serviceConnections) != nil {
            var counts = ConnectionCounts()
            try counts.read(dst.address.family) { try socket.readCounters($0, $1, set: $2) }
            scene.counters = counts
        }
        return scene
    }

    func printOutcome(_ o: Outcome, pods: [Datum: String]) {
        let p = String(format: "%.4f", o.probability)
        switch o.fate {
        case .accepted:
            if let d = o.dnat {
                let pod = pods[d.address].map { " (pod \($0))" } ?? ""
                print("  p=\(p)  → \(d.address.withPort(d.port))\(pod)\(o.masqueraded ? "  (masqueraded: source becomes the node's address)" : "  (source address kept)")")
            } else {
                print("  p=\(p)  not a service of this node: passed through untouched\(o.masqueraded ? " (masqueraded)" : "")")
            }
        case .dropped:
            print("  p=\(p)  DROP — \(o.decidedBy ?? "?")")
        case .rejected:
            print("  p=\(p)  REJECT — \(o.decidedBy ?? "?")")
        }
        if trace { for t in o.trace { print("      \(t)") } }
    }

    /// `--live`: the kernel's counts for the destination and for each endpoint it may reach.
    func printCounters(_ counts: ConnectionCounts, _ dst: Destination, _ outcomes: [Outcome]) {
        let tuple = ConnectionCounts.Tuple(address: dst.address, proto: dst.proto, port: dst.port)
        print("  counted: \(counts.tuples[tuple] ?? 0) new connections to \(tuple) (last hour of activity)")
        for d in outcomes.compactMap(\.dnat) {
            guard let ip = IPAddress(datum: d.address) else { continue }
            let e = ConnectionCounts.Tuple(address: ip, proto: dst.proto, port: d.port)
            print("  counted: \(counts.endpoints[e] ?? 0) new connections to endpoint \(e) (all services)")
        }
    }

    func nodePortAddresses(_ ctx: FamilyContext) -> [Datum] {
        if case .ips(let ips) = ctx.nodePortAddresses { return ips.map(\.datum) }
        return []
    }

    /// The pods behind the endpoint addresses of the services the destination belongs to.
    func endpointPods(_ dst: Destination, in fam: FamilyPlan, _ all: [ServiceName: [IPAddress: String]]) -> [Datum: String] {
        var out: [Datum: String] = [:]
        for sp in fam.servicePorts where sp.name.proto == dst.proto && (sp.port == dst.port || sp.nodePort == dst.port) {
            for (ip, pod) in all[sp.name.service] ?? [:] { out[ip.datum] = pod }
        }
        return out
    }

    /// Which service ports the destination belongs to, and how.
    func describeTarget(_ dst: Destination, in fam: FamilyPlan) -> [String] {
        var out: [String] = []
        for sp in fam.servicePorts where sp.name.proto == dst.proto {
            if sp.clusterIP == dst.address && sp.port == dst.port { out.append("\(sp.name) (ClusterIP)") }
            if sp.port == dst.port && sp.externalIPs.contains(dst.address) { out.append("\(sp.name) (externalIP)") }
            if sp.port == dst.port && sp.loadBalancerIPs.contains(dst.address) { out.append("\(sp.name) (LoadBalancer IP)") }
            if let np = sp.nodePort, np == dst.port { out.append("\(sp.name) (NodePort, if \(dst.address) accepts NodePorts)") }
        }
        return out
    }
}

/// `IP:PORT[/PROTO]`.
struct Destination {
    var address: IPAddress
    var port: UInt16
    var proto: L4Protocol

    init?(_ text: String) {
        var rest = Substring(text)
        var proto = L4Protocol.tcp
        if let slash = rest.lastIndex(of: "/") {
            guard let p = L4Protocol(rawValue: rest[rest.index(after: slash)...].uppercased()) else { return nil }
            proto = p
            rest = rest[..<slash]
        }
        let host: Substring, portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), rest[rest.index(after: close)...].hasPrefix(":") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            portText = rest[rest.index(close, offsetBy: 2)...]
        } else {
            guard let colon = rest.lastIndex(of: ":") else { return nil }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard let ip = IPAddress(String(host)), let port = UInt16(portText), port > 0 else { return nil }
        address = ip
        self.port = port
        self.proto = proto
    }
}
