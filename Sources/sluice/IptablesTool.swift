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

    /// A program that is not in `PATH` (a container image without iptables, say).
    struct NotFound: Error, CustomStringConvertible {
        var program: String
        var description: String {
            "\(program) not found in PATH (\(ProcessInfo.processInfo.environment["PATH"] ?? "")): run this where \(program) is installed (on the node itself)"
        }
    }

    /// The absolute path of `program` from `PATH`.
    static func resolve(_ program: String) throws -> String {
        if program.contains("/") { return program }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(program)") {
            return "\(dir)/\(program)"
        }
        throw NotFound(program: program)
    }

    /// The command line, with the program (and `ip` for a namespace) resolved from `PATH`: a
    /// missing program is a clear error, never an empty output.
    private func command(_ args: [String]) throws -> [String] {
        let program = try Self.resolve(args[0])
        guard let netns else { return [program] + args.dropFirst() }
        return [try Self.resolve("ip"), "netns", "exec", netns, program] + args.dropFirst()
    }

    @discardableResult
    func run(_ args: [String], input: String? = nil) throws -> String {
        let argv = try command(args)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
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

    /// `SAVE -t TABLE`; empty when the kernel has no such table (the tool fails), but a
    /// missing tool is an error.
    private func tableDump(_ save: String, _ table: String) throws -> String {
        do {
            return try run([save, "-t", table])
        } catch let e as NotFound {
            throw e
        } catch {
            return ""
        }
    }

    /// Names of `KUBE-*` chains in one table (`iptables-save -t <table>`).
    func kubeChains(save: String, table: String) throws -> Set<String> {
        let text = try tableDump(save, table)
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
            let text = try tableDump(save, table)
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
