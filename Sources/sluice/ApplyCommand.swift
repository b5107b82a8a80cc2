import ArgumentParser
import Foundation
import SluiceCompiler
import SluiceDaemon
import SluiceEmit
import SluiceIR
import SluiceModel
import SluiceNetlink

enum Backend: String, ExpressibleByArgument, CaseIterable {
    case nft
    case iptables
}

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile manifests and program the kernel.",
        discussion: """
        With the default nft backend, Sluice reads its own tables back over netlink, diffs \
        them against the compiled ruleset and commits the difference as one netlink batch (a \
        large cold start goes in chunks, endpoint slots before the sets that make a service \
        reachable). Applying again with no change sends nothing.

        --backend iptables loads kube-proxy iptables-mode chains with `iptables-restore \
        --noflush` (and `ip6tables-restore`), deleting stale KUBE- chains.

        --netns NAME programs the network namespace /run/netns/NAME instead of the current one.

        CIDR entries of --nodeport-addresses select from the interface addresses of the \
        namespace programmed (read over rtnetlink), as kube-proxy does.
        """)

    @Option(name: .customLong("source"), help: "A manifest file or directory (repeatable).", completion: .file())
    var sources: [String] = []

    @Option(help: "nft (netlink, default) or iptables (iptables-restore).")
    var backend: Backend = .nft

    @Option(name: .customLong("netns"), help: "Program this named network namespace.", completion: .networkNamespaces)
    var netns: String?

    @OptionGroup var node: NodeOptionArguments

    func run() throws {
        guard !sources.isEmpty else { throw ValidationError("give at least one --source") }
        let hostAddresses = hostIPAddresses(try InterfaceAddresses.dump(namespace: netns))
        let result = Pipeline.compile(sources: sources, flags: node.flags, hostAddresses: hostAddresses)
        report(result.diagnostics)
        switch backend {
        case .nft:
            let applier = try NftablesApplier(namespace: netns)
            let families: [(Family, String)] = Family.allCases.map { ($0, Layout.tableName) }
            let foreign = try applier.adopt(tables: families, desired: result.ruleset)
            for f in foreign { printError("warning: foreign content in Sluice's table, will be rewritten: \(f)") }
            do {
                print(applySummary(try applier.apply(result.ruleset)))
            } catch let e as NetlinkError where e.isOwnedElsewhere {
                throw ownedByDaemon(e, "Change the daemon's sources instead, or stop it first.")
            }
        case .iptables:
            for fam in result.plan.families {
                let restore = fam.context.family == .ipv4 ? "iptables-restore" : "ip6tables-restore"
                let save = fam.context.family == .ipv4 ? "iptables-save" : "ip6tables-save"
                let existing = try IptablesTool(netns: netns).kubeChains(save: save, table: "nat")
                let wanted = IptablesRestoreRenderer.natServiceChains(fam)
                let stale = existing.subtracting(wanted).filter { IptablesChainName.isServiceChain($0) }
                let script = renderIptablesRestore(fam, onlyServices: nil, deletedChains: stale)
                let start = Date()
                try IptablesTool(netns: netns).restore(restore, script: script, noflush: true)
                print("\(restore) --noflush: \(script.split(separator: "\n").count) lines, \(stale.count) stale chains deleted, \(String(format: "%.1f", Date().timeIntervalSince(start) * 1000)) ms")
            }
        }
    }
}

/// One-line summary of an apply.
func applySummary(_ r: ApplyReport) -> String {
    if r.isNoOp { return "no change: nothing sent" }
    let kind = r.transaction.isElementsOnly ? "elements only" : "with structure"
    return "applied \(r.transaction.operations.count) operations (\(r.transaction.objectCount) objects, \(kind)) "
        + "in \(r.batches.count) batch(es), \(r.messages) messages, \(r.bytes) bytes, "
        + String(format: "%.2f ms", r.seconds * 1000)
}
