import Foundation
import Testing
import SluiceCompiler
import SluiceEmit
import SluiceIR
import SluiceModel
import SluiceTestSupport

/// Every directory under `Rulesets/` is a service set with golden review outputs next to it.
/// `SLUICE_RECORD_GOLDENS=1 swift test --filter GoldenTests` re-records them.
enum Goldens {
    static let root = RulesetDirectory.repositoryRoot
    static var rulesetNames: [String] { RulesetDirectory.names }

    static var recording: Bool { ProcessInfo.processInfo.environment["SLUICE_RECORD_GOLDENS"] == "1" }

    /// Compiles `Rulesets/<name>` with its `kube-proxy-config.yaml`, the way the CLI would.
    static func outputs(_ name: String) -> ReviewOutputs {
        let flags = RulesetDirectory.flags(name)
        let result = Pipeline.compile(sources: [RulesetDirectory.path(name)], flags: flags, systemHostname: "golden-node")
        let diagnostics = result.diagnostics.map { "\($0.severity.rawValue): \($0)".replacingOccurrences(of: root + "/", with: "") }
        return ReviewOutputs(ruleset: result.ruleset, plan: result.plan, diagnostics: diagnostics)
    }

    static func path(_ name: String, _ file: String) -> String { root + "/Rulesets/" + name + "/" + file }
}

struct GoldenTests {
    @Test func rulesetsExist() {
        #expect(Goldens.rulesetNames.contains("demo"))
        #expect(Goldens.rulesetNames.count >= 10)
    }

    @Test(arguments: Goldens.rulesetNames)
    func goldenOutputsMatch(_ name: String) throws {
        let out = Goldens.outputs(name)
        for (file, text) in [("expected.nft", out.nft), ("expected.iptables", out.iptables), ("expected.txt", out.report)] {
            let path = Goldens.path(name, file)
            if Goldens.recording {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
                continue
            }
            let expected = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text == expected, "Rulesets/\(name)/\(file) differs; re-record with SLUICE_RECORD_GOLDENS=1 after review")
        }
    }

    /// Every golden nft script is accepted by `nft -c -f` in a fresh namespace.
    @Test(arguments: Goldens.rulesetNames)
    func goldenNftScriptsPassNftCheck(_ name: String) throws {
        try requireKernelTestEnvironment(tools: ["ip", "nft"])
        let script = try String(contentsOfFile: Goldens.path(name, "expected.nft"), encoding: .utf8)
        try withNetworkNamespace(label: "golden") { ns in
            _ = try ns.runChecked(["nft", "-c", "-f", "-"], input: script)
        }
    }

    /// Every golden iptables script is accepted by `iptables-restore --test` (or
    /// `ip6tables-restore`) in a fresh namespace.
    @Test(arguments: Goldens.rulesetNames)
    func goldenIptablesScriptsPassRestoreTest(_ name: String) throws {
        try requireKernelTestEnvironment(tools: ["ip", "iptables-restore", "ip6tables-restore"])
        let text = try String(contentsOfFile: Goldens.path(name, "expected.iptables"), encoding: .utf8)
        let scripts = splitIptables(text)
        #expect(!scripts.isEmpty || text.isEmpty)
        for (tool, script) in scripts {
            try withNetworkNamespace(label: "golden") { ns in
                _ = try ns.runChecked([tool, "--test"], input: script)
            }
        }
    }

    /// Splits `expected.iptables` back into (tool, script) pairs at its comment headers.
    func splitIptables(_ text: String) -> [(String, String)] {
        var out: [(String, String)] = []
        var tool: String?
        var body = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# iptables-restore input") || line.hasPrefix("# ip6tables-restore input") {
                if let tool { out.append((tool, body)) }
                tool = line.hasPrefix("# ip6") ? "ip6tables-restore" : "iptables-restore"
                body = ""
            } else {
                body += line + "\n"
            }
        }
        if let tool { out.append((tool, body)) }
        return out
    }
}
