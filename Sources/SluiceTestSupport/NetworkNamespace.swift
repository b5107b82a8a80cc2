import Foundation

/// Result of running a subprocess.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public var succeeded: Bool { status == 0 }
}

public struct CommandError: Error, CustomStringConvertible {
    public var command: [String]
    public var result: CommandResult

    public var description: String {
        "command failed (\(result.status)): \(command.joined(separator: " "))\n\(result.stderr)\(result.stdout)"
    }
}

/// Runs a program (looked up in PATH) and captures its output.
@discardableResult
public func runCommand(_ args: [String], input: String? = nil) throws -> CommandResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let inPipe = Pipe()
    p.standardInput = input == nil ? FileHandle.nullDevice : inPipe
    try p.run()
    if let input {
        inPipe.fileHandleForWriting.write(Data(input.utf8))
        try? inPipe.fileHandleForWriting.close()
    }
    // Read both pipes concurrently so neither fills up.
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return CommandResult(status: p.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// Runs a program and throws unless it exits 0.
@discardableResult
public func runChecked(_ args: [String], input: String? = nil) throws -> CommandResult {
    let r = try runCommand(args, input: input)
    guard r.succeeded else { throw CommandError(command: args, result: r) }
    return r
}

public enum KernelTestError: Error, CustomStringConvertible {
    case notRoot
    case missingTool(String)

    public var description: String {
        switch self {
        case .notRoot: return "kernel tests must run as root (CI runs them as root; they are never skipped)"
        case .missingTool(let t): return "kernel tests need \(t) (install it via .ci/run)"
        }
    }
}

/// Fails loudly unless the process can create network namespaces and run `tool`s.
public func requireKernelTestEnvironment(tools: [String] = ["ip", "nft"]) throws {
    guard getuid() == 0 else { throw KernelTestError.notRoot }
    for t in tools {
        let r = try runCommand(["sh", "-c", "command -v \(t)"])
        guard r.succeeded else { throw KernelTestError.missingTool(t) }
    }
}

/// A network namespace created for one test, with a unique name, deleted by `close()`
/// (and, as a safety net, on deinit). Nothing here touches the root namespace.
public final class NetworkNamespace: @unchecked Sendable {
    public let name: String
    private var closed = false
    private let lock = NSLock()

    /// Creates `sluice-<label>-<random>`; loopback is brought up.
    public init(label: String = "t") throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let clean = label.filter { $0.isLetter || $0.isNumber || $0 == "-" }.prefix(20)
        name = "sl-\(clean)-\(suffix)"
        try SluiceTestSupport.runChecked(["ip", "netns", "add", name])
        do {
            try SluiceTestSupport.runChecked(["ip", "-n", name, "link", "set", "lo", "up"])
        } catch {
            _ = try? runCommand(["ip", "netns", "del", name])
            throw error
        }
    }

    /// Runs a command inside this namespace.
    @discardableResult
    public func run(_ args: [String], input: String? = nil) throws -> CommandResult {
        try runCommand(["ip", "netns", "exec", name] + args, input: input)
    }

    /// Runs a command inside this namespace and throws unless it exits 0.
    @discardableResult
    public func runChecked(_ args: [String], input: String? = nil) throws -> CommandResult {
        let r = try run(args, input: input)
        guard r.succeeded else { throw CommandError(command: ["ip", "netns", "exec", name] + args, result: r) }
        return r
    }

    /// Path of this namespace's handle, for `setns(2)`.
    public var path: String { "/run/netns/\(name)" }

    public func close() {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        _ = try? runCommand(["ip", "netns", "del", name])
    }

    deinit { close() }
}

/// Runs `body` with a fresh namespace that is deleted afterwards, even on failure.
public func withNetworkNamespace<T>(label: String = "t", _ body: (NetworkNamespace) throws -> T) throws -> T {
    let ns = try NetworkNamespace(label: label)
    defer { ns.close() }
    return try body(ns)
}

/// Async variant of `withNetworkNamespace`.
public func withNetworkNamespace<T>(label: String = "t", _ body: (NetworkNamespace) async throws -> T) async throws -> T {
    let ns = try NetworkNamespace(label: label)
    defer { ns.close() }
    return try await body(ns)
}

extension NetworkNamespace {
    /// `nft list table <family> sluice` without the connection-counter sets, whose elements
    /// (addresses that saw traffic, for up to an hour) are runtime state, not configuration.
    public func sluiceTableListing(family: String = "ip") throws -> String {
        let text = try run(["nft", "list", "table", family, "sluice"]).stdout
        var out: [Substring] = []
        var skipping = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t == "set service-connections {" || t == "set endpoint-connections {" { skipping = true }
            if !skipping { out.append(line) }
            if skipping && t == "}" { skipping = false }
        }
        return out.joined(separator: "\n")
    }
}
