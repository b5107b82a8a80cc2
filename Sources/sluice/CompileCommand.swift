import ArgumentParser
import SluiceCompiler
import SluiceEmit
import SluiceIR
import SluiceModel

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case nft
    case iptables
}

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile manifests to an nft script (or an iptables-restore script) for review.",
        discussion: """
        Reads Services, EndpointSlices, the Node and ServiceCIDRs from YAML/JSON files or \
        directories and prints the ruleset Sluice would program. Invalid objects are reported \
        on standard error, one line each, and left out; everything else still compiles.

        --format nft prints both families' tables as one `nft -f` script. --format iptables \
        prints kube-proxy iptables-mode `iptables-restore` input (for IPv6, `ip6tables-restore` \
        input follows after a comment line).
        """)

    @Option(name: .customLong("source"), help: "A manifest file or directory (repeatable).", completion: .file())
    var sources: [String] = []

    @Option(help: "Output format.")
    var format: OutputFormat = .nft

    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.", completion: .file())
    var output: String?

    @OptionGroup var node: NodeOptionArguments

    func run() throws {
        guard !sources.isEmpty else { throw ValidationError("give at least one --source") }
        let result = Pipeline.compile(sources: sources, flags: node.flags)
        report(result.diagnostics)
        let text: String
        switch format {
        case .nft:
            text = NftScript.render(result.ruleset)
        case .iptables:
            text = result.plan.families.map { fam in
                "# \(fam.context.family == .ipv4 ? "iptables-restore" : "ip6tables-restore") input for \(fam.context.family.rawValue)\n"
                    + renderIptablesRestore(fam)
            }.joined(separator: "\n")
        }
        try emit(text, to: output)
        printError(summary(result))
    }
}
