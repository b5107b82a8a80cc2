import Foundation

/// The daemon's RSS over the soak, summarized for flatness: the warm-up sample, the samples
/// during the soak split into those near a relist (a relist completed within one sampling
/// interval of the sample, from the daemon's `sluice_api_relists_total`) and those between,
/// and the two end samples: right after convergence, and settled (once RSS stopped falling).
public struct SoakRSS: Codable, Sendable, Equatable {
    /// A sample this much above the warm-up one is not flat (issue 11: "flat within 10 %").
    public static let flatTolerance = 0.10

    public var warmBytes: Int?
    /// Samples after the warm-up, before convergence, and how many of them were more than
    /// `flatTolerance` above the warm-up sample.
    public var during: Int
    public var aboveTolerance: Int
    /// RSS (bytes) of the samples during the soak: all of them, those away from relists,
    /// and the ones near a relist (its peaks), in order.
    public var all: Summary?
    public var betweenRelists: Summary?
    public var relistPeaks: [SoakSample]
    /// Right after convergence, and once settled (`SettledSampler`).
    public var endBytes: Int?
    public var settledBytes: Int?

    /// Summarizes `samples` (every sample of the run, in order); the warm-up one is `warm`,
    /// those from `end` on are not "during".
    public init(samples: [SoakSample], warm: SoakSample?, end: SoakSample?, settled: SoakSample?) {
        warmBytes = warm?.rssBytes
        let after = samples.filter { $0.seconds > (warm?.seconds ?? 0) && $0.seconds < (end?.seconds ?? .infinity) }
        let near = Self.nearRelist(samples)
        let during = after.filter { $0.rssBytes != nil }
        let peaks = during.filter { s in near.contains { $0.seconds == s.seconds } }
        self.during = during.count
        aboveTolerance = warmBytes.map { w in during.filter { Double($0.rssBytes!) > Double(w) * (1 + Self.flatTolerance) }.count } ?? 0
        all = Summary(during.map { Double($0.rssBytes!) })
        betweenRelists = Summary(during.filter { s in !peaks.contains { $0.seconds == s.seconds } }.map { Double($0.rssBytes!) })
        relistPeaks = peaks
        endBytes = end?.rssBytes
        settledBytes = settled?.rssBytes
    }

    /// Samples with a relist completed between the sample before and the one after them
    /// (the relist's transient is in them). Samples without a relist count are never near.
    static func nearRelist(_ samples: [SoakSample]) -> [SoakSample] {
        samples.indices.filter { i in
            let before = samples[max(0, i - 1)].relists, after = samples[min(samples.count - 1, i + 1)].relists
            guard let before, let after else { return false }
            return after > before
        }.map { samples[$0] }
    }

    /// `bytes` over the warm-up sample, minus one.
    public func growth(_ bytes: Int?) -> Double? {
        guard let w = warmBytes, let b = bytes, w > 0 else { return nil }
        return Double(b) / Double(w) - 1
    }
}
