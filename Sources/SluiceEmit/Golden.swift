import SluiceIR
import SluiceModel

/// The review outputs of one compiled service set, as stored next to it in `Rulesets/`.
public struct ReviewOutputs: Sendable, Equatable {
    /// `expected.nft`: both families' tables as one `nft -f` script.
    public var nft: String
    /// `expected.iptables`: `iptables-restore` input per family, each after a comment line.
    public var iptables: String
    /// `expected.txt`: diagnostics and the summary of skipped services.
    public var report: String

    public init(ruleset: Ruleset, plan: ProxyPlan, diagnostics: [String]) {
        nft = NftScript.render(ruleset)
        iptables = Self.iptablesScripts(plan).map { "# \($0.family == .ipv4 ? "iptables-restore" : "ip6tables-restore") input for \($0.family.rawValue)\n" + $0.script }
            .joined(separator: "\n")
        var lines = diagnostics
        lines += plan.skipped.map { "skipped \($0)" }
        report = lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }

    /// One `iptables-restore` script per family of the plan.
    public static func iptablesScripts(_ plan: ProxyPlan) -> [(family: IPFamily, script: String)] {
        plan.families.map { ($0.context.family, renderIptablesRestore($0)) }
    }
}
