import Foundation
import SluiceCompiler
import SluiceEmit
import SluiceModel

/// Everything `sluice bench` can be told.
public struct BenchOptions: Codable, Sendable {
    public var scales: [Scale]
    /// Samples per latency metric for Sluice (the issue asks for ≥ 200).
    public var samples: Int
    /// Samples per latency metric for the baselines (each one costs a subprocess and O(table)).
    public var baselineSamples: Int
    /// Budget per baseline phase (cold start, each update metric, churn); also bounds the Sluice worker (×6).
    public var timeout: Double
    /// Length of the confirming churn window.
    public var churnSeconds: Double
    /// Length of each probing churn step.
    public var churnProbeSeconds: Double
    /// A transaction whose oldest change waited longer than this is a backlog.
    public var churnMaxLag: Double
    /// Run the churn search for the baselines too.
    public var baselineChurn: Bool
    /// Seconds per connection-rate repetition (3 repetitions); 0 disables the test.
    public var connSeconds: Double
    public var baselines: [Implementation]
    /// Baselines are not run above this many services (reported as "not run"); nil: always.
    public var baselineMaxServices: Int?
    public var outDir: String?

    public init(scales: [Scale] = [Scale(services: 1000, endpoints: 10)], samples: Int = 200, baselineSamples: Int = 20,
                timeout: Double = 600, churnSeconds: Double = 30, churnProbeSeconds: Double = 5, churnMaxLag: Double = 1.0,
                baselineChurn: Bool = true, connSeconds: Double = 3,
                baselines: [Implementation] = [.kubeProxyNft, .kubeProxyIptables], baselineMaxServices: Int? = nil,
                outDir: String? = nil) {
        self.scales = scales
        self.samples = samples
        self.baselineSamples = baselineSamples
        self.timeout = timeout
        self.churnSeconds = churnSeconds
        self.churnProbeSeconds = churnProbeSeconds
        self.churnMaxLag = churnMaxLag
        self.baselineChurn = baselineChurn
        self.connSeconds = connSeconds
        self.baselines = baselines
        self.baselineMaxServices = baselineMaxServices
        self.outDir = outDir
    }
}

/// Reports what is running (`label`) and how far a phase is (`done`/`total`).
public typealias ProgressSink = (_ label: String, _ done: Int, _ total: Int) -> Void

/// Latency metrics of single changes: endpoint change, service add/delete, scale up/down.
/// Each phase stops when its budget runs out (the metric then notes how many samples finished).
public func measureUpdates(_ target: BenchTarget, state: inout ServiceState, samples: Int, budget: Double,
                           kernelSeconds: (() -> Double)? = nil, progress: ProgressSink) -> [MetricKey: Metric] {
    var out: [MetricKey: Metric] = [:]
    let scale = state.scale

    // Endpoint change.
    do {
        var xs: [Double] = [], kernel: [Double] = []
        let start = now()
        var complete = true
        do {
            for k in 0..<samples {
                let left = budget - (now() - start)
                if left <= 0 { complete = false; break }
                progress("endpoint change", k, samples)
                let ch = state.endpointChange()
                xs.append(try target.update(ch, timeout: left))
                if let kernelSeconds { kernel.append(kernelSeconds()) }
                if k % 10 == 9 { try target.maintenance(timeout: max(1, budget - (now() - start))) }
            }
            try target.maintenance(timeout: 120)
        } catch {
            complete = false
            if xs.isEmpty { out[.endpointChange] = .failed("s", error) }
        }
        if out[.endpointChange] == nil {
            out[.endpointChange] = .latency(xs, complete: complete, wanted: samples, detail: kernelDetail(kernel))
        }
    }

    // Service add and delete, scale up and down (one service n → n+1 → n endpoints): pairs.
    func pairs(_ label: String, _ keys: (MetricKey, MetricKey), _ there: (Int) -> Changes, _ back: (Int) -> Changes) -> [MetricKey: Metric] {
        measurePairs(target, samples: samples, budget: budget, kernelSeconds: kernelSeconds, progress: progress,
                     label: label, keys: keys, there: there, back: back)
    }
    out.merge(pairs("service add/delete", (.serviceAdd, .serviceDelete),
                    { state.addService($0) }, { state.deleteService($0) })) { a, _ in a }
    func scaled(_ k: Int) -> Int { Generator.pick(k + 1_000_003, services: scale.services) }
    out.merge(pairs("scale up/down", (.scaleUp, .scaleDown),
                    { state.scaleUp(scaled($0)) }, { state.scaleDown(scaled($0)) })) { a, _ in a }
    return out
}

/// Latency of a change and of the change that undoes it, `samples` times within `budget`:
/// `keys.0` for `there(k)`, `keys.1` for `back(k)`.
private func measurePairs(_ target: BenchTarget, samples: Int, budget: Double, kernelSeconds: (() -> Double)?,
                          progress: ProgressSink, label: String, keys: (MetricKey, MetricKey),
                          there: (Int) -> Changes, back: (Int) -> Changes) -> [MetricKey: Metric] {
    var xs: [Double] = [], ys: [Double] = [], kx: [Double] = [], ky: [Double] = []
    let start = now()
    var complete = true
    var failure: Error?
    do {
        for k in 0..<samples {
            let left = budget - (now() - start)
            if left <= 0 { complete = false; break }
            progress(label, k, samples)
            xs.append(try target.update(there(k), timeout: left))
            if let kernelSeconds { kx.append(kernelSeconds()) }
            ys.append(try target.update(back(k), timeout: max(0.1, budget - (now() - start))))
            if let kernelSeconds { ky.append(kernelSeconds()) }
            if k % 10 == 9 { try target.maintenance(timeout: max(1, budget - (now() - start))) }
        }
        try target.maintenance(timeout: 120)
    } catch {
        complete = false
        failure = error
    }
    func metric(_ samplesTaken: [Double], _ kernel: [Double]) -> Metric {
        samplesTaken.isEmpty && failure != nil ? .failed("s", failure!)
            : .latency(samplesTaken, complete: complete, wanted: samples, detail: kernelDetail(kernel))
    }
    return [keys.0: metric(xs, kx), keys.1: metric(ys, ky)]
}

/// Kernel (sendmsg → ACK) share of Sluice's samples.
func kernelDetail(_ k: [Double]) -> [String: Double]? {
    guard let s = Summary(k) else { return nil }
    return ["kernelP50": s.p50, "kernelP99": s.p99, "kernelMax": s.max]
}

/// One churn window: a producer emits endpoint changes at `rate`; the consumer coalesces
/// every change that is due into one transaction, as a daemon's sync loop would, and
/// applies it. Sustained means no transaction's oldest change waited longer than `maxLag`.
public func churnWindow(_ target: BenchTarget, state: inout ServiceState, rate: Double, seconds: Double,
                        maxLag: Double, maintenanceEvery: Double = 1.0, kernelSeconds: (() -> Double)? = nil) throws -> ChurnStep {
    let total = max(1, Int(rate * seconds))
    var generated = 0, transactions = 0
    var lags: [Double] = []
    var aborted = false
    var maxSync = 0.0
    var maxSyncKernel: Double?
    let start = now()
    var lastMaintenance = start
    while generated < total {
        let t = now() - start
        let due = min(total, Int(t * rate) + 1)
        if due <= generated {
            let next = Double(generated) / rate
            let wait = next - t
            if wait > 0 { usleep(UInt32(min(wait, 0.001) * 1e6)) }
            continue
        }
        var changes: Changes = [:]
        for _ in generated..<due {
            for (k, v) in state.endpointChange() { changes[k] = v }
        }
        let oldestDue = Double(generated) / rate
        let sync: Double
        do {
            sync = try target.update(changes, timeout: max(maxLag * 4, 5))
        } catch is TimeoutError {
            // One sync took far longer than the lag limit: not sustained.
            lags.append(now() - start - oldestDue)
            aborted = true
            break
        }
        if sync > maxSync {
            maxSync = sync
            maxSyncKernel = kernelSeconds?()
        }
        transactions += 1
        let lag = now() - start - oldestDue
        lags.append(lag)
        generated = due
        if lag > maxLag { aborted = generated < total; break }
        if now() - lastMaintenance >= maintenanceEvery {
            try? target.maintenance(timeout: 60)
            lastMaintenance = now()
        }
    }
    let s = Summary(lags)
    return ChurnStep(rate: rate, seconds: seconds, sustained: !aborted && (s?.max ?? 0) <= maxLag, events: aborted ? max(generated, 1) : generated,
                     transactions: transactions, lag: s, abortedEarly: aborted, maxSyncSeconds: maxSync,
                     maxSyncKernelSeconds: maxSyncKernel)
}

/// Steps the rate up with short probe windows until one fails, then confirms the highest
/// passing rate with a full window (stepping down once more if that fails).
public func churnSearch(_ target: BenchTarget, state: inout ServiceState, options: BenchOptions, budget: Double,
                        kernelSeconds: (() -> Double)? = nil, progress: ProgressSink) -> Metric {
    let rates: [Double] = [100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000]
    var steps: [ChurnStep] = []
    let start = now()
    var best: Int? = nil
    let probe = min(options.churnProbeSeconds, options.churnSeconds)
    do {
        for (i, r) in rates.enumerated() {
            if now() - start + probe > budget { break }
            progress("churn probe \(Int(r))/s", i, rates.count + 2)
            let st = try churnWindow(target, state: &state, rate: r, seconds: probe, maxLag: options.churnMaxLag, kernelSeconds: kernelSeconds)
            steps.append(st)
            if !st.sustained { break }
            best = i
        }
        var confirmed: Double? = nil
        var candidate = best
        var outOfTime = false
        while let c = candidate {
            if now() - start > budget { outOfTime = true; break }
            progress("churn confirm \(Int(rates[c]))/s for \(options.churnSeconds) s", rates.count, rates.count + 2)
            let st = try churnWindow(target, state: &state, rate: rates[c], seconds: options.churnSeconds, maxLag: options.churnMaxLag,
                                    kernelSeconds: kernelSeconds)
            steps.append(st)
            if st.sustained { confirmed = rates[c]; break }
            candidate = c > 0 ? c - 1 : nil
        }
        try? target.maintenance(timeout: 120)
        if let confirmed {
            return Metric(status: .ok, unit: "changes/s", value: confirmed, churnSteps: steps,
                          note: "highest rate sustained for \(options.churnSeconds) s with every change ACKed within \(options.churnMaxLag) s")
        }
        if !outOfTime && !steps.isEmpty {
            return Metric(status: .ok, unit: "changes/s", value: 0, churnSteps: steps,
                          note: "not even \(Int(rates[0]))/s was sustained (a change waited > \(options.churnMaxLag) s)")
        }
        return Metric(status: .timeout, unit: "changes/s", churnSteps: steps, note: "no rate confirmed within the timeout")
    } catch {
        var m = Metric.failed("changes/s", error)
        m.churnSteps = steps
        return m
    }
}

/// Endpoints per second of turning plans into a ruleset (no kernel): repeated until at least
/// `minSeconds` passed; the median run counts.
public func throughput(endpoints: Int, minSeconds: Double = 1, maxRuns: Int = 5, _ body: () -> Void) -> Metric {
    var times: [Double] = []
    let start = now()
    repeat {
        let t0 = now()
        body()
        times.append(now() - t0)
    } while now() - start < minSeconds && times.count < maxRuns
    let s = Summary(times)!
    return Metric(status: .ok, unit: "endpoints/s", value: Double(endpoints) / s.p50, summary: s, samples: times,
                  detail: ["secondsPerCompile": s.p50])
}

/// Endpoints per second of the streamed load a first sync runs (`sluice run`'s cold start:
/// `IncrementalCompiler.load(_:maxElementsPerTransaction:emit:)` into the packed store, the
/// transactions built and dropped, nothing committed).
public func loadThroughput(scale: Scale, plans: [ServicePortPlan]) -> Metric {
    let ctx = Generator.context()
    var m = throughput(endpoints: scale.totalEndpoints) {
        var compiler = IncrementalCompiler(context: ctx, keepsPlans: false)
        compiler.load(plans, maxElementsPerTransaction: 50_000) { _ in }
    }
    m.note = "IncrementalCompiler streamed load, transactions built, not committed"
    return m
}

public func compileThroughput(_ impl: Implementation, scale: Scale, plans: [ServicePortPlan]) -> Metric {
    let ctx = Generator.context()
    let n = scale.totalEndpoints
    switch impl {
    case .sluice:
        let plan = FamilyPlan(context: ctx, servicePorts: plans)
        var m = throughput(endpoints: n) { _ = Compiler.compile(plan) }
        m.note = "Compiler.compile(FamilyPlan) → IR table"
        return m
    case .kubeProxyNft:
        var m = throughput(endpoints: n) { _ = KubeProxyNft.full(ctx, plans) }
        m.note = "rendering the nft -f script"
        return m
    case .kubeProxyIptables:
        let plan = FamilyPlan(context: ctx, servicePorts: plans)
        var m = throughput(endpoints: n) { _ = renderIptablesRestore(plan) }
        m.note = "rendering the iptables-restore script"
        return m
    }
}
