import Foundation

/// What the soak found (`SoakOptions`): the changes written and committed, the faults,
/// the daemon's RSS and open files over time, and whether the kernel ended equal to a
/// fresh compile of the server's final objects.
public struct DaemonSoak: Codable, Sendable {
    public var options: SoakOptions
    public var written: Int
    public var writeSeconds: Double
    /// Changes written per second (the fake server's side).
    public var writeRate: Double
    /// Changes committed per second, first write → last commit.
    public var committedRate: Double
    /// Write → the commit holding the change (s), from the kernel's commit notifications.
    public var lag: Summary?
    public var commits: Int
    /// Every change's commit was seen.
    public var drained: Bool
    /// Last write → last commit.
    public var drainSeconds: Double?
    /// Faults injected, by kind (`SoakFault`).
    public var faults: [String: Int]
    /// Seconds from each `stall` to the daemon's watches all open again (none: not seen
    /// before the last change).
    public var stallRecoveries: [Double]
    /// The fake server's answers during the soak, by status code, and the watches opened.
    public var serverAnswers: [String: Int]
    public var watchesOpened: Int
    /// RSS and open files, every `options.sampleSeconds`; then one right after
    /// convergence and one every second until RSS settled.
    public var samples: [SoakSample]
    /// The sample taken once the warm-up was over, and the one right after convergence.
    public var warmSample: SoakSample?
    public var endSample: SoakSample?
    /// The end sample once RSS stopped falling after convergence (five consecutive samples a
    /// second apart within 1 %, `SettledSampler`; at most 30 s after `endSample`), and
    /// whether it did stop.
    public var settledSample: SoakSample?
    public var settled: Bool?
    /// RSS for flatness: during the soak, near relists and between them, and at the end.
    public var rss: SoakRSS?
    /// Open files by kind at the start and at the end.
    public var openFilesStart: [String: Int]
    public var openFilesEnd: [String: Int]
    /// Last write → the kernel equal to the compile (or the timeout).
    public var convergeSeconds: Double
    public var kernelEqualsCompile: Bool
    /// Objects (elements one by one) between the kernel and the compile at the end.
    public var kernelDifferences: Int
    /// `kubeproxy_network_programming_duration_seconds` over the soak (the daemon's own
    /// measure from the slices' `last-change-trigger-time`, whole seconds here).
    public var networkProgramming: PrometheusHistogram?
    /// The daemon's syncs over the soak.
    public var syncs: DaemonSyncAccount?

    /// End RSS over warm RSS, minus one.
    public var rssGrowth: Double? {
        guard let w = warmSample?.rssBytes, let e = endSample?.rssBytes, w > 0 else { return nil }
        return Double(e) / Double(w) - 1
    }

    /// Settled end RSS over warm RSS, minus one.
    public var settledGrowth: Double? {
        guard let w = warmSample?.rssBytes, let e = settledSample?.rssBytes, w > 0 else { return nil }
        return Double(e) / Double(w) - 1
    }
}
