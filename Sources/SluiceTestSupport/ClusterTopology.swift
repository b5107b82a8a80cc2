import Foundation

/// A small Kubernetes cluster's network, built from network namespaces, for end-to-end tests
/// of several `sluice run` daemons sharing one API server.
///
/// ```
///   external client ── router ══ lan bridge ══╤══ control plane (API server) 192.168.50.100
///   203.0.113.10        .1 / .254             ├── node 1  192.168.50.11 ── pods 10.244.1.0/24
///                                             ├── node 2  192.168.50.12 ── pods 10.244.2.0/24
///                                             └── node 3  192.168.50.13 ── pods 10.244.3.0/24
/// ```
///
/// - The **router** namespace holds the `lan` bridge (every node and the control plane are
///   plugged into it, the router is 192.168.50.254 on it) and routes between the LAN and the
///   external client's network. It knows nothing of pod networks: the client reaches pods
///   only through NodePorts.
/// - Each **node** forwards, has a default route via the router, and routes every other
///   node's pod CIDR via that node: pods of one node reach pods of another (a flat pod network).
/// - Each node's **pods** namespace holds that node's pod addresses on one veth; every pod
///   is a server of its own on `podPort` (`startPod`), answering with the address pair it saw,
///   so a test sees which pod answered and whether the client's address was masqueraded.
///
/// Every name is unique; nothing is created in, or connects to, the root namespace.
/// `close()` (also on deinit) kills the helper processes and deletes the namespaces.
public final class ClusterTopology: @unchecked Sendable {
    /// Port every pod server listens on.
    public static let podPort: UInt16 = 8080
    public static let lanPrefix = "192.168.50."
    public static let routerLANAddress = "192.168.50.254"
    public static let controlPlaneAddress = "192.168.50.100"
    public static let externalClient = "203.0.113.10"
    public static let routerExternalAddress = "203.0.113.1"
    /// The pod network (every node's pod CIDR is inside), for `--cluster-cidr`.
    public static let clusterCIDR = "10.244.0.0/16"

    /// One node: its namespace, its pods' namespace and its addresses.
    public struct Node: Sendable {
        /// 1-based.
        public let index: Int
        public let namespace: NetworkNamespace
        public let pods: NetworkNamespace
        /// The node's InternalIP on the LAN.
        public var address: String { ClusterTopology.lanPrefix + String(10 + index) }
        public var podCIDR: String { "10.244.\(index).0/24" }
        /// The node's address toward its pods (their gateway).
        public var podGateway: String { "10.244.\(index).1" }
        /// `node-N`.
        public var name: String { "node-\(index)" }
    }

    public let router: NetworkNamespace
    public let controlPlane: NetworkNamespace
    public let external: NetworkNamespace
    public let nodes: [Node]
    /// Servers, probes and traffic streams of this cluster.
    public let helper: PacketHelper
    private let lock = NSLock()
    private var podServers: [String: LineProcess] = [:]
    private var closed = false

    /// Builds the namespaces, links, addresses and routes for `nodeCount` nodes.
    public init(label: String = "cl", nodeCount: Int = 3) throws {
        var made: [NetworkNamespace] = []
        func ns(_ role: String) throws -> NetworkNamespace {
            let n = try NetworkNamespace(label: "\(label.prefix(6))-\(role)")
            made.append(n)
            return n
        }
        let helper = try PacketHelper()
        do {
            router = try ns("rtr")
            controlPlane = try ns("ctl")
            external = try ns("ext")
            nodes = try (1...nodeCount).map { Node(index: $0, namespace: try ns("n\($0)"), pods: try ns("p\($0)")) }
            try Self.build(router: router, controlPlane: controlPlane, external: external, nodes: nodes)
        } catch {
            helper.close()
            for n in made { n.close() }
            throw error
        }
        self.helper = helper
    }

    private static func build(router: NetworkNamespace, controlPlane: NetworkNamespace, external: NetworkNamespace,
                              nodes: [Node]) throws {
        for n in [router, controlPlane, external] + nodes.flatMap({ [$0.namespace, $0.pods] }) {
            // No ICMP rate limits: every reject answers at once.
            try n.runChecked(["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"])
        }
        // The client opens thousands of short connections to the same NodePorts: every local
        // port may serve, and one in TIME_WAIT may be reused.
        try external.runChecked(["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1"])
        for n in [router] + nodes.map(\.namespace) {
            try n.runChecked(["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                              "net.ipv4.conf.default.rp_filter=0"])
        }
        // Every `ip` command goes into one `ip -n <ns> -batch -` per namespace, the router's
        // first: it creates the veths whose peers the others configure.
        var batches: [(NetworkNamespace, [String])] = [(router, [
            "link add lan type bridge", "link set lan up", "addr add \(routerLANAddress)/24 dev lan",
        ])]
        func plug(_ n: NetworkNamespace, port: String, address: String, gateway: String?) {
            batches[0].1 += ["link add \(port) type veth peer name eth0 netns \(n.name)",
                             "link set \(port) master lan", "link set \(port) up"]
            var lines = ["addr add \(address)/24 dev eth0", "link set eth0 up"]
            if let gateway { lines.append("route add default via \(gateway)") }
            batches.append((n, lines))
        }
        plug(controlPlane, port: "ctl", address: controlPlaneAddress, gateway: nil)
        batches[0].1 += ["link add ext0 type veth peer name eth0 netns \(external.name)",
                         "link set ext0 up", "addr add \(routerExternalAddress)/24 dev ext0"]
        batches.append((external, ["addr add \(externalClient)/24 dev eth0", "link set eth0 up",
                                   "route add default via \(routerExternalAddress)"]))
        for node in nodes {
            plug(node.namespace, port: "n\(node.index)", address: node.address, gateway: routerLANAddress)
            var lines = ["link add pods0 type veth peer name eth0 netns \(node.pods.name)", "link set pods0 up",
                         "addr add \(node.podGateway)/24 dev pods0"]
            for other in nodes where other.index != node.index {
                lines.append("route add \(other.podCIDR) via \(other.address)")
            }
            batches.append((node.namespace, lines))
            batches.append((node.pods, ["link set eth0 up", "route add default via \(node.podGateway) dev eth0 onlink"]))
        }
        // The router's links first, then each namespace's (a node's pods0 before its pods' eth0).
        for (n, lines) in batches {
            try runChecked(["ip", "-n", n.name, "-batch", "-"], input: lines.joined(separator: "\n") + "\n")
        }
    }

    /// The node with 1-based index `i`.
    public func node(_ i: Int) -> Node { nodes[i - 1] }

    /// Starts a pod: `address` (in the node's pod CIDR; a /32 of its own, so removing one pod
    /// never takes another's address along) on the node's pods namespace, with a
    /// server on `podPort`. Returns once it listens.
    public func startPod(on node: Int, address: String) throws {
        let n = self.node(node)
        try n.pods.runChecked(["ip", "addr", "add", "\(address)/32", "dev", "eth0"])
        let server = try helper.serve(in: n.pods, addresses: [address], ports: [Self.podPort])
        lock.lock()
        podServers[address] = server
        lock.unlock()
    }

    /// Stops a pod started by `startPod`: its server exits and its address goes away.
    public func stopPod(on node: Int, address: String) throws {
        lock.lock()
        let server = podServers.removeValue(forKey: address)
        lock.unlock()
        server?.terminate()
        try self.node(node).pods.runChecked(["ip", "addr", "del", "\(address)/32", "dev", "eth0"])
    }

    /// Kills every helper process and deletes the namespaces; safe to call twice.
    public func close() {
        lock.lock()
        let wasClosed = closed
        closed = true
        lock.unlock()
        guard !wasClosed else { return }
        helper.close()
        for n in [router, controlPlane, external] + nodes.flatMap({ [$0.namespace, $0.pods] }) { n.close() }
    }

    deinit { close() }
}
