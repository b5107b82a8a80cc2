import Foundation

/// Where `sluice run` gets its objects in a daemon scenario.
public enum DaemonSource: String, Codable, Sendable, CaseIterable {
    /// The in-process fake API server on loopback (list + watch).
    case api
    /// `--source DIR`: manifest files, one per 500 services.
    case directory
}

/// Everything `sluice bench --daemon` can be told.
public struct DaemonBenchOptions: Codable, Sendable {
    public var scales: [Scale]
    public var sources: [DaemonSource]
    /// Single endpoint changes through the API watch (one at a time).
    public var samples: Int
    /// Single file edits for the directory source (one at a time).
    public var directorySamples: Int
    /// Sustained churn through the watch: seconds and offered rate (0 seconds: skipped).
    public var churnSeconds: Double
    public var churnRate: Double
    /// The producer stops when the oldest uncommitted change is older than this.
    public var churnMaxLag: Double
    /// Changes written back to back for the burst (0: skipped).
    public var burst: Int
    /// Budget for each wait (first sync, one change, drain).
    public var timeout: Double
    /// Manifest files as JSON `List`s instead of multi-document YAML.
    public var jsonManifests: Bool
    /// Time the first sync by counting the kernel's element notifications, with the commit
    /// monitor listening from the start (which makes the kernel build one per element);
    /// by default the daemon's /metrics time it and the monitor joins afterwards.
    public var firstSyncFromKernel: Bool = false
    /// The soak after the other measurements (API source only; nil: skipped).
    public var soak: SoakOptions?
    public var outDir: String?

    public init(scales: [Scale] = [Scale(services: 1000, endpoints: 10)], sources: [DaemonSource] = DaemonSource.allCases,
                samples: Int = 200, directorySamples: Int = 50, churnSeconds: Double = 60, churnRate: Double = 20_000,
                churnMaxLag: Double = 1, burst: Int = 2000, timeout: Double = 600, jsonManifests: Bool = false, outDir: String? = nil) {
        self.scales = scales
        self.sources = sources
        self.samples = samples
        self.directorySamples = directorySamples
        self.churnSeconds = churnSeconds
        self.churnRate = churnRate
        self.churnMaxLag = churnMaxLag
        self.burst = burst
        self.timeout = timeout
        self.jsonManifests = jsonManifests
        self.outDir = outDir
    }
}

/// First sync: process start → the commit after which the kernel held every expected element.
public struct FirstSync: Codable, Sendable {
    public var seconds: Double?
    /// `metrics` (the default: the daemon's /metrics reported its first full sync with the
    /// expected IPv4 element count; the time is its own stamp of that sync's end) or
    /// `elementCount` (`firstSyncFromKernel`: the IPv4 element count announced by the kernel
    /// reached the expected total).
    public var detection: String
    /// Kernel commits seen (`elementCount`), or full syncs (`metrics`).
    public var commits: Int
    public var expectedElements: Int
    public var kernelElements: Int
    /// Process start → the daemon's first commit of anything.
    public var firstCommitSeconds: Double?
}

/// Sustained churn through the watch.
public struct DaemonChurn: Codable, Sendable {
    public var offeredRate: Double
    public var seconds: Double
    public var written: Int
    /// Seconds the producer wrote (less than `seconds` when it stopped early).
    public var writeSeconds: Double
    /// Changes written per second (the fake server's side).
    public var writeRate: Double
    /// Changes committed per second, first write → last commit.
    public var committedRate: Double
    /// Write → commit of each change (s).
    public var lag: Summary?
    public var commits: Int
    /// Every change committed with a lag ≤ max lag and the producer never stopped early.
    public var sustained: Bool
    public var stoppedEarly: Bool
    /// Last write → last commit.
    public var drainSeconds: Double?
}

/// A burst of changes written back to back.
public struct DaemonBurst: Codable, Sendable {
    public var changes: Int
    /// First write → the commit holding the last change.
    public var seconds: Double?
    public var commits: Int
    /// The daemon's syncs during the burst (/metrics), by phase.
    public var syncs: DaemonSyncAccount?
}

/// One source at one scale.
public struct DaemonSourceResult: Codable, Sendable {
    public var source: DaemonSource
    public var error: String?
    /// The network namespace the run used (deleted when it ended).
    public var namespace: String?
    public var firstSync: FirstSync?
    public var rssAfterFirstSyncBytes: Int?
    /// VmHWM of the daemon at the end.
    public var peakRSSBytes: Int?
    public var rssAtEndBytes: Int?
    /// Event written (API) or file renamed into place (directory) → NEWGEN holding it.
    public var eventToKernel: Metric?
    /// Commits per single change (1 when the daemon commits each change once).
    public var commitsPerChange: Summary?
    /// The daemon's own account of the single changes (its /metrics before and after).
    public var singleChangeSyncs: DaemonSyncAccount?
    /// Single changes that produced no commit within the timeout.
    public var missedChanges: Int = 0
    public var churn: DaemonChurn?
    public var burst: DaemonBurst?
    public var soak: DaemonSoak?
    /// Selected daemon metrics at the end.
    public var daemonMetrics: [String: Double] = [:]
    /// Notifications lost to a full receive buffer (counts incomplete when > 0).
    public var monitorOverruns: Int = 0
    public var notes: [String] = []

    public init(source: DaemonSource) { self.source = source }
}

public struct DaemonScaleResult: Codable, Sendable {
    public var scale: Scale
    public var results: [DaemonSourceResult]
}

public struct DaemonRunResult: Codable, Sendable {
    public var info: RunInfo
    public var options: DaemonBenchOptions
    public var scales: [DaemonScaleResult]

    public init(info: RunInfo, options: DaemonBenchOptions, scales: [DaemonScaleResult]) {
        self.info = info
        self.options = options
        self.scales = scales
    }
}

/// What the daemon's /metrics say about a stretch of the run: its syncs (plan, compile and
/// commit) and, within them, its commits (netlink send to the kernel's ACK). Event → kernel
/// minus the sync is the way in: the server's write, the watch stream, decoding, waking the
/// sync loop.
public struct DaemonSyncAccount: Codable, Sendable {
    public var syncs: Int
    public var meanSyncSeconds: Double
    public var commits: Int
    public var meanCommitSeconds: Double?
    /// Mean time per sync in each phase (`sluice_sync_phase_duration_seconds{phase}`: plan,
    /// compile, encode, kernel), in that order; nil from a daemon without the metric.
    public var meanPhaseSeconds: [Phase]?

    public struct Phase: Codable, Sendable {
        public var phase: String
        public var seconds: Double
    }

    static let sync = "kubeproxy_sync_proxy_rules_duration_seconds"
    static let commit = "sluice_commit_duration_seconds"
    static let phases = ["plan", "compile", "encode", "kernel"]
    static func phase(_ p: String, _ suffix: String) -> String { "sluice_sync_phase_duration_seconds_\(suffix){phase=\"\(p)\"}" }

    /// The difference of two scrapes; nil when no sync happened in between.
    public init?(before: [String: Double], after: [String: Double]) {
        func delta(_ name: String) -> Double { (after[name] ?? 0) - (before[name] ?? 0) }
        syncs = Int(delta(Self.sync + "_count"))
        guard syncs > 0 else { return nil }
        meanSyncSeconds = delta(Self.sync + "_sum") / Double(syncs)
        commits = Int(delta(Self.commit + "_count"))
        meanCommitSeconds = commits > 0 ? delta(Self.commit + "_sum") / Double(commits) : nil
        let phases = Self.phases.compactMap { p -> Phase? in
            let n = delta(Self.phase(p, "count"))
            return n > 0 ? Phase(phase: p, seconds: delta(Self.phase(p, "sum")) / Double(syncs)) : nil
        }
        meanPhaseSeconds = phases.isEmpty ? nil : phases
    }
}
