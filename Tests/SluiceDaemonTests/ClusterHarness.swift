import Foundation
import SluiceDaemon
import SluiceKubeFake
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A cluster for end-to-end tests: a `ClusterTopology` (namespaces, routes, pods), one
/// `FakeAPIServer` listening inside its control-plane namespace, and one `sluice run` child
/// process per node, each in its node's namespace with its own node name, all watching that
/// one server. The test writes the objects as the cluster's controllers would (Nodes,
/// Services, EndpointSlices with their conditions) and checks with real connections.
///
/// `close()` kills every daemon (SIGKILL by pid), stops the server, deletes the namespaces
/// and the scratch directory; `withCluster` calls it on every path.
final class ClusterHarness: @unchecked Sendable {
    let topology: ClusterTopology
    let server: FakeAPIServer
    /// Kubeconfig and daemon logs.
    let scratch: String
    private var daemons: [Int: Process] = [:]
    private let lock = NSLock()

    /// The port of kube-proxy's `/healthz` (the daemons' default).
    static let healthzPort = 10256

    private init(topology: ClusterTopology, server: FakeAPIServer, scratch: String) {
        self.topology = topology
        self.server = server
        self.scratch = scratch
    }

    /// Builds the network, starts the API server in the control plane, stores a Node per
    /// node (`node-N`, InternalIP on the LAN, pod CIDR) and starts the daemons.
    static func start() async throws -> ClusterHarness {
        let topology = try ClusterTopology()
        let server: FakeAPIServer
        do {
            var configuration = FakeAPIServer.Configuration()
            configuration.netns = topology.controlPlane.name
            configuration.host = ClusterTopology.controlPlaneAddress
            configuration.watchList = true
            server = try await FakeAPIServer.start(configuration)
        } catch {
            topology.close()
            throw error
        }
        let scratch = NSTemporaryDirectory() + "sluice-cluster-" + UUID().uuidString.prefix(8).lowercased()
        let harness = ClusterHarness(topology: topology, server: server, scratch: scratch)
        do {
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            try kubeconfig(server: server.url).write(toFile: harness.kubeconfigPath, atomically: true, encoding: .utf8)
            try server.applyJSON(.serviceCIDRs, ClusterManifests.serviceCIDR)
            for node in topology.nodes { try server.applyJSON(.nodes, ClusterManifests.node(node)) }
            for node in topology.nodes { try harness.startDaemon(node) }
        } catch {
            await harness.close()
            throw error
        }
        return harness
    }

    var kubeconfigPath: String { scratch + "/kubeconfig" }

    func logPath(_ node: Int) -> String { scratch + "/sluice-run-node-\(node).log" }

    /// What node `node`'s daemon logged so far.
    func log(_ node: Int) -> String { (try? String(contentsOfFile: logPath(node), encoding: .utf8)) ?? "" }

    /// `sluice run` in the node's namespace against the API server: the node's name, the
    /// pod network; its node IP comes from its Node object, as kube-proxy's does.
    private func startDaemon(_ node: ClusterTopology.Node) throws {
        let p = try startSluiceRun(node.namespace, [
            "--kubeconfig", kubeconfigPath, "--hostname-override", node.name,
            "--cluster-cidr", ClusterTopology.clusterCIDR,
            "--healthz-bind-address", "0.0.0.0:\(Self.healthzPort)", "--metrics-bind-address", "127.0.0.1:10249",
            "--logging-format", "json",
        ], log: logPath(node.index))
        lock.lock()
        daemons[node.index] = p
        lock.unlock()
    }

    /// Whether every daemon is still running (a daemon that exited fails the test with its log).
    func requireDaemonsRunning() throws {
        let snapshot = lock.withLock { daemons }
        for (i, p) in snapshot.sorted(by: { $0.key < $1.key }) where !p.isRunning {
            throw DaemonError("sluice run on node-\(i) exited (\(p.terminationStatus)): \(log(i).suffix(2000))")
        }
    }

    /// Node `node`'s `table ip sluice` as `nft` lists it (empty before the first sync), without
    /// the connection-counter sets: they hold addresses that saw traffic, not configuration.
    func kernelTable(_ node: Int) throws -> String {
        try topology.node(node).namespace.sluiceTableListing()
    }

    /// Waits until `condition` holds for the kernel tables of every node in `nodes` (default:
    /// all), checking the daemons stay up.
    func waitForKernels(_ what: String, nodes: [Int]? = nil, timeout: Duration = .seconds(120),
                        _ condition: @escaping (String) -> Bool) async throws {
        let which = nodes ?? topology.nodes.map(\.index)
        try await waitUntil(what, timeout: timeout) {
            try requireDaemonsRunning()
            return try which.allSatisfy { condition(try kernelTable($0)) }
        }
    }

    /// `kubeproxy_sync_proxy_rules_endpoint_changes_total` of every node's daemon (its
    /// `/metrics` on the node's loopback): how many EndpointSlice changes each has taken in.
    func endpointChanges() throws -> [Int: Double] {
        var out: [Int: Double] = [:]
        for node in topology.nodes {
            let r = try topology.helper.httpGet(in: node.namespace, "http://127.0.0.1:10249/metrics")
            out[node.index] = r.flatMap { metricValue($0.body, "kubeproxy_sync_proxy_rules_endpoint_changes_total") } ?? 0
        }
        return out
    }

    /// Writes an EndpointSlice (as the EndpointSlice controller does) and waits until every
    /// node's daemon has taken the change into a sync (its endpoint-change counter moved).
    func applySlice(_ json: String) async throws {
        let before = try endpointChanges()
        try server.applyJSON(.endpointSlices, json)
        try await waitUntil("every node took in the EndpointSlice change", timeout: .seconds(120)) {
            try requireDaemonsRunning()
            let now = try endpointChanges()
            return before.allSatisfy { now[$0.key, default: 0] > $0.value }
        }
    }

    /// An HTTP GET from the external client to `node`'s address (status and body, nil
    /// without an HTTP answer): what a load balancer's health check sees.
    func externalGet(node: Int, port: Int, path: String) throws -> (status: Int, body: String)? {
        try topology.helper.httpGet(in: topology.external, "http://\(topology.node(node).address):\(port)\(path)")
    }

    /// Kills the daemons, stops the server, deletes the namespaces and the scratch directory.
    func close() async {
        let snapshot = lock.withLock { () -> [Int: Process] in defer { daemons = [:] }; return daemons }
        for p in snapshot.values {
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        try? await server.shutdown()
        topology.close()
        if ProcessInfo.processInfo.environment["SLUICE_CLUSTER_KEEP_LOGS"] == nil {
            try? FileManager.default.removeItem(atPath: scratch)
        } else {
            print("cluster logs kept in \(scratch)")
        }
    }

    /// A kubeconfig for `server` with a bearer token (the fake accepts any when it does not
    /// require authentication).
    static func kubeconfig(server: String) -> String {
        """
        apiVersion: v1
        kind: Config
        current-context: cluster
        contexts:
        - name: cluster
          context: {cluster: cluster, user: node-proxier}
        clusters:
        - name: cluster
          cluster:
            server: \(server)
        users:
        - name: node-proxier
          user:
            token: cluster-test

        """
    }
}

/// Runs `body` on a fresh cluster, closed afterwards whether `body` succeeds or throws.
func withCluster(_ body: (ClusterHarness) async throws -> Void) async throws {
    let cluster = try await ClusterHarness.start()
    do {
        try await body(cluster)
    } catch {
        for i in cluster.topology.nodes.map(\.index) {
            Issue.record("sluice run on node-\(i), last log lines:\n\(cluster.log(i).split(separator: "\n").suffix(15).joined(separator: "\n"))")
        }
        await cluster.close()
        throw error
    }
    await cluster.close()
}
