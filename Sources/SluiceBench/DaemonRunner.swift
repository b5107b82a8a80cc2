import Foundation

/// `sluice bench --daemon`: for every scale and source, a fresh network namespace
/// (`sluice-bench-dmn-<source>-<tag>`, deleted afterwards, also on failure or Ctrl-C) and a
/// worker process inside it (`nsenter --net=… sluice bench --daemon-worker SOURCE`) that
/// runs the fake API server or writes the manifests, spawns `sluice run` and measures it.
public final class DaemonBenchRunner {
    public let options: DaemonBenchOptions
    public let executable: String
    public let progress: ProgressReporter
    /// Called after each source with the results so far (the command writes partial files).
    public var onResult: (([DaemonScaleResult]) -> Void)?

    public init(options: DaemonBenchOptions, executable: String, progress: ProgressReporter = ProgressReporter()) {
        self.options = options
        self.executable = executable
        self.progress = progress
    }

    func weight(_ scale: Scale, _ source: DaemonSource) -> Double {
        let load = Double(scale.totalEndpoints) / 2e4
        return source == .api ? 5 + load + Double(options.samples) * 0.01 + options.churnSeconds + (options.soak?.seconds ?? 0)
                              : 5 + load * 3 + Double(options.directorySamples) * 0.3
    }

    public func run() -> [DaemonScaleResult] {
        progress.setTotal(options.scales.reduce(0) { acc, s in acc + options.sources.reduce(0) { $0 + weight(s, $1) } })
        var out: [DaemonScaleResult] = []
        for scale in options.scales {
            var results: [DaemonSourceResult] = []
            for source in options.sources {
                progress.beginUnit("\(scale) · sluice run · \(source.rawValue)", weight: weight(scale, source))
                results.append(runOne(scale, source))
                progress.endUnit()
                onResult?(out + [DaemonScaleResult(scale: scale, results: results)])
            }
            out.append(DaemonScaleResult(scale: scale, results: results))
        }
        progress.finish()
        return out
    }

    func runOne(_ scale: Scale, _ source: DaemonSource) -> DaemonSourceResult {
        var failed = DaemonSourceResult(source: source)
        do {
            let ns = try Netns("sluice-bench-dmn-\(source == .api ? "api" : "dir")-\(randomTag(6))")
            failed.namespace = ns.name
            defer { ns.close() }
            var result = try runWorker(scale, source, ns)
            result.namespace = ns.name
            return result
        } catch {
            failed.error = "\(error)"
            return failed
        }
    }

    /// Runs the worker inside `ns` and decodes its result; kills it (and its daemon) by pid
    /// when it exceeds its time limit.
    func runWorker(_ scale: Scale, _ source: DaemonSource, _ ns: Netns) throws -> DaemonSourceResult {
        let tmp = FileManager.default.temporaryDirectory
        let optsPath = tmp.appendingPathComponent("sb-dopts-\(randomTag(8)).json").path
        let outPath = tmp.appendingPathComponent("sb-dout-\(randomTag(8)).json").path
        defer { try? FileManager.default.removeItem(atPath: optsPath); try? FileManager.default.removeItem(atPath: outPath) }
        var o = options
        o.scales = [scale]
        o.sources = [source]
        try JSONEncoder().encode(o).write(to: URL(fileURLWithPath: optsPath))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ns.command([executable, "bench", "--daemon-worker", source.rawValue, "--worker-options", optsPath, "--worker-out", outPath])
        let lines = WorkerLines(progress: progress)
        let errPipe = Pipe()
        p.standardError = errPipe
        p.standardOutput = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        errPipe.fileHandleForReading.readabilityHandler = { h in lines.feed(h.availableData) }
        let sem = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in sem.signal() }
        try p.run()
        ChildRegistry.shared.add(p.processIdentifier)
        let limit = options.timeout * 4 + options.churnSeconds + 300
            + (options.soak.map { $0.seconds + $0.convergeTimeout * 2 } ?? 0)
        let timedOut = sem.wait(timeout: .now() + limit) == .timedOut
        if timedOut { kill(p.processIdentifier, SIGKILL); sem.wait() }
        ChildRegistry.shared.remove(p.processIdentifier)
        errPipe.fileHandleForReading.readabilityHandler = nil
        lines.killDaemonIfAlive()
        if timedOut { throw BenchError("daemon worker exceeded \(Int(limit)) s: \(lines.tail.text)") }
        guard p.terminationStatus == 0, let data = FileManager.default.contents(atPath: outPath) else {
            throw BenchError("daemon worker exited with status \(p.terminationStatus): \(lines.tail.text)")
        }
        return try JSONDecoder().decode(DaemonSourceResult.self, from: data)
    }
}

/// The worker's standard error: progress lines, the daemon's pid, anything else kept as a tail.
final class WorkerLines: @unchecked Sendable {
    let progress: ProgressReporter
    let tail = TailBuffer()
    private let lock = NSLock()
    private var daemonPID: Int32?

    init(progress: ProgressReporter) { self.progress = progress }

    func feed(_ data: Data) {
        guard !data.isEmpty else { return }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            if line.hasPrefix("@@daemon-pid "), let pid = Int32(line.dropFirst(13)) {
                lock.lock(); daemonPID = pid; lock.unlock()
                ChildRegistry.shared.add(pid)
            } else if line.hasPrefix("@@progress ") {
                let parts = line.dropFirst(11).split(separator: "\t")
                if parts.count == 3, let d = Int(parts[1]), let t = Int(parts[2]) {
                    progress.update("\(parts[0]) \(d)/\(t)", fraction: t > 0 ? Double(d) / Double(t) : 0)
                }
            } else {
                tail.append(String(line))
            }
        }
    }

    /// The worker stops its daemon; if the worker died first, the daemon (its child) is
    /// killed here by pid, before the namespace goes.
    func killDaemonIfAlive() {
        lock.lock()
        let pid = daemonPID
        lock.unlock()
        guard let pid else { return }
        if kill(pid, 0) == 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8), stat.contains("run") {
            kill(pid, SIGKILL)
        }
        ChildRegistry.shared.remove(pid)
    }
}
