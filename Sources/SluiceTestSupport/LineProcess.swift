import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A background subprocess spoken to in lines: stdin for commands, stdout for answers.
/// Used for the datapath servers and long-lived client sessions. `terminate()` (and deinit)
/// closes stdin and kills the process by its own pid, then reaps it.
public final class LineProcess: @unchecked Sendable {
    public let arguments: [String]
    private let process = Process()
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let cond = NSCondition()
    private var buffer = Data()
    private var errBuffer = Data()
    private var eof = false
    private var terminated = false

    /// Starts `args` (looked up in PATH via /usr/bin/env).
    public init(_ args: [String]) throws {
        arguments = args
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = args
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        try process.run()
        let out = stdoutPipe.fileHandleForReading
        let err = stderrPipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            while true {
                let d = out.availableData
                cond.lock()
                if d.isEmpty { eof = true } else { buffer.append(d) }
                cond.broadcast()
                cond.unlock()
                if d.isEmpty { return }
            }
        }
        Thread.detachNewThread { [self] in
            while true {
                let d = err.availableData
                if d.isEmpty { return }
                cond.lock()
                errBuffer.append(d)
                cond.unlock()
            }
        }
    }

    public var pid: Int32 { process.processIdentifier }

    /// What the process wrote to stderr so far (for failure messages).
    public var stderrText: String {
        cond.lock()
        defer { cond.unlock() }
        return String(decoding: errBuffer, as: UTF8.self)
    }

    /// The next line of stdout, or nil at EOF or after `timeout` seconds.
    public func readLine(timeout: TimeInterval) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock()
        defer { cond.unlock() }
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<nl]
                buffer.removeSubrange(buffer.startIndex...nl)
                return String(decoding: line, as: UTF8.self)
            }
            if eof { return nil }
            if !cond.wait(until: deadline) { return nil }
        }
    }

    /// Whether stdout reached EOF (the process closed it or exited) and every line was read.
    public var finishedOutput: Bool {
        cond.lock()
        defer { cond.unlock() }
        return eof && buffer.isEmpty
    }

    public func writeLine(_ line: String) {
        stdinPipe.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    /// Closes stdin, kills the process (SIGKILL to its own pid) and waits for it.
    public func terminate() {
        cond.lock()
        let already = terminated
        terminated = true
        cond.unlock()
        guard !already else { return }
        try? stdinPipe.fileHandleForWriting.close()
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { terminate() }
}
