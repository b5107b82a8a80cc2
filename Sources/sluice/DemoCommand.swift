import ArgumentParser
import Foundation
import SluiceCompiler
import SluiceEmit
import SluiceIR
import SluiceModel
import SluiceNetlink

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile the demo service set and program it inside a throwaway network namespace.",
        discussion: """
        Creates a network namespace, programs Rulesets/demo into it over netlink, reads the \
        table back over netlink and prints it, explains a few connections, shows that an \
        endpoint change is an element-only transaction and that re-applying sends nothing, \
        then deletes the namespace. The machine's own namespace is never touched. Needs root.
        """)

    @Option(name: .customLong("source"), help: "Manifests to use instead of Rulesets/demo.", completion: .file())
    var sources: [String] = []

    @Option(name: .customLong("config"), help: "KubeProxyConfiguration for the demo node.", completion: .file())
    var config: String?

    func run() throws {
        let sources = self.sources.isEmpty ? ["Rulesets/demo"] : self.sources
        let config = self.config ?? (self.sources.isEmpty ? "Rulesets/demo/kube-proxy-config.yaml" : nil)
        for s in sources where !FileManager.default.fileExists(atPath: s) {
            throw ValidationError("\(s) not found: run the demo from the repository root or pass --source")
        }
        let flags = NodeOptionFlags(config: config)
        let result = Pipeline.compile(sources: sources, flags: flags)
        report(result.diagnostics)
        print("== compiled \(sources.joined(separator: ", "))")
        print(summary(result))

        let ns = "sluice-demo-\(getpid())"
        try IptablesTool(netns: nil).run(["ip", "netns", "add", ns])
        defer { _ = try? IptablesTool(netns: nil).run(["ip", "netns", "del", ns]) }
        print("\n== programming network namespace \(ns) over netlink")
        let applier = try NftablesApplier(namespace: ns)
        print(applySummary(try applier.apply(result.ruleset)))

        print("\n== read back over netlink (no nft involved)")
        for table in result.ruleset.tables {
            guard let rb = try applier.socket.readTable(table.family, table.name) else { continue }
            print(NftScript.render(rb.table))
            print("read back == compiled: \(diff(Ruleset(tables: [rb.table]), Ruleset(tables: [table])).isEmpty)")
        }

        print("\n== what new connections would hit")
        if let fam = result.plan.family(.ipv4), let table = result.ruleset.table(.ip, Layout.tableName) {
            let node = NodeEnvironment(localAddresses: Set(fam.context.nodeIPs.map(\.datum)))
            let nodeIP = fam.context.nodeIPs.first ?? IPAddress("192.168.10.11")!
            for sp in fam.servicePorts.prefix(3) {
                let packet = Packet(saddr: nodeIP.datum, daddr: sp.clusterIP.datum,
                                    proto: sp.name.proto.number, dport: sp.port, origin: .localProcess)
                print("\(sp.name) \(sp.clusterIP.datum.withPort(sp.port)) from the node:")
                for o in walk(packet, through: table, node: node) { print("  p=\(String(format: "%.4f", o.probability)) \(o)") }
            }
        }

        print("\n== re-applying the same ruleset")
        print(applySummary(try applier.apply(result.ruleset)))

        if let fam = result.plan.family(.ipv4), let sp = fam.servicePorts.first(where: { $0.clusterEndpoints.count > 1 }) {
            print("\n== \(sp.name): one endpoint replaced (incremental compiler → one element-only batch)")
            var inc = IncrementalCompiler(context: fam.context)
            _ = inc.replaceAll(fam.servicePorts)
            var changed = sp
            changed.clusterEndpoints[0] = WeightedEndpoint(ip: IPAddress("10.244.9.99")!, port: sp.clusterEndpoints[0].port)
            let tx = inc.update([sp.name: changed])
            print(NftScript.render(tx), terminator: "")
            print(applySummary(try applier.apply(transaction: tx)))
        }
        print("\n== deleting namespace \(ns)")
    }
}
