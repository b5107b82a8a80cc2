import Foundation

/// Order statistics of a sample set (same unit as the samples).
public struct Summary: Codable, Sendable, Equatable {
    public var n: Int
    public var min: Double
    public var p50: Double
    public var p99: Double
    public var max: Double
    public var mean: Double

    public init?(_ xs: [Double]) {
        guard !xs.isEmpty else { return nil }
        let s = xs.sorted()
        func q(_ p: Double) -> Double {
            // nearest rank
            let r = Int((p * Double(s.count)).rounded(.up)) - 1
            return s[Swift.max(0, Swift.min(s.count - 1, r))]
        }
        n = s.count
        min = s[0]
        p50 = q(0.5)
        p99 = q(0.99)
        max = s[s.count - 1]
        mean = s.reduce(0, +) / Double(s.count)
    }
}

public enum MetricStatus: String, Codable, Sendable {
    case ok
    /// The implementation could not finish within `--timeout`.
    case timeout
    case error
    /// Does not apply to this implementation (e.g. Sluice process memory for a baseline).
    case notApplicable = "n/a"
    /// Not run (an earlier step failed, or excluded by an option; `note` says which).
    case notRun = "not run"
}

/// One step of the sustained-churn search.
public struct ChurnStep: Codable, Sendable {
    public var rate: Double
    public var seconds: Double
    public var sustained: Bool
    public var events: Int
    public var transactions: Int
    /// Seconds from an event's due time to the ACK of the transaction carrying it (oldest event per transaction).
    public var lag: Summary?
    public var abortedEarly: Bool
    /// Longest single sync (accept → ACK) in the window, and its kernel part where known.
    public var maxSyncSeconds: Double?
    public var maxSyncKernelSeconds: Double?
}

public struct Metric: Codable, Sendable {
    public var status: MetricStatus
    public var unit: String
    /// The headline value (p50 for latencies).
    public var value: Double?
    public var summary: Summary?
    public var samples: [Double]?
    public var detail: [String: Double]?
    public var churnSteps: [ChurnStep]?
    public var note: String?

    public init(status: MetricStatus, unit: String, value: Double? = nil, summary: Summary? = nil, samples: [Double]? = nil,
                detail: [String: Double]? = nil, churnSteps: [ChurnStep]? = nil, note: String? = nil) {
        self.status = status
        self.unit = unit
        self.value = value
        self.summary = summary
        self.samples = samples
        self.detail = detail
        self.churnSteps = churnSteps
        self.note = note
    }

    public static func latency(_ xs: [Double], complete: Bool, wanted: Int, detail: [String: Double]? = nil) -> Metric {
        guard let s = Summary(xs) else {
            return Metric(status: .timeout, unit: "s", note: "no sample finished within the timeout")
        }
        return Metric(status: .ok, unit: "s", value: s.p50, summary: s, samples: xs, detail: detail,
                      note: complete ? nil : "\(xs.count) of \(wanted) samples finished within the timeout")
    }

    public static func failed(_ unit: String, _ error: Error) -> Metric {
        if let t = error as? TimeoutError { return Metric(status: .timeout, unit: unit, note: t.description) }
        return Metric(status: .error, unit: unit, note: "\(error)")
    }
}

/// Metric keys, in report order; every implementation's result has all of them.
public enum MetricKey: String, CaseIterable, Codable, Sendable {
    case coldStart, endpointChange, serviceAdd, serviceDelete, scaleUp, scaleDown, churn, memory, compileThroughput, loadThroughput, connRate

    public var title: String {
        switch self {
        case .coldStart: "cold start"
        case .endpointChange: "endpoint change"
        case .serviceAdd: "service add"
        case .serviceDelete: "service delete"
        case .scaleUp: "scale up (n→n+1)"
        case .scaleDown: "scale down (n+1→n)"
        case .churn: "sustained churn"
        case .memory: "peak RSS"
        case .compileThroughput: "compile throughput"
        case .loadThroughput: "streamed load throughput"
        case .connRate: "new connections"
        }
    }

    /// Lower values are better (times, memory); else higher is better (rates).
    public var lowerIsBetter: Bool {
        switch self {
        case .churn, .compileThroughput, .loadThroughput, .connRate: false
        default: true
        }
    }
}

public enum Implementation: String, Codable, Sendable, CaseIterable {
    case sluice
    case kubeProxyNft = "kube-proxy-nft"
    case kubeProxyIptables = "kube-proxy-iptables"
}

public struct ImplResult: Codable, Sendable {
    public var implementation: Implementation
    public var metrics: [String: Metric]
    public var notes: [String]

    public init(implementation: Implementation, metrics: [String: Metric] = [:], notes: [String] = []) {
        self.implementation = implementation
        self.metrics = metrics
        self.notes = notes
    }

    public subscript(_ k: MetricKey) -> Metric? {
        get { metrics[k.rawValue] }
        set { metrics[k.rawValue] = newValue }
    }
}

public struct ScaleResult: Codable, Sendable {
    public var scale: Scale
    public var results: [ImplResult]
    /// Sluice's advantage per metric and baseline: baseline/sluice for lower-is-better
    /// metrics, sluice/baseline otherwise (> 1 means Sluice is better). A baseline that
    /// timed out gives a lower bound, marked in `ratioBounds`.
    public var ratios: [String: [String: Double]]
    public var ratioIsLowerBound: [String: [String: Bool]]

    public func result(_ i: Implementation) -> ImplResult? { results.first { $0.implementation == i } }
}

public struct TargetCheck: Codable, Sendable {
    public var target: String
    public var status: String   // met, missed, not measured
    public var measured: String
}

public struct RunInfo: Codable, Sendable {
    public var date: String
    public var kernel: String
    public var machine: String
    public var cpus: Int
    public var memoryBytes: Int
    public var nft: String
    public var iptables: String
    public var swift: String
    public var command: String
}

public struct RunResult: Codable, Sendable {
    public var info: RunInfo
    public var options: BenchOptions
    public var scales: [ScaleResult]
    public var targets: [TargetCheck]

    public init(info: RunInfo, options: BenchOptions, scales: [ScaleResult], targets: [TargetCheck]) {
        self.info = info
        self.options = options
        self.scales = scales
        self.targets = targets
    }
}
