import ArgumentParser
import SluiceCompiler
import SluiceIR
import SluiceNetlink

struct Cleanup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete Sluice's nftables tables (and, with --kube-proxy, upstream kube-proxy's leftovers).",
        discussion: """
        Deletes `table ip sluice` and `table ip6 sluice`. With --kube-proxy it also deletes \
        kube-proxy's nftables tables (`ip`/`ip6 kube-proxy`) and its iptables `KUBE-*` chains \
        with the jumps to them, as kube-proxy does when switching proxy modes. Missing tables \
        are not an error. While `sluice run` owns the tables (Linux 6.9+), the kernel refuses \
        to delete them: stop the daemon first.
        """)

    @Flag(name: .customLong("kube-proxy"), help: "Also remove upstream kube-proxy's nftables tables and iptables KUBE-* chains.")
    var kubeProxy = false

    @Option(name: .customLong("netns"), help: "Clean this named network namespace instead of the current one.", completion: .networkNamespaces)
    var netns: String?

    func run() throws {
        let applier = try NftablesApplier(namespace: netns)
        let own: [Family]
        do {
            own = try applier.deleteTablesIgnoringMissing(Family.allCases.map { ($0, Layout.tableName) })
        } catch let e as NetlinkError where e.isOwnedElsewhere {
            throw ownedByDaemon(e, """
                Stop the daemon first (delete its DaemonSet, or stop the process), then run `sluice cleanup` again; \
                or let the daemon delete its tables itself when it stops (`sluice run --cleanup-on-exit`).
                """)
        }
        print("deleted Sluice tables: \(own.isEmpty ? "none" : own.map { "\($0.rawValue) \(Layout.tableName)" }.joined(separator: ", "))")
        guard kubeProxy else { return }
        let kp = try applier.deleteKubeProxyTables()
        print("deleted kube-proxy nftables tables: \(kp.isEmpty ? "none" : kp.map { "\($0.rawValue) kube-proxy" }.joined(separator: ", "))")
        let tool = IptablesTool(netns: netns)
        let v4 = try tool.removeKubeChains(save: "iptables-save", restore: "iptables-restore")
        let v6 = try tool.removeKubeChains(save: "ip6tables-save", restore: "ip6tables-restore")
        print("deleted kube-proxy iptables chains: \(v4) IPv4, \(v6) IPv6")
    }
}
