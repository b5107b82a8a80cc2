import ArgumentParser
import Foundation
import SluiceCompiler
import SluiceModel
import SluiceNetlink

/// Writes to standard error (Swift 6 forbids touching the C `stderr` global).
func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// Prints diagnostics, one line each, to standard error.
func report(_ diagnostics: [Diagnostic]) {
    for d in diagnostics { printError("\(d.severity.rawValue): \(d)") }
}

/// Writes `text` to `path`, or to standard output when `path` is nil or `-`.
func emit(_ text: String, to path: String?) throws {
    guard let path, path != "-" else {
        print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
        return
    }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// One-paragraph summary of what was compiled.
func summary(_ result: CompileResult) -> String {
    var lines: [String] = []
    for fam in result.plan.families {
        let table = result.ruleset.table(fam.context.family == .ipv4 ? .ip : .ip6, Layout.tableName)
        lines.append("\(fam.context.family.rawValue): \(fam.servicePorts.count) service ports, "
            + "\(table?.chains.count ?? 0) chains, \(table?.ruleCount ?? 0) rules, \(table?.elementCount ?? 0) elements")
    }
    for s in result.plan.skipped { lines.append("skipped \(s)") }
    let errors = result.diagnostics.filter(\.isError).count
    if errors > 0 { lines.append("\(errors) invalid object(s) or field(s) left out (see errors above)") }
    return lines.joined(separator: "\n")
}

/// The error for a write the kernel refused because a running `sluice run` owns Sluice's
/// table (`NetlinkError.isOwnedElsewhere`), with what to do instead.
func ownedByDaemon(_ e: NetlinkError, _ advice: String) -> ValidationError {
    ValidationError("Sluice's table is owned by a running `sluice run`; the kernel refuses other writers (\(e)). " + advice)
}
