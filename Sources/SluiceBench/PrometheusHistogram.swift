import Foundation

/// A Prometheus histogram between two scrapes of the daemon's /metrics (name_bucket{le=…},
/// name_sum, name_count), with quantiles read off its buckets.
public struct PrometheusHistogram: Codable, Sendable {
    public struct Bucket: Codable, Sendable {
        /// Upper bound in seconds (`+Inf` is `Double.infinity`, encoded as nil).
        public var le: Double?
        /// Cumulative count.
        public var count: Int
    }

    public var name: String
    public var count: Int
    public var sum: Double
    /// Cumulative counts in order of their bounds; of buckets with equal counts only the first.
    public var buckets: [Bucket]

    /// `after` minus `before` (a scrape without the metric counts as zeros); nil when
    /// `after` lacks the histogram.
    public init?(_ name: String, before: [String: Double], after: [String: Double]) {
        let prefix = name + "_bucket{"
        var bounds: [(Double, Int)] = []
        for (key, value) in after where key.hasPrefix(prefix) {
            guard let le = Self.le(key) else { continue }
            bounds.append((le, Int(value - (before[key] ?? 0))))
        }
        guard !bounds.isEmpty else { return nil }
        self.name = name
        count = Int((after[name + "_count"] ?? 0) - (before[name + "_count"] ?? 0))
        sum = (after[name + "_sum"] ?? 0) - (before[name + "_sum"] ?? 0)
        var lastCount = -1
        buckets = bounds.sorted { $0.0 < $1.0 }.compactMap { le, c in
            defer { lastCount = c }
            return c == lastCount ? nil : Bucket(le: le.isFinite ? le : nil, count: c)
        }
    }

    /// The `le` label of a bucket key.
    static func le(_ key: String) -> Double? {
        guard let r = key.range(of: "le=\"") else { return nil }
        let rest = key[r.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        let text = rest[..<end]
        return text == "+Inf" ? .infinity : Double(text)
    }

    /// The upper bound of the bucket holding quantile `q` (nil: empty, or beyond the last bound).
    public func quantileBound(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = Int((q * Double(count)).rounded(.up))
        return buckets.first { $0.count >= max(1, rank) }?.le
    }

    public var mean: Double? { count > 0 ? sum / Double(count) : nil }
}
