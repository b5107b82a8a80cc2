import SluiceIR
import SluiceModel

/// The pure front half of Sluice: manifests and node options to a ruleset.
///
/// `load` reads files (the only I/O), everything after it is a pure function.
public struct CompileResult: Sendable {
    /// What the planner produced (plan, node context, validated services).
    public var planned: PlanResult
    /// One table per family.
    public var ruleset: Ruleset
    /// Loader, option, validation and conflict diagnostics, in pipeline order.
    public var diagnostics: [Diagnostic]

    public var plan: ProxyPlan { planned.plan }
}

public enum Pipeline {
    /// Loads manifests from `sources` and node options from `flags` (including `--config`),
    /// then plans and compiles. `hostAddresses`: the host's interface addresses for CIDR
    /// entries of `--nodeport-addresses` (nil: the Node's addresses and `--node-ip`).
    public static func compile(sources: [String], flags: NodeOptionFlags,
                               systemHostname: String? = NodeOptions.systemHostname(),
                               hostAddresses: [IPAddress]? = nil) -> CompileResult {
        let (options, optionDiagnostics) = NodeOptions.load(flags: flags, systemHostname: systemHostname)
        let loaded = ManifestLoader().load(paths: sources)
        var result = compile(objects: loaded.objects, options: options, hostAddresses: hostAddresses)
        result.diagnostics = optionDiagnostics + loaded.diagnostics + result.diagnostics
        return result
    }

    /// Plans and compiles objects that are already in memory (the daemon's path).
    public static func compile(objects: ClusterObjects, options: NodeOptions, hostAddresses: [IPAddress]? = nil) -> CompileResult {
        let planned = ProxyPlanner(options: options, hostAddresses: hostAddresses).plan(objects)
        let (ruleset, conflicts) = Compiler.compile(planned.plan)
        let conflictDiagnostics = conflicts.map { Diagnostic(severity: .warning, message: $0) }
        return CompileResult(planned: planned, ruleset: ruleset, diagnostics: planned.diagnostics + conflictDiagnostics)
    }
}
