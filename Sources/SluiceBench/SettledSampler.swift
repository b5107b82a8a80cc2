import Foundation

/// Samples RSS after the soak converged until it stops falling: the sample right after
/// convergence may hold the last fault's transient (a relist's working set the allocator
/// has not handed back yet), which says nothing about flatness.
///
/// Settled means `window` consecutive samples all within `tolerance` of the first of them:
/// jemalloc hands pages back in steps about a second apart (its decay), so two samples a
/// second apart can be equal while RSS is still on its way down. At most `maxSamples` are
/// taken (the last one counts as settled then, `settled` false).
struct SettledSampler {
    /// Relative difference from the first sample of the window that counts as no change.
    var tolerance = 0.01
    /// Consecutive samples that must not change (the first included).
    var window = 5
    /// Samples taken at most, the first included.
    var maxSamples = 31

    /// What settling found: every sample taken, in order, and whether RSS settled.
    struct Outcome {
        var samples: [SoakSample]
        var settled: Bool
        /// The settled sample (the last one taken).
        var last: SoakSample? { samples.last }
    }

    /// From `first` (the sample right after convergence), takes samples with `next` (which
    /// waits the sampling interval, then samples) until the last `window` are within
    /// `tolerance`, or `maxSamples` in all.
    func settle(from first: SoakSample, _ next: () -> SoakSample) -> Outcome {
        var samples = [first]
        while samples.count < max(1, maxSamples) {
            samples.append(next())
            if isSettled(samples) { return Outcome(samples: samples, settled: true) }
        }
        return Outcome(samples: samples, settled: false)
    }

    /// Whether the last `window` samples are all within `tolerance` of the first of them.
    func isSettled(_ samples: [SoakSample]) -> Bool {
        let n = max(2, window)
        guard samples.count >= n else { return false }
        let last = samples.suffix(n)
        return last.dropFirst().allSatisfy { within(last.first!, $0) }
    }

    /// Whether two samples' RSS differ by at most `tolerance` of the first.
    func within(_ a: SoakSample, _ b: SoakSample) -> Bool {
        guard let x = a.rssBytes, let y = b.rssBytes, x > 0 else { return false }
        return abs(Double(y - x)) <= Double(x) * tolerance
    }
}
