import Foundation
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
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["run"] + arguments + ["--metrics-bind-address", "127.0.0.1:\(metricsPort)",
                                                   "--healthz-bind-address", "127.0.0.1:\(metricsPort + 7)"]
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
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

/// A plain HTTP/1.0 GET to 127.0.0.1:port; the body, or nil on any failure.
func httpGet(port: Int, path: String, timeoutSeconds: Int = 5) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    let ok = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard ok == 0 else { return nil }
    let req = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    guard send(fd, req, req.count, 0) == req.count else { return nil }
    var data = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { break }
        data += buf[0..<n]
    }
    let text = String(decoding: data, as: UTF8.self)
    guard text.hasPrefix("HTTP/1.") && text.contains(" 200 "), let r = text.range(of: "\r\n\r\n") else { return nil }
    return String(text[r.upperBound...])
}
