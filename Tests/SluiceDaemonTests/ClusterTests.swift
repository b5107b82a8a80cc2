import Foundation
import SluiceKubeFake
import SluiceTestSupport
import Testing

/// A cluster in network namespaces, end to end (issue 12, item 8): three nodes, each running
/// its own `sluice run` process against one API server (the fake, listening inside a
/// control-plane namespace), pods behind every node routed between the nodes, and an
/// external client behind a router (see `ClusterTopology`). Everything is checked with real
/// connections from the external client, as a load balancer in front of the nodes would
/// make them:
///
/// 1. a NodePort (externalTrafficPolicy Cluster) on any node reaches the pods on the other
///    nodes, the client's address masqueraded to the node's;
/// 2. with externalTrafficPolicy Local only the nodes with a local pod answer, with the
///    client's address preserved, and the service's healthCheckNodePort says so (200 with
///    the local pod count / 503, kube-proxy's JSON body): a load balancer that follows the
///    health checks never sends a connection to a node without endpoints;
/// 3. a rolling replacement of a deployment's pods (new pods starting, then ready; the old
///    ones terminating but serving, then not serving, then gone) under continuous traffic
///    loses no new connection;
/// 4. tainting a node `ToBeDeletedByClusterAutoscaler` turns its `/healthz` to 503 (the
///    other nodes stay 200, its `/livez` too).
///
/// Every step waits for its event (kernel tables holding or dropping addresses, a health
/// endpoint's answer, connections begun after a change) with generous timeouts, never for
/// a fixed time.
@Suite("A cluster in namespaces (three sluice run processes, one API server, real connections)", .serialized,
       .timeLimit(.minutes(5)))
struct ClusterTests {
    typealias Probe = ServiceTopology.Probe
    typealias Endpoint = ClusterManifests.Endpoint

    /// The `web` deployment's service: NodePort, externalTrafficPolicy Cluster.
    static let web = (name: "web", clusterIP: "10.96.0.10", nodePort: 30080)
    static let webPods = [Endpoint.ready("10.244.2.10", on: 2), .ready("10.244.3.10", on: 3)]
    /// The pods replacing `webPods` in the rolling update (one on every node).
    static let webNewPods = [Endpoint.ready("10.244.1.11", on: 1), .ready("10.244.2.11", on: 2), .ready("10.244.3.11", on: 3)]
    /// The `local` service: LoadBalancer, externalTrafficPolicy Local; a pod on node 2, two
    /// on node 3, none on node 1.
    static let local = (name: "local", clusterIP: "10.96.0.20", nodePort: 30081, healthCheckNodePort: 30281)
    static let localPods = [Endpoint.ready("10.244.2.20", on: 2), .ready("10.244.3.20", on: 3), .ready("10.244.3.21", on: 3)]

    @Test("NodePort across nodes, eTP=Local health checks, rolling update under traffic, node tainted for deletion")
    func clusterEndToEnd() async throws {
        try requireKernelTestEnvironment(tools: ["ip", "nft", "python3"])
        try await withCluster { c in
            try Self.deploy(c)
            try await nodePortReachesPodsOnEveryNode(c)
            try await localPolicyFollowsHealthChecks(c)
            try await rollingUpdateLosesNoConnection(c)
            try await taintedNodeFailsHealthz(c)
        }
    }

    /// Starts the pods and writes the two services and their slices.
    static func deploy(_ c: ClusterHarness) throws {
        for p in webPods + localPods { try c.topology.startPod(on: p.node, address: p.address) }
        try c.server.applyJSON(.services, ClusterManifests.service(web.name, clusterIP: web.clusterIP, nodePort: web.nodePort))
        try c.server.applyJSON(.endpointSlices, ClusterManifests.slice(web.name, webPods))
        try c.server.applyJSON(.services, ClusterManifests.service(local.name, clusterIP: local.clusterIP, nodePort: local.nodePort,
                                                                   healthCheckNodePort: local.healthCheckNodePort))
        try c.server.applyJSON(.endpointSlices, ClusterManifests.slice(local.name, localPods))
    }

    /// Whether a kernel table (its `nft list` text) holds `address` as a word.
    static func holds(_ table: String, _ address: String) -> Bool {
        table.split(whereSeparator: { !($0.isNumber || $0 == ".") }).contains { $0 == address }
    }

    // MARK: 1. NodePort, externalTrafficPolicy Cluster

    func nodePortReachesPodsOnEveryNode(_ c: ClusterHarness) async throws {
        let pods = Set(Self.webPods.map(\.address))
        try await c.waitForKernels("every node programs web's pods") { t in pods.allSatisfy { Self.holds(t, $0) } }
        let nodes = c.topology.nodes
        let answers = try c.topology.helper.probe(in: c.topology.external,
                                                  nodes.map { Probe("tcp", $0.address, UInt16(Self.web.nodePort), count: 20, timeout: 2) })
        for (node, got) in zip(nodes, answers) {
            // Masqueraded: the pod sees the node (its LAN address toward a pod on another
            // node, its pod gateway toward its own pod), never the client.
            let nodeAddresses: Set = [node.address, node.podGateway]
            #expect(got.allSatisfy { $0.endpoint.map(pods.contains) == true && $0.peer.map(nodeAddresses.contains) == true },
                    "NodePort on \(node.name): \(got)")
            #expect(Set(got.compactMap(\.endpoint)) == pods, "NodePort on \(node.name) did not reach the pods on both other nodes: \(got)")
        }
    }

    // MARK: 2. externalTrafficPolicy Local and healthCheckNodePort

    /// kube-proxy's healthCheckNodePort body for `local` with `count` local endpoints.
    static func localHealthBody(_ count: Int) -> String {
        #"{"service":{"namespace":"default","name":"local"},"localEndpoints":\#(count),"serviceProxyHealthy":true}"#
    }

    func localPolicyFollowsHealthChecks(_ c: ClusterHarness) async throws {
        let pods = Set(Self.localPods.map(\.address))
        try await c.waitForKernels("every node programs local's pods") { t in pods.allSatisfy { Self.holds(t, $0) } }
        let localCount = [1: 0, 2: 1, 3: 2]
        for node in c.topology.nodes {
            let want = (localCount[node.index]! > 0 ? 200 : 503, Self.localHealthBody(localCount[node.index]!))
            var last: (status: Int, body: String)?
            try await waitUntil("\(node.name)'s healthCheckNodePort answers \(want)", timeout: .seconds(120)) {
                last = try c.externalGet(node: node.index, port: Self.local.healthCheckNodePort, path: "/")
                return last?.status == want.0 && last?.body == want.1
            }
            #expect(last?.status == want.0 && last?.body == want.1, "\(node.name): \(String(describing: last))")
        }
        // A load balancer sends connections only to the nodes whose health check passes. Each
        // of those answers from its own pods, and the pods see the client's own address; the
        // node that fails it has no endpoint to offer (its NodePort drops the connection).
        let answers = try c.topology.helper.probe(in: c.topology.external, c.topology.nodes.map {
            Probe("tcp", $0.address, UInt16(Self.local.nodePort), count: localCount[$0.index]! > 0 ? 24 : 2, timeout: 1)
        })
        for (node, got) in zip(c.topology.nodes, answers) {
            let own = Set(Self.localPods.filter { $0.node == node.index }.map(\.address))
            let healthy = try c.externalGet(node: node.index, port: Self.local.healthCheckNodePort, path: "/")?.status == 200
            if healthy {
                #expect(got.allSatisfy { $0.endpoint.map(own.contains) == true && $0.peer == ClusterTopology.externalClient },
                        "eTP=Local NodePort on \(node.name) (health check passing): \(got)")
                #expect(Set(got.compactMap(\.endpoint)) == own, "\(node.name) did not use all its local pods: \(got)")
            } else {
                #expect(own.isEmpty && got.allSatisfy { $0.endpoint == nil },
                        "eTP=Local NodePort on \(node.name) (health check failing): \(got)")
            }
        }
    }

    // MARK: 3. Rolling update under traffic

    func rollingUpdateLosesNoConnection(_ c: ClusterHarness) async throws {
        let old = Self.webPods, new = Self.webNewPods
        let slice = { (eps: [Endpoint]) in try await c.applySlice(ClusterManifests.slice(Self.web.name, eps)) }
        let loops = 2
        let node1 = c.topology.node(1)
        let traffic = try c.topology.helper.startTraffic(in: c.topology.external,
                                                         Probe("tcp", node1.address, UInt16(Self.web.nodePort), timeout: 2),
                                                         parallel: loops, pause: 0.005)
        defer { traffic.close() }
        /// Waits until every loop completed `n` attempts begun after now (the traffic covers each step).
        func flowing(_ what: String, _ n: Int = 5) throws {
            let t = TrafficStream.now()
            try traffic.wait("traffic \(what)") { a in (0..<loops).allSatisfy { l in a.filter { $0.loop == l && $0.start > t }.count >= n } }
        }
        try flowing("before the update")

        // New pods created, not ready yet (no server, no address: using one would fail).
        try await slice(old + new.map { $0.starting() })
        try flowing("with the new pods starting")
        // They start and turn ready.
        for p in new { try c.topology.startPod(on: p.node, address: p.address) }
        try await slice(old + new)
        try await c.waitForKernels("every node programs the new pods") { t in new.allSatisfy { Self.holds(t, $0.address) } }
        try flowing("with old and new pods ready")
        // The old ones terminate: serving for their grace period, then not serving.
        try await slice(old.map { $0.terminatingServing() } + new)
        try flowing("with the old pods terminating and serving")
        try await slice(old.map { $0.terminatingStopped() } + new)
        try await c.waitForKernels("no node programs the old pods any more") { t in !old.contains { Self.holds(t, $0.address) } }
        let converged = TrafficStream.now()
        try flowing("after the old pods left every kernel")
        // Gone: their servers stop and their addresses go away, then the controller drops them.
        for p in old { try c.topology.stopPod(on: p.node, address: p.address) }
        try await slice(new)
        try flowing("after the old pods are gone", 10)
        let attempts = try traffic.stop()

        let valid = Set((old + new).map(\.address)), fresh = Set(new.map(\.address))
        let failed = attempts.filter { $0.answer.endpoint.map(valid.contains) != true }
        #expect(failed.isEmpty, "\(failed.count) of \(attempts.count) new connections failed during the rolling update: \(failed.prefix(10))")
        let late = attempts.filter { $0.start > converged }
        #expect(!late.isEmpty && late.allSatisfy { $0.answer.endpoint.map(fresh.contains) == true },
                "connections after the old pods left every kernel must reach new pods only: \(late.filter { $0.answer.endpoint.map(fresh.contains) != true }.prefix(10))")
        let reached = Set(attempts.compactMap(\.answer.endpoint))
        #expect(reached == valid, "the traffic did not reach every old and new pod: \(reached.sorted())")
        print("cluster rolling update: \(attempts.count) connections, \(failed.count) failed")
    }

    // MARK: 4. A node tainted for deletion

    func taintedNodeFailsHealthz(_ c: ClusterHarness) async throws {
        for node in c.topology.nodes {
            let r = try c.externalGet(node: node.index, port: ClusterHarness.healthzPort, path: "/healthz")
            #expect(r?.status == 200 && r?.body.contains(#""nodeEligible":true"#) == true, "\(node.name) /healthz before the taint: \(String(describing: r))")
        }
        try c.server.applyJSON(.nodes, ClusterManifests.node(c.topology.node(3), toBeDeleted: true))
        var last: (status: Int, body: String)?
        try await waitUntil("node-3's /healthz turns 503 after the taint", timeout: .seconds(120)) {
            try c.requireDaemonsRunning()
            last = try c.externalGet(node: 3, port: ClusterHarness.healthzPort, path: "/healthz")
            return last?.status == 503
        }
        #expect(last?.body.contains(#""nodeEligible":false"#) == true && last?.body.contains(#""healthy":true"#) == true,
                "node-3 /healthz after the taint: \(String(describing: last))")
        let livez = try c.externalGet(node: 3, port: ClusterHarness.healthzPort, path: "/livez")
        #expect(livez?.status == 200, "node-3 /livez after the taint (liveness ignores eligibility): \(String(describing: livez))")
        for i in [1, 2] {
            let r = try c.externalGet(node: i, port: ClusterHarness.healthzPort, path: "/healthz")
            #expect(r?.status == 200 && r?.body.contains(#""nodeEligible":true"#) == true, "node-\(i) /healthz after node-3's taint: \(String(describing: r))")
        }
    }
}
