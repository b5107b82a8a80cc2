import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Monotonic seconds.
@inline(__always)
public func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// Result of one subprocess run.
public struct ProcResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var seconds: Double
    public var timedOut: Bool
    public var ok: Bool { status == 0 && !timedOut }
}

public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Runs `args` (args[0] looked up in PATH via /usr/bin/env) with stdout/stderr going to
/// temporary files; kills the process (by its pid, SIGKILL) after `timeout` seconds.
public func runProc(_ args: [String], timeout: Double = 600, stdin: String? = nil) throws -> ProcResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let dir = FileManager.default.temporaryDirectory
    let tag = UUID().uuidString.prefix(8)
    let outURL = dir.appendingPathComponent("sb-\(tag).out"), errURL = dir.appendingPathComponent("sb-\(tag).err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: outURL); try? FileManager.default.removeItem(at: errURL) }
    let outH = try FileHandle(forWritingTo: outURL), errH = try FileHandle(forWritingTo: errURL)
    p.standardOutput = outH
    p.standardError = errH
    var inURL: URL?
    if let stdin {
        let u = dir.appendingPathComponent("sb-\(tag).in")
        try stdin.write(to: u, atomically: false, encoding: .utf8)
        p.standardInput = try FileHandle(forReadingFrom: u)
        inURL = u
    } else {
        p.standardInput = FileHandle.nullDevice
    }
    defer { if let inURL { try? FileManager.default.removeItem(at: inURL) } }
    let sem = DispatchSemaphore(value: 0)
    p.terminationHandler = { _ in sem.signal() }
    let t0 = now()
    try p.run()
    var timedOut = false
    if sem.wait(timeout: .now() + timeout) == .timedOut {
        timedOut = true
        kill(p.processIdentifier, SIGKILL)
        sem.wait()
    }
    let t1 = now()
    try? outH.close(); try? errH.close()
    let out = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
    let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    return ProcResult(status: p.terminationStatus, stdout: out, stderr: err, seconds: t1 - t0, timedOut: timedOut)
}

@discardableResult
public func runChecked(_ args: [String], timeout: Double = 120) throws -> ProcResult {
    let r = try runProc(args, timeout: timeout)
    guard r.ok else {
        throw BenchError("command failed (\(r.timedOut ? "timeout" : "status \(r.status)")): \(args.joined(separator: " "))\n\(r.stderr.prefix(2000))")
    }
    return r
}

/// Namespaces this process created; deleted by `cleanupAllNamespaces` (also on SIGINT/SIGTERM).
final class NamespaceRegistry: @unchecked Sendable {
    static let shared = NamespaceRegistry()
    private let lock = NSLock()
    private var names: Set<String> = []
    func add(_ n: String) { lock.lock(); names.insert(n); lock.unlock() }
    func remove(_ n: String) { lock.lock(); names.remove(n); lock.unlock() }
    func all() -> [String] { lock.lock(); defer { lock.unlock() }; return Array(names) }
}

public func deleteNamespace(_ name: String) {
    _ = try? runProc(["ip", "netns", "del", name], timeout: 60)
    NamespaceRegistry.shared.remove(name)
}

/// Deletes every namespace this process created and has not deleted yet.
public func cleanupAllNamespaces() {
    for n in NamespaceRegistry.shared.all() { deleteNamespace(n) }
}

nonisolated(unsafe) private var signalSources: [DispatchSourceSignal] = []

/// On SIGINT/SIGTERM: delete our namespaces, kill registered children, exit 130.
public func installCleanupSignalHandlers() {
    for sig in [SIGINT, SIGTERM] {
        signal(sig, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        s.setEventHandler {
            ChildRegistry.shared.killAll()
            cleanupAllNamespaces()
            FileHandle.standardError.write(Data("\nsluice bench: interrupted; namespaces deleted\n".utf8))
            exit(130)
        }
        s.resume()
        signalSources.append(s)
    }
}

/// Long-running children (servers, workers) this process started, killed by pid on interrupt.
final class ChildRegistry: @unchecked Sendable {
    static let shared = ChildRegistry()
    private let lock = NSLock()
    private var pids: Set<Int32> = []
    func add(_ p: Int32) { lock.lock(); pids.insert(p); lock.unlock() }
    func remove(_ p: Int32) { lock.lock(); pids.remove(p); lock.unlock() }
    func killAll() { lock.lock(); let all = pids; lock.unlock(); for p in all { kill(p, SIGKILL) } }
}

/// A network namespace with a unique name, deleted by `close()`.
public final class Netns: @unchecked Sendable {
    public let name: String
    private var closed = false

    public init(_ name: String) throws {
        self.name = name
        try runChecked(["ip", "netns", "add", name])
        NamespaceRegistry.shared.add(name)
        do {
            try exec(["ip", "link", "set", "lo", "up"])
        } catch {
            close()
            throw error
        }
    }

    public var path: String { "/run/netns/\(name)" }

    /// `nsenter --net=… args` (no fork, so the pid is the command's).
    public func command(_ args: [String]) -> [String] { ["nsenter", "--net=\(path)"] + args }

    @discardableResult
    public func exec(_ args: [String], timeout: Double = 120) throws -> ProcResult {
        try runChecked(command(args), timeout: timeout)
    }

    public func run(_ args: [String], timeout: Double = 120, stdin: String? = nil) throws -> ProcResult {
        try runProc(command(args), timeout: timeout, stdin: stdin)
    }

    public func close() {
        guard !closed else { return }
        closed = true
        deleteNamespace(name)
    }

    deinit { close() }
}

/// Reads `VmHWM` / `VmRSS` (bytes) from /proc/self/status.
public func procStatusBytes(_ field: String) -> Int? {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in s.split(separator: "\n") where line.hasPrefix(field + ":") {
        let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
    }
    return nil
}

/// Short random hex tag for unique names.
public func randomTag(_ n: Int = 6) -> String {
    String(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(n))
}
