import CoreMetrics
import Foundation
import Prometheus

typealias MCounter = CoreMetrics.Counter
typealias MGauge = CoreMetrics.Gauge
typealias MTimer = CoreMetrics.Timer
typealias MRecorder = CoreMetrics.Recorder
import SluiceModel

/// The daemon's metrics, through swift-metrics handlers backed by one Prometheus registry
/// per daemon (no global bootstrap, so several daemons can run in one test process).
///
/// kube-proxy's names (`kubeproxy_*`, see kube-proxy-nftables.md §2.5) plus Sluice's own
/// (`sluice_*`).
public final class DaemonMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    // kube-proxy's
    let syncDuration: MTimer
    let lastSync: MGauge
    let lastQueued: MGauge
    let networkProgramming: MTimer
    let endpointChanges: MCounter
    let serviceChanges: MCounter
    let noLocalInternal: MGauge
    let noLocalExternal: MGauge
    let syncFailures: MCounter
    // Sluice's
    let commitDuration: MTimer
    /// One sync's time by phase (`SyncPhase`): where a sync's time goes, on the path it took.
    let syncPhases: [SyncPhase: MTimer]
    let operationsPerTransaction: MRecorder
    let elements: [IPFamily: MGauge]
    let driftRepairs: MCounter
    /// nf_tables commits announced to the commit watch: the daemon's own, and everyone else's.
    let ownCommitNotifications: MCounter
    let foreignCommitNotifications: MCounter
    let fullSyncs: MCounter
    let partialSyncs: MCounter
    let invalidObjects: MCounter
    let conntrackDeleted: MCounter
    let affinityPurged: MCounter
    let healthzRequests: [Int: MCounter]
    let livezRequests: [Int: MCounter]

    public init() {
        registry = PrometheusCollectorRegistry()
        var f = PrometheusMetricsFactory(registry: registry)
        // kube-proxy: exponential buckets from 1 ms, ×2, 15 buckets.
        f.durationHistogramBuckets["kubeproxy_sync_proxy_rules_duration_seconds"] =
            (0..<15).map { Duration.microseconds(1000 << $0) }
        // kube-proxy: 0.25 s, 0.5 s, 1…59 s, 60…115 s every 5 s, 2–5 min every 30 s.
        var np: [Duration] = [.milliseconds(250), .milliseconds(500)]
        np += (1...59).map { .seconds($0) }
        np += stride(from: 60, through: 115, by: 5).map { .seconds($0) }
        np += stride(from: 120, through: 300, by: 30).map { .seconds($0) }
        f.durationHistogramBuckets["kubeproxy_network_programming_duration_seconds"] = np
        f.durationHistogramBuckets["sluice_commit_duration_seconds"] =
            [50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000].map { .microseconds($0) }
        f.durationHistogramBuckets["sluice_sync_phase_duration_seconds"] =
            [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 100_000, 1_000_000].map { .microseconds($0) }
        f.valueHistogramBuckets["sluice_transaction_operations"] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10_000]
        factory = f

        syncDuration = MTimer(label: "kubeproxy_sync_proxy_rules_duration_seconds", factory: f)
        lastSync = MGauge(label: "kubeproxy_sync_proxy_rules_last_timestamp_seconds", factory: f)
        lastQueued = MGauge(label: "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", factory: f)
        networkProgramming = MTimer(label: "kubeproxy_network_programming_duration_seconds", factory: f)
        endpointChanges = MCounter(label: "kubeproxy_sync_proxy_rules_endpoint_changes_total", factory: f)
        serviceChanges = MCounter(label: "kubeproxy_sync_proxy_rules_service_changes_total", factory: f)
        noLocalInternal = MGauge(label: "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
                                dimensions: [("traffic_policy", "internal")], factory: f)
        noLocalExternal = MGauge(label: "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
                                dimensions: [("traffic_policy", "external")], factory: f)
        syncFailures = MCounter(label: "kubeproxy_sync_proxy_rules_nftables_sync_failures_total", factory: f)
        commitDuration = MTimer(label: "sluice_commit_duration_seconds", factory: f)
        syncPhases = Dictionary(uniqueKeysWithValues: SyncPhase.allCases.map {
            ($0, MTimer(label: "sluice_sync_phase_duration_seconds", dimensions: [("phase", $0.rawValue)], factory: f))
        })
        operationsPerTransaction = MRecorder(label: "sluice_transaction_operations", factory: f)
        elements = Dictionary(uniqueKeysWithValues: IPFamily.allCases.map {
            ($0, MGauge(label: "sluice_nftables_elements", dimensions: [("ip_family", $0.rawValue)], factory: f))
        })
        driftRepairs = MCounter(label: "sluice_drift_repairs_total", factory: f)
        ownCommitNotifications = MCounter(label: "sluice_commit_notifications_total", dimensions: [("origin", "own")], factory: f)
        foreignCommitNotifications = MCounter(label: "sluice_commit_notifications_total", dimensions: [("origin", "foreign")], factory: f)
        fullSyncs = MCounter(label: "sluice_syncs_total", dimensions: [("kind", "full")], factory: f)
        partialSyncs = MCounter(label: "sluice_syncs_total", dimensions: [("kind", "partial")], factory: f)
        invalidObjects = MCounter(label: "sluice_invalid_object_reports_total", factory: f)
        conntrackDeleted = MCounter(label: "kubeproxy_conntrack_reconciler_deleted_entries_total", factory: f)
        affinityPurged = MCounter(label: "sluice_affinity_entries_deleted_total", factory: f)
        healthzRequests = Dictionary(uniqueKeysWithValues: [200, 503].map {
            ($0, MCounter(label: "kubeproxy_proxy_healthz_total", dimensions: [("code", "\($0)")], factory: f))
        })
        livezRequests = Dictionary(uniqueKeysWithValues: [200, 503].map {
            ($0, MCounter(label: "kubeproxy_proxy_livez_total", dimensions: [("code", "\($0)")], factory: f))
        })
        // Present from the start, as kube-proxy's.
        syncFailures.increment(by: 0)
        driftRepairs.increment(by: 0)
        endpointChanges.increment(by: 0)
        serviceChanges.increment(by: 0)
        noLocalInternal.record(0)
        noLocalExternal.record(0)
    }

    /// The Prometheus text exposition.
    public func exposition() -> String { registry.emitToString() }

    func record(_ phase: SyncPhase, seconds: Double) {
        syncPhases[phase]?.recordNanoseconds(Int64(seconds * 1e9))
    }

    func markQueued(at now: Date = Date()) { lastQueued.record(now.timeIntervalSince1970) }
}

/// The phases of one sync (`sluice_sync_phase_duration_seconds{phase}`).
enum SyncPhase: String, CaseIterable, Sendable {
    /// The planner: objects → per-service-port plans.
    case plan
    /// The compilers: plans → the transaction (or a whole reload after a context change).
    case compile
    /// Lowering the transaction to netlink messages and building the batch.
    case encode
    /// From `sendmsg` to the kernel's last reply: the kernel's commit.
    case kernel
}
