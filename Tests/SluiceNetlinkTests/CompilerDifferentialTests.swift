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
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var names: [String] {
        let dir = root + "/Rulesets"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { name in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir + "/" + name, isDirectory: &isDir) && isDir.boolValue
        }.sorted()
    }

    static func ruleset(_ name: String) -> Ruleset {
        let dir = root + "/Rulesets/" + name
        let config = dir + "/kube-proxy-config.yaml"
        let flags = NodeOptionFlags(config: FileManager.default.fileExists(atPath: config) ? config : nil)
        return Pipeline.compile(sources: [dir], flags: flags, systemHostname: "golden-node").ruleset
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
