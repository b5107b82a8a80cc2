import Foundation
import SluiceModel
import SluiceTestSupport
import Testing

/// Pearson's chi-square statistic of `observed` counts against probabilities `p`.
func chiSquare(_ observed: [Int], _ p: [Double]) -> Double {
    let n = Double(observed.reduce(0, +))
    return zip(observed, p).reduce(0) { acc, x in
        let e = n * x.1
        return acc + (Double(x.0) - e) * (Double(x.0) - e) / e
    }
}

/// Critical values of the chi-square distribution at p = 0.001, by degrees of freedom.
let chiSquareCritical001: [Int: Double] = [1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467]

extension PacketTests {
    /// Endpoint selection follows the weights: a chi-square goodness-of-fit test over
    /// thousands of real TCP connections (rejecting only at p < 0.001), and weight 0 gets none.
    @Test("Weights: chi-square over real connections (equal, 1:2:7, weight 0)", arguments: Variant.all)
    func weightedSelection(_ v: Variant) throws {
        let dp = try Datapath(v, "weights")
        defer { dp.close() }
        let k = dp.kit
        let cases: [(String, [WeightedEndpoint], Int)] = [
            ("equal weights", k.eps(0, 1, 2), 2400),
            ("weights 1:2:7 plus a weight-0 endpoint", [k.ep(0, weight: 1), k.ep(1, weight: 2), k.ep(2, weight: 7), k.ep(3, weight: 0)], 3000),
        ]
        for (label, endpoints, n) in cases {
            try dp.load(k.plan([k.port("w", .tcp, clusterIP: 41, cluster: endpoints)]))
            // A real bias fails every sample; a sample that fails by chance (p < 0.001) is
            // drawn once more, so chance alone fails a case with p < 1e-6.
            var attempts: [String] = []
            var passed = false
            for _ in 0..<2 where !passed {
                let started = Date()
                let tally = try dp.topo.tally(from: .pod, Probe("tcp", k.clusterIP(41), 80, count: n))
                let elapsed = Date().timeIntervalSince(started)
                let live = endpoints.filter { $0.weight > 0 }
                let total = Double(live.reduce(0) { $0 + $1.weight })
                let observed = live.map { tally["\($0.ip)"] ?? 0 }
                let x2 = chiSquare(observed, live.map { Double($0.weight) / total })
                let critical = chiSquareCritical001[live.count - 1]!
                let shown = endpoints.map { "\($0.ip) w\($0.weight): \(tally["\($0.ip)"] ?? 0) (expected \(Int(Double(n) * Double($0.weight) / total)))" }
                    .joined(separator: ", ")
                let tag = "[\(v)] \(label), \(n) TCP connections in \(String(format: "%.1f", elapsed)) s"
                // Hard failures: unanswered connections or traffic to a weight-0 endpoint.
                #expect(observed.reduce(0, +) == n, "\(tag): not every connection was answered by a weighted endpoint: \(tally)")
                for e in endpoints where e.weight == 0 {
                    #expect(tally["\(e.ip)"] == nil, "\(tag): weight-0 endpoint \(e.ip) received \(tally["\(e.ip)"] ?? 0) connections")
                }
                passed = x2 < critical
                attempts.append("\(tag): chi-square \(String(format: "%.2f", x2)) vs \(critical) at p = 0.001: \(shown)")
            }
            #expect(passed, "weights not followed:\n\(attempts.joined(separator: "\n"))")
        }
    }
}
