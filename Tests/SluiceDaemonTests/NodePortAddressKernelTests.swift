import Foundation
import SluiceCompiler
import SluiceDaemon
import SluiceModel
import SluiceTestSupport
import Testing

/// `--nodeport-addresses 10.88.0.0/16` with real packets: the NodePort answers on the
/// node's interface addresses inside the CIDR (not only the Node object's), and follows
/// addresses added and removed while the daemon runs. Each test has its own namespaces.
@Suite("NodePort addresses from the host (kernel)", .serialized, .timeLimit(.minutes(3)))
struct NodePortAddressKernelTests {
    static let manifests = """
        apiVersion: v1
        kind: Node
        metadata: {name: \(nodeName)}
        status:
          addresses:
          - {type: InternalIP, address: 10.77.0.1}
        ---

        """ + serviceYAML("web", clusterIP: "10.96.0.10", nodePort: 30080) + "---\n" + sliceYAML("web-1", service: "web", ips: ["10.77.0.2"])

    func config(_ dir: ManifestDir, _ rig: PacketRig) -> DaemonConfiguration {
        let options = NodeOptions(nodeName: nodeName, nodePortAddresses: [.cidr(CIDR("10.88.0.0/16")!)],
                                  nodeIPs: [IPAddress("10.77.0.1")!])
        return DaemonConfiguration(options: options, sources: [ManifestDirectorySource(paths: [dir.path], interval: .milliseconds(100))],
                                   netns: rig.node.name, healthzBindAddress: nil, metricsBindAddress: nil)
    }

    /// A rig whose node has an interface `np0` (a veth with its peer `np1`, both up, no
    /// address yet), the manifests
    /// written, and a daemon after its first sync.
    func withNodePortDaemon(label: String, before: (PacketRig) throws -> Void = { _ in },
                            _ body: (Daemon, PacketRig) async throws -> Void) async throws {
        try requireKernelTestEnvironment(tools: ["ip", "nft", "python3"])
        let rig = try PacketRig(label: label)
        defer { rig.close() }
        try rig.node.runChecked(["ip", "link", "add", "np0", "type", "veth", "peer", "name", "np1"])
        try rig.node.runChecked(["ip", "link", "set", "np0", "up"])
        try rig.node.runChecked(["ip", "link", "set", "np1", "up"])
        try before(rig)
        let dir = try ManifestDir()
        defer { dir.close() }
        try dir.write("web.yaml", Self.manifests)
        try await withDaemon(config(dir, rig)) { daemon in
            _ = try await waitUntil("first sync") { await daemon.commits() >= 1 }
            try await body(daemon, rig)
        }
    }

    func nodePortIPs(_ rig: PacketRig) throws -> String {
        try rig.node.runChecked(["nft", "list", "set", "ip", Layout.tableName, Layout.nodePortIPs]).stdout
    }

    @Test("an interface address inside the CIDRs but not in the Node object accepts the NodePort; the Node's address outside them does not")
    func interfaceAddressNotInNode() async throws {
        try await withNodePortDaemon(label: "npif", before: { try $0.node.runChecked(["ip", "addr", "add", "10.88.0.5/32", "dev", "np0"]) }) { _, rig in
            #expect(try nodePortIPs(rig).contains("10.88.0.5"))
            _ = try await waitUntil("NodePort answers on 10.88.0.5") { try rig.connect("10.88.0.5", 30080) == ["served by 10.77.0.2"] }
            // 10.77.0.1 is the Node's InternalIP and --node-ip, but outside 10.88.0.0/16: no DNAT,
            // the node's own stack refuses (nothing listens on 30080).
            #expect(try rig.connect("10.77.0.1", 30080) == ["refused"])
            #expect(try !nodePortIPs(rig).contains("10.77.0.1"))
        }
    }

    @Test("an address added while the daemon runs starts accepting the NodePort; removed, it stops")
    func addressAddedThenRemoved() async throws {
        try await withNodePortDaemon(label: "npdyn") { _, rig in
            #expect(try rig.connect("10.88.0.6", 30080) == ["timeout"], "not a local address yet: routed nowhere")
            try rig.node.runChecked(["ip", "addr", "add", "10.88.0.6/32", "dev", "np0"])
            _ = try await waitUntil("NodePort answers on the added address", timeout: .seconds(60)) {
                try rig.connect("10.88.0.6", 30080) == ["served by 10.77.0.2"]
            }
            try rig.node.runChecked(["ip", "addr", "del", "10.88.0.6/32", "dev", "np0"])
            _ = try await waitUntil("address left nodeport-ips", timeout: .seconds(60)) { try !nodePortIPs(rig).contains("10.88.0.6") }
            // Gone from the node: no DNAT, and nothing local answers.
            #expect(try rig.connect("10.88.0.6", 30080) == ["timeout"])
            // Added again: the NodePort is back.
            try rig.node.runChecked(["ip", "addr", "add", "10.88.0.6/32", "dev", "np0"])
            _ = try await waitUntil("back", timeout: .seconds(60)) { try rig.connect("10.88.0.6", 30080) == ["served by 10.77.0.2"] }
        }
    }
}
