@testable import SluiceBench
import Testing

/// The soak's RSS figures: the settled end sample (RSS sampled after convergence until it
/// stops falling) and the split of the samples between relists and near them. Pure
/// functions over scripted samples: no daemon, no waiting.
@Suite("Soak RSS: settled end sample, relist peaks")
struct SoakRSSTests {
    private func mb(_ t: Double, _ megabytes: Double, relists: Int? = nil) -> SoakSample {
        SoakSample(seconds: t, rssBytes: Int(megabytes * 1e6), openFiles: 20, relists: relists)
    }

    /// Feeds `values` (MB, one a second after `first`) to `settle`; the outcome and how many were taken.
    private func settle(_ first: Double, _ values: [Double], maxSamples: Int = 31) -> (SettledSampler.Outcome, Int) {
        var queue = values
        var taken = 0
        let outcome = SettledSampler(maxSamples: maxSamples).settle(from: mb(0, first)) {
            taken += 1
            return mb(Double(taken), queue.removeFirst())
        }
        return (outcome, taken)
    }

    @Test("settles once five consecutive samples are within 1 % of the first of them; a plateau of two on the way down is not settled")
    func settlesWhenRSSStopsFalling() {
        let (outcome, taken) = settle(200, [182, 182, 150, 120, 90, 89.5, 89.8, 89.2, 89.4, 70])
        #expect(outcome.settled && taken == 9)
        #expect(outcome.samples.map { ($0.rssBytes ?? 0) / 1_000_000 } == [200, 182, 182, 150, 120, 90, 89, 89, 89, 89])
        #expect(outcome.last?.rssBytes == 89_400_000)
    }

    @Test("the end sample itself counts: an already flat RSS settles after four more samples")
    func flatAtOnce() {
        let (outcome, taken) = settle(85, [85.5, 85.2, 84.9, 85.0, 60])
        #expect(outcome.settled && taken == 4 && outcome.samples.count == 5)
    }

    @Test("still changing after maxSamples: not settled, the last sample reported")
    func neverSettles() {
        let (outcome, taken) = settle(200, [150, 110, 80, 60], maxSamples: 4)
        #expect(!outcome.settled && taken == 3)
        #expect(outcome.last?.rssBytes == 80_000_000)
    }

    @Test("samples near a relist (one ended between the sample before and after) are its peaks; the rest are between relists")
    func relistPeaksSplitOff() {
        let samples = [mb(0, 70, relists: 0), mb(10, 80, relists: 0), mb(20, 84, relists: 0), mb(30, 170, relists: 0),
                       mb(40, 120, relists: 1), mb(50, 85, relists: 1), mb(60, 86, relists: 1), mb(70, 200, relists: 1)]
        let rss = SoakRSS(samples: samples, warm: samples[1], end: samples[7], settled: mb(75, 87))
        #expect(rss.relistPeaks.map(\.seconds) == [30, 40])
        #expect(rss.during == 5)
        #expect(rss.all?.max == 170e6 && rss.betweenRelists?.max == 86e6 && rss.betweenRelists?.n == 3)
        // 170 and 120 MB are more than 10 % above the 80 MB warm-up; 84, 85, 86 are not.
        #expect(rss.aboveTolerance == 2)
        #expect(rss.endBytes == 200_000_000 && rss.settledBytes == 87_000_000)
        #expect(abs((rss.growth(rss.settledBytes) ?? 0) - 0.0875) < 1e-9)
    }

    @Test("without relist counts (metrics not scraped) no sample is a relist peak")
    func noRelistCounts() {
        let samples = [mb(0, 70), mb(10, 80), mb(20, 170), mb(30, 90)]
        let rss = SoakRSS(samples: samples, warm: samples[1], end: samples[3], settled: nil)
        #expect(rss.relistPeaks.isEmpty && rss.betweenRelists == rss.all && rss.during == 1)
    }

    @Test("a sample's relists: sluice_api_relists_total summed over the resources, nothing else")
    func relistsFromMetrics() {
        let scrape: [String: Double] = ["sluice_api_relists_total{resource=\"services\"}": 2,
                                        "sluice_api_relists_total{resource=\"endpointslices\"}": 3,
                                        "sluice_api_lists_total{resource=\"services\"}": 9]
        #expect(DaemonSampler.relists(scrape) == 5)
    }
}
