import Foundation
import SluiceTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A `sluice run` child process (it inherits the caller's network namespace), its log in a
/// file, /metrics on `metricsPort`, killed by its pid.
final class DaemonProcess: @unchecked Sendable {
    let process = Process()
    let logPath: String
    let metricsPort: Int
    /// CommitMonitor clock just before the spawn.
    private(set) var startTime = 0.0
    /// Wall clock (Unix seconds) at the same moment, to compare with the daemon's timestamps.
    private(set) var startWallTime = 0.0

    init(executable: String, arguments: [String], logPath: String, metricsPort: Int) throws {
        self.logPath = logPath
        self.metricsPort = metricsPort
        let run = ["run"] + arguments + ["--metrics-bind-address", "127.0.0.1:\(metricsPort)",
                                         "--healthz-bind-address", "127.0.0.1:\(metricsPort + 7)"]
        if let prefix = Self.prefix {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = prefix + [executable] + run
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = run
        }
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
    }

    /// `SLUICE_BENCH_DAEMON_PREFIX`, split at spaces: run by `/usr/bin/env` before the daemon's
    /// command, e.g. `LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2` or `taskset -c 1`.
    /// It must end by exec'ing the daemon (as `env`, `taskset` and `nice` do): the bench reads
    /// RSS and open files of, and signals, the process it started.
    static var prefix: [String]? {
        let words = (ProcessInfo.processInfo.environment["SLUICE_BENCH_DAEMON_PREFIX"] ?? "").split(separator: " ").map(String.init)
        return words.isEmpty ? nil : words
    }

    func start(clock: () -> Double) throws {
        startTime = clock()
        startWallTime = Date().timeIntervalSince1970
        try process.run()
        ChildRegistry.shared.add(pid)
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// `VmHWM` / `VmRSS` of the daemon in bytes.
    func status(_ field: String) -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return parseStatus(s, field)
    }

    /// The daemon's open file descriptors by kind (`socket`, `anon_inode:[eventfd]`, a
    /// path's first component…), from /proc/PID/fd; nil once it is gone.
    func openFiles() -> [String: Int]? {
        let dir = "/proc/\(pid)/fd"
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return nil }
        var kinds: [String: Int] = [:]
        for fd in fds {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\(fd)") else { continue }
            kinds[Self.fileKind(target), default: 0] += 1
        }
        return kinds
    }

    /// `socket:[123]` → `socket`, `anon_inode:[eventfd]` as is, `/dev/null` → `/dev`.
    static func fileKind(_ target: String) -> String {
        if target.hasPrefix("anon_inode:") { return target }
        if let colon = target.firstIndex(of: ":") { return String(target[..<colon]) }
        return "/" + (target.split(separator: "/").first.map(String.init) ?? "")
    }

    /// SIGTERM, then SIGKILL after `grace` seconds.
    func stop(grace: Double = 10) {
        guard process.isRunning else { ChildRegistry.shared.remove(pid); return }
        kill(pid, SIGTERM)
        let deadline = Date(timeIntervalSinceNow: grace)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
        ChildRegistry.shared.remove(pid)
    }

    /// The last lines of the daemon's log.
    func logTail(_ lines: Int = 20) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// `/metrics` as name{labels} → value (nil while the server is not up).
    func metrics() -> [String: Double]? {
        guard let body = httpGet(port: metricsPort, path: "/metrics") else { return nil }
        var out: [String: Double] = [:]
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let sp = line.lastIndex(of: " "), let v = Double(line[line.index(after: sp)...]) else { continue }
            out[String(line[..<sp])] = v
        }
        return out
    }
}

func parseStatus(_ s: String, _ field: String) -> Int? {
    for line in s.split(separator: "\n") where line.hasPrefix(field + ":") {
        let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
    }
    return nil
}

/// A GET to 127.0.0.1:port; the body of a 200 answer, or nil on any failure.
func httpGet(port: Int, path: String, timeoutSeconds: Int = 5) -> String? {
    guard let response = try? loopbackGet(port: port, path: path, timeoutSeconds: timeoutSeconds), response.status == 200 else { return nil }
    return response.body
}
