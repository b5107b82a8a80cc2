import Foundation

/// Samples RSS after the soak converged until it stops falling: the sample right after
/// convergence may hold the last fault's transient (a relist's working set the allocator
/// has not handed back yet), which says nothing about flatness.
///
/// Settled means two consecutive samples within `tolerance` of each other; at most
/// `maxSamples` are taken (the last one counts as settled then, `settled` false).
struct SettledSampler {
    /// Relative difference of two consecutive samples that counts as no longer changing.
    var tolerance = 0.01
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
    /// waits the sampling interval, then samples) until two consecutive ones are within
    /// `tolerance`, or `maxSamples` in all.
    func settle(from first: SoakSample, _ next: () -> SoakSample) -> Outcome {
        var samples = [first]
        while samples.count < max(1, maxSamples) {
            let sample = next()
            let done = within(samples[samples.count - 1], sample)
            samples.append(sample)
            if done { return Outcome(samples: samples, settled: true) }
        }
        return Outcome(samples: samples, settled: false)
    }

    /// Whether two samples' RSS differ by at most `tolerance` of the first.
    func within(_ a: SoakSample, _ b: SoakSample) -> Bool {
        guard let x = a.rssBytes, let y = b.rssBytes, x > 0 else { return false }
        return abs(Double(y - x)) <= Double(x) * tolerance
    }
}
