import ArgumentParser
import SluiceCompiler
import SluiceEmit
import SluiceIR

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the transaction between two service sets.",
        discussion: """
        Compiles both service sets with the same node options and prints the minimal \
        transaction (nft commands) that turns the first ruleset into the second, followed by \
        a one-line count. Routine changes are element additions and deletions only.
        """)

    @Option(name: .customLong("from"), help: "The current manifests (file or directory, repeatable).", completion: .file())
    var from: [String] = []

    @Option(name: .customLong("to"), help: "The desired manifests (file or directory, repeatable).", completion: .file())
    var to: [String] = []

    @OptionGroup var node: NodeOptionArguments

    func run() throws {
        guard !from.isEmpty, !to.isEmpty else { throw ValidationError("give --from and --to") }
        let old = Pipeline.compile(sources: from, flags: node.flags)
        let new = Pipeline.compile(sources: to, flags: node.flags)
        report(new.diagnostics)
        let tx = SluiceIR.diff(old.ruleset, new.ruleset)
        print(NftScript.render(tx), terminator: "")
        let kind = tx.isEmpty ? "no change" : (tx.isElementsOnly ? "elements only" : "structural")
        print("# \(tx.operations.count) operations, \(tx.objectCount) objects (\(kind))")
    }
}
