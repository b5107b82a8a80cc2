import Foundation
import SluiceCompiler
import SluiceEmit
import SluiceIR
import SluiceModel
import SluiceNetlink
import SluiceTestSupport
import Testing

/// The repository's `Rulesets/<name>` service sets, compiled the way the CLI does.
enum CompiledRulesets {
    static var names: [String] { RulesetDirectory.names }

    static func ruleset(_ name: String) -> Ruleset {
        let flags = RulesetDirectory.flags(name)
        return Pipeline.compile(sources: [RulesetDirectory.path(name)], flags: flags, systemHostname: "golden-node").ruleset
    }
}

extension NetlinkKernelTests {
    @Test("compiled rulesets: netlink and nft -f of NftScript.render list identically and read back unchanged",
          arguments: CompiledRulesets.names)
    func compiledRuleset(_ name: String) throws {
        let ruleset = CompiledRulesets.ruleset(name)
        #expect(!ruleset.tables.isEmpty)
        try assertSameListing(ruleset.tables, script: NftScript.render(ruleset))
        try withNetworkNamespace(label: "crb") { ns in
            let applier = try NftablesApplier(namespace: ns.name)
            try applier.apply(ruleset)
            let restarted = try NftablesApplier(namespace: ns.name)
            let foreign = try restarted.adopt(tables: ruleset.tables.map { ($0.family, $0.name) }, desired: ruleset)
            #expect(foreign.isEmpty, "foreign content: \(foreign)")
            let tx = diff(restarted.committed, ruleset)
            #expect(tx.isEmpty, "read-back differs: \(NftScript.render(tx))")
        }
    }
}
