import Foundation
import SluiceModel

/// The Sluice side of one scale, run in a child process (`sluice bench --worker sluice …`)
/// so that its peak RSS (VmHWM) is Sluice's alone.
public func runSluiceWorker(scale: Scale, namespace: String, probe: ConnProbe?, options: BenchOptions, progress: ProgressSink) -> ImplResult {
    var result = ImplResult(implementation: .sluice)
    var state = ServiceState(scale: scale)
    let ctx = Generator.context()
    let target: SluiceTarget
    do {
        target = try SluiceTarget(namespace: namespace, context: ctx)
    } catch {
        for k in MetricKey.allCases { result[k] = .failed("", error) }
        return result
    }
    progress("cold start", 0, 1)
    do {
        // The harness's own copy of the plans (`state`) shares its endpoint arrays with the
        // compiler's, as a daemon's objects would: only one copy of the service set is held.
        let before = procStatusBytes("VmRSS") ?? 0
        let (s, d) = try target.coldStart(plans: state.allPlans, timeout: options.timeout)
        var detail = d
        // The harness's own state (the service set it changes) is in memory before the cold start.
        detail["rssBeforeColdStartBytes"] = Double(before)
        detail["rssAfterColdStartBytes"] = Double(procStatusBytes("VmRSS") ?? 0)
        result[.coldStart] = Metric(status: .ok, unit: "s", value: s, samples: [s], detail: detail)
    } catch {
        result[.coldStart] = .failed("s", error)
        for k in MetricKey.allCases where result[k] == nil { result[k] = Metric(status: .notRun, unit: "", note: "cold start failed") }
        return result
    }
    result[.connRate] = connTest(probe, options: options, progress: progress)
    compareConnectionCounters(probe, target, into: &result, options: options, progress: progress)
    let updates = measureUpdates(target, state: &state, samples: options.samples, budget: options.timeout,
                                 kernelSeconds: { target.lastKernelSeconds }, progress: progress)
    for (k, v) in updates { result[k] = v }
    result[.churn] = churnSearch(target, state: &state, options: options, budget: options.timeout,
                                 kernelSeconds: { target.lastKernelSeconds }, progress: progress)
    connTestAfterUpdates(probe, into: &result, options: options, progress: progress)
    let hwm = procStatusBytes("VmHWM") ?? 0
    let rss = procStatusBytes("VmRSS") ?? 0
    result[.memory] = Metric(status: .ok, unit: "bytes", value: Double(hwm), detail: ["vmRSSAtEnd": Double(rss)],
                             note: "VmHWM of the worker process (plans, incremental compiler state, netlink applier's committed ruleset, harness state)")
    return result
}

/// New-connection rate right after the cold start (the headline: cost at this scale).
func connTest(_ probe: ConnProbe?, options: BenchOptions, progress: ProgressSink) -> Metric {
    guard let probe, options.connSeconds > 0 else { return Metric(status: .notRun, unit: "conn/s", note: "--conn-seconds 0") }
    progress("new connections", 0, 1)
    do {
        return try probe.connectionRate(to: Generator.clusterIP(0), port: Generator.servicePort, seconds: options.connSeconds)
    } catch {
        return .failed("conn/s", error)
    }
}

/// New-connection rate with the connection counters on and off, alternating one repetition
/// of each three times (side by side on a noisy machine); recorded as detail of the metric.
func compareConnectionCounters(_ probe: ConnProbe?, _ target: SluiceTarget, into result: inout ImplResult,
                               options: BenchOptions, progress: ProgressSink) {
    guard let probe, options.connSeconds > 0, var m = result[.connRate], m.status == .ok,
          target.compiler.context.connectionCounters else { return }
    progress("new connections, counters on and off", 0, 1)
    var on: [Double] = [], off: [Double] = []
    do {
        for _ in 0..<3 {
            for counting in [false, true] {
                try target.setConnectionCounting(counting)
                let r = try probe.connectionRate(to: Generator.clusterIP(0), port: Generator.servicePort,
                                                 seconds: options.connSeconds, reps: 1)
                if let v = r.value { if counting { on.append(v) } else { off.append(v) } }
            }
        }
    } catch {
        try? target.setConnectionCounting(true)
        m.note = (m.note ?? "") + "; counters on/off comparison failed: \(error)"
        result[.connRate] = m
        return
    }
    guard let a = Summary(on)?.p50, let b = Summary(off)?.p50 else { return }
    var d = m.detail ?? [:]
    d["countersOnConnPerSec"] = a
    d["countersOffConnPerSec"] = b
    d["countersOnOverOff"] = a / b
    m.detail = d
    m.note = (m.note ?? "") + "; detail.countersOn/OffConnPerSec: medians of 3 alternating 1-repetition runs with the connection counters' jumps on and off"
    result[.connRate] = m
}

/// The same test again after all updates and churn, recorded as detail of the metric.
func connTestAfterUpdates(_ probe: ConnProbe?, into result: inout ImplResult, options: BenchOptions, progress: ProgressSink) {
    guard let probe, options.connSeconds > 0, var m = result[.connRate], m.status == .ok else { return }
    progress("new connections after updates", 0, 1)
    if let again = try? probe.connectionRate(to: Generator.clusterIP(0), port: Generator.servicePort, seconds: options.connSeconds),
       let v = again.value {
        var d = m.detail ?? [:]
        d["afterUpdatesConnPerSec"] = v
        m.detail = d
        m.note = (m.note ?? "") + "; measured after the cold start; detail.afterUpdatesConnPerSec: again after all update metrics and churn"
        result[.connRate] = m
    }
}

/// Weighted progress with an ETA, on standard error.
public final class ProgressReporter: @unchecked Sendable {
    let enabled: Bool
    let tty: Bool
    let start = now()
    var totalWeight: Double = 1
    var doneWeight: Double = 0
    var unitWeight: Double = 0
    var unitFraction: Double = 0
    var label = ""
    var lastPrint: Double = 0
    var lastLabel = ""
    let lock = NSLock()

    public init(enabled: Bool = true) {
        self.enabled = enabled
        tty = isatty(2) != 0
    }

    public func setTotal(_ w: Double) { totalWeight = max(w, 1e-9) }

    public func beginUnit(_ name: String, weight: Double) {
        lock.lock()
        unitWeight = weight
        unitFraction = 0
        label = name
        lock.unlock()
        render(force: true)
    }

    public func endUnit() {
        lock.lock()
        doneWeight += unitWeight
        unitWeight = 0
        unitFraction = 0
        lock.unlock()
    }

    /// Progress inside the current unit.
    public func update(_ text: String, fraction: Double) {
        lock.lock()
        unitFraction = max(unitFraction, min(max(fraction, 0), 1))
        let base = label.split(separator: "·").first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? label
        label = base + " · " + text
        lock.unlock()
        render(force: false)
    }

    public func unitLabel(_ name: String) { lock.lock(); label = name; lock.unlock() }

    func render(force: Bool) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        let t = now()
        if !force && t - lastPrint < (tty ? 0.2 : 5) && label == lastLabel { return }
        if !tty && !force && label.split(separator: "·").prefix(2) == lastLabel.split(separator: "·").prefix(2) && t - lastPrint < 5 { return }
        lastPrint = t
        lastLabel = label
        let f = min(1, (doneWeight + unitWeight * unitFraction) / totalWeight)
        let elapsed = t - start
        let eta = f > 0.01 ? elapsed * (1 - f) / f : Double.nan
        let width = 24
        let filled = Int(f * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let line = "[\(bar)] \(Int(f * 100))% \(label) · \(fmtDuration(elapsed)) elapsed · ETA \(eta.isNaN ? "?" : fmtDuration(eta))"
        let out = tty ? "\r\u{1B}[2K" + line : line + "\n"
        FileHandle.standardError.write(Data(out.utf8))
    }

    public func finish() {
        guard enabled, tty else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

func fmtDuration(_ s: Double) -> String {
    if s < 60 { return "\(Int(s))s" }
    if s < 3600 { return "\(Int(s) / 60)m\(String(format: "%02d", Int(s) % 60))s" }
    return "\(Int(s) / 3600)h\(String(format: "%02d", Int(s) % 3600 / 60))m"
}

/// Runs every scale: Sluice (in a child process when `workerExecutable` is set), then each
/// baseline, each in its own fresh topology of namespaces, deleted afterwards.
public final class BenchRunner {
    public let options: BenchOptions
    /// `sluice` binary to re-execute for the Sluice worker; nil runs it in this process.
    public let workerExecutable: String?
    public let progress: ProgressReporter

    public init(options: BenchOptions, workerExecutable: String?, progress: ProgressReporter = ProgressReporter()) {
        self.options = options
        self.workerExecutable = workerExecutable
        self.progress = progress
    }

    func weight(_ scale: Scale, _ impl: Implementation) -> Double {
        let e = Double(scale.totalEndpoints)
        switch impl {
        case .sluice:
            return 10 + e / 2e4 + options.churnProbeSeconds * 8 + options.churnSeconds + Double(options.samples) * 0.01
        case .kubeProxyNft, .kubeProxyIptables:
            if let m = options.baselineMaxServices, scale.services > m { return 0.1 }
            let perOp = 0.05 + e / 1e5 * (impl == .kubeProxyNft ? 2.5 : 0.8)
            let cold = min(options.timeout, e / 1e5 * (impl == .kubeProxyNft ? 300 : 20))
            let updates = min(options.timeout * 3, Double(options.baselineSamples) * 5 * perOp)
            let churn = options.baselineChurn ? min(options.timeout, options.churnProbeSeconds * 4 + options.churnSeconds) : 0
            return 10 + cold + updates + churn
        }
    }

    /// Called after each implementation with the results so far (the command writes partial files).
    public var onScale: (([ScaleResult]) -> Void)?

    public func run() -> [ScaleResult] {
        let impls = [Implementation.sluice] + options.baselines
        progress.setTotal(options.scales.reduce(0) { acc, s in acc + impls.reduce(0) { $0 + weight(s, $1) } })
        var out: [ScaleResult] = []
        for scale in options.scales {
            var results: [ImplResult] = []
            let plans = Generator.services(scale)
            for impl in impls {
                progress.beginUnit("\(scale) · \(impl.rawValue)", weight: weight(scale, impl))
                let r = runOne(scale, impl, plans: plans)
                results.append(r)
                progress.endUnit()
                onScale?(out + [Report.scaleResult(scale, results)])
            }
            out.append(Report.scaleResult(scale, results))
        }
        progress.finish()
        return out
    }

    func sink(_ scale: Scale, _ impl: Implementation) -> ProgressSink {
        { [progress] label, done, total in
            progress.update("\(label) \(done)/\(total)", fraction: total > 0 ? Double(done) / Double(total) : 0)
        }
    }

    func runOne(_ scale: Scale, _ impl: Implementation, plans: [ServicePortPlan]) -> ImplResult {
        var result = ImplResult(implementation: impl)
        if impl != .sluice, let m = options.baselineMaxServices, scale.services > m {
            for k in MetricKey.allCases {
                result[k] = Metric(status: .notRun, unit: "", note: "baselines not run above \(m) services (--baseline-max-services)")
            }
            return result
        }
        let topo: Topology
        do {
            topo = try Topology(label: impl == .sluice ? "sl" : (impl == .kubeProxyNft ? "kpn" : "kpi"),
                                probeEndpoints: Generator.probeEndpoints(scale))
        } catch {
            for k in MetricKey.allCases { result[k] = .failed("", error) }
            return result
        }
        defer { topo.close() }
        let p = sink(scale, impl)
        switch impl {
        case .sluice:
            if let exe = workerExecutable {
                result = runWorkerProcess(exe, scale: scale, topology: topo)
            } else {
                result = runSluiceWorker(scale: scale, namespace: topo.node.name, probe: topo.probe, options: options, progress: p)
                result.notes.append("run in-process: memory is the whole harness process")
            }
        case .kubeProxyNft, .kubeProxyIptables:
            result = runBaseline(impl, scale: scale, plans: plans, topo: topo, progress: p)
        }
        p("compile throughput", 0, 1)
        result[.compileThroughput] = compileThroughput(impl, scale: scale, plans: plans)
        result[.loadThroughput] = impl == .sluice ? loadThroughput(scale: scale, plans: plans)
            : Metric(status: .notApplicable, unit: "endpoints/s", note: "no incremental compiler")
        if result[.connRate] == nil {
            result[.connRate] = Metric(status: result[.coldStart]?.status == .timeout ? .timeout : .notRun, unit: "conn/s",
                                       note: options.connSeconds > 0 ? "ruleset not loaded" : "--conn-seconds 0")
        }
        for k in MetricKey.allCases where result[k] == nil { result[k] = Metric(status: .notRun, unit: "", note: "missing") }
        for k in MetricKey.allCases where result[k]?.status == .timeout {
            result.metrics[k.rawValue]!.detail = (result[k]?.detail ?? [:]).merging(["timeoutSeconds": options.timeout]) { a, _ in a }
        }
        return result
    }

    func runBaseline(_ impl: Implementation, scale: Scale, plans: [ServicePortPlan], topo: Topology, progress: ProgressSink) -> ImplResult {
        var result = ImplResult(implementation: impl)
        let ctx = Generator.context()
        let target: BenchTarget = impl == .kubeProxyNft ? KubeProxyNftTarget(ns: topo.node, context: ctx)
                                                        : KubeProxyIptablesTarget(ns: topo.node, context: ctx)
        result[.memory] = Metric(status: .notApplicable, unit: "bytes", note: "Sluice process memory only")
        progress("cold start", 0, 1)
        var loaded = false
        do {
            let (s, d) = try target.coldStart(plans, timeout: options.timeout)
            result[.coldStart] = Metric(status: .ok, unit: "s", value: s, samples: [s], detail: d)
            loaded = true
            result[.connRate] = connTest(topo.probe, options: options, progress: progress)
        } catch {
            result[.coldStart] = .failed("s", error)
            if let nft = target as? KubeProxyNftTarget, error is TimeoutError {
                progress("cold start timed out; loading in 100-service transactions (untimed)", 0, 1)
                do {
                    let s = try nft.loadChunked(plans, timeout: options.timeout * 2)
                    result.notes.append("cold start (one nft -f) exceeded --timeout; for the update metrics the ruleset was loaded instead with chains in transactions of 100 services, then all map elements (\(String(format: "%.1f", s)) s, untimed, budget 2 × --timeout)")
                    loaded = true
                    result[.connRate] = connTest(topo.probe, options: options, progress: progress)
                } catch {
                    result.notes.append("chunked load also failed: \(error)")
                }
            }
        }
        guard loaded else {
            for k in [MetricKey.endpointChange, .serviceAdd, .serviceDelete, .scaleUp, .scaleDown, .churn] {
                result[k] = Metric(status: result[.coldStart]?.status == .timeout ? .timeout : .notRun,
                                   unit: k == .churn ? "changes/s" : "s", note: "ruleset could not be loaded within the timeout")
            }
            return result
        }
        var state = ServiceState(scale: scale)
        let updates = measureUpdates(target, state: &state, samples: options.baselineSamples, budget: options.timeout, progress: progress)
        for (k, v) in updates { result[k] = v }
        if options.baselineChurn {
            result[.churn] = churnSearch(target, state: &state, options: options, budget: options.timeout, progress: progress)
        } else {
            result[.churn] = Metric(status: .notRun, unit: "changes/s", note: "--no-baseline-churn")
        }
        connTestAfterUpdates(topo.probe, into: &result, options: options, progress: progress)
        return result
    }

    /// Re-executes `sluice bench --worker sluice …` and reads its JSON result.
    func runWorkerProcess(_ exe: String, scale: Scale, topology: Topology) -> ImplResult {
        let outPath = FileManager.default.temporaryDirectory.appendingPathComponent("sb-worker-\(randomTag(8)).json").path
        defer { try? FileManager.default.removeItem(atPath: outPath) }
        let optsPath = FileManager.default.temporaryDirectory.appendingPathComponent("sb-opts-\(randomTag(8)).json").path
        defer { try? FileManager.default.removeItem(atPath: optsPath) }
        var failed = ImplResult(implementation: .sluice)
        do {
            var o = options
            o.scales = [scale]
            try JSONEncoder().encode(o).write(to: URL(fileURLWithPath: optsPath))
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = ["bench", "--worker", "sluice", "--worker-netns", topology.node.name, "--worker-client-netns", topology.client.name,
                           "--worker-server-netns", topology.server.name, "--worker-options", optsPath, "--worker-out", outPath]
            let errPipe = Pipe()
            p.standardError = errPipe
            p.standardOutput = FileHandle.nullDevice
            p.standardInput = FileHandle.nullDevice
            let sem = DispatchSemaphore(value: 0)
            p.terminationHandler = { _ in sem.signal() }
            let tail = TailBuffer()
            errPipe.fileHandleForReading.readabilityHandler = { [progress] h in
                let data = h.availableData
                if data.isEmpty { return }
                for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                    if line.hasPrefix("@@progress ") {
                        let parts = line.dropFirst(11).split(separator: "\t")
                        if parts.count == 3, let d = Int(parts[1]), let t = Int(parts[2]) {
                            progress.update("\(parts[0]) \(d)/\(t)", fraction: t > 0 ? Double(d) / Double(t) : 0)
                        }
                    } else {
                        tail.append(String(line))
                    }
                }
            }
            try p.run()
            ChildRegistry.shared.add(p.processIdentifier)
            let limit = options.timeout * 6 + 120
            if sem.wait(timeout: .now() + limit) == .timedOut {
                kill(p.processIdentifier, SIGKILL)
                sem.wait()
                ChildRegistry.shared.remove(p.processIdentifier)
                errPipe.fileHandleForReading.readabilityHandler = nil
                for k in MetricKey.allCases { failed[k] = Metric(status: .timeout, unit: "", note: "Sluice worker exceeded \(Int(limit)) s") }
                return failed
            }
            ChildRegistry.shared.remove(p.processIdentifier)
            errPipe.fileHandleForReading.readabilityHandler = nil
            guard p.terminationStatus == 0, let data = FileManager.default.contents(atPath: outPath) else {
                throw BenchError("Sluice worker exited with status \(p.terminationStatus): \(tail.text)")
            }
            return try JSONDecoder().decode(ImplResult.self, from: data)
        } catch {
            for k in MetricKey.allCases { failed[k] = .failed("", error) }
            return failed
        }
    }
}

final class TailBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ s: String) { lock.lock(); lines.append(s); if lines.count > 40 { lines.removeFirst() }; lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return lines.joined(separator: "\n") }
}

