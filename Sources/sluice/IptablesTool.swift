import Foundation

/// Runs the iptables binaries (iptables has no netlink API of its own, so this is the one
/// datapath subprocess Sluice uses), optionally inside a named network namespace.
struct IptablesTool {
    var netns: String?

    struct Failure: Error, CustomStringConvertible {
        var command: String
        var output: String
        var description: String { "\(command) failed: \(output)" }
    }

    private func command(_ args: [String]) -> [String] {
        guard let netns else { return args }
        return ["ip", "netns", "exec", netns] + args
    }

    @discardableResult
    func run(_ args: [String], input: String? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = command(args)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let inPipe = Pipe()
        p.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        try p.run()
        if let input {
            inPipe.fileHandleForWriting.write(Data(input.utf8))
            try? inPipe.fileHandleForWriting.close()
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else { throw Failure(command: args.joined(separator: " "), output: text) }
        return text
    }

    func restore(_ tool: String, script: String, noflush: Bool) throws {
        try run([tool] + (noflush ? ["--noflush"] : []), input: script)
    }

    /// Names of `KUBE-*` chains in one table (`iptables-save -t <table>`).
    func kubeChains(save: String, table: String) throws -> Set<String> {
        let text = (try? run([save, "-t", table])) ?? ""
        return Set(text.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix(":KUBE-") else { return nil }
            return String(line.dropFirst().split(separator: " ").first ?? "")
        })
    }

    /// Removes every `KUBE-*` chain and every jump to one from the built-in chains of the
    /// nat, filter and mangle tables, as kube-proxy does when switching modes.
    /// Returns the number of chains removed.
    func removeKubeChains(save: String, restore: String) throws -> Int {
        var removed = 0
        for table in ["nat", "filter", "mangle"] {
            let text = (try? run([save, "-t", table])) ?? ""
            var chains: [String] = []
            var deletes: [String] = []
            for line in text.split(separator: "\n") {
                if line.hasPrefix(":KUBE-") {
                    chains.append(String(line.dropFirst().split(separator: " ").first ?? ""))
                } else if line.hasPrefix("-A "), line.contains(" -j KUBE-"),
                          let chain = line.split(separator: " ").dropFirst().first, !chain.hasPrefix("KUBE-") {
                    deletes.append("-D" + line.dropFirst(2))
                }
            }
            guard !chains.isEmpty || !deletes.isEmpty else { continue }
            var script = "*\(table)\n"
            for c in chains { script += ":\(c) - [0:0]\n" }
            for d in deletes { script += d + "\n" }
            for c in chains { script += "-X \(c)\n" }
            script += "COMMIT\n"
            try run([restore, "--noflush"], input: script)
            removed += chains.count
        }
        return removed
    }
}
