/// Go `time.Duration` text as used by `metav1.Duration` fields (`30s`, `1m0s`, `1h2m3.5s`,
/// `500ms`, `0`).
public enum GoDuration {
    /// Parses a Go duration; nil if malformed.
    public static func parse(_ text: String) -> Duration? {
        var s = Substring(text.trimmingSpaces)
        guard !s.isEmpty else { return nil }
        var negative = false
        if s.first == "-" || s.first == "+" {
            negative = s.first == "-"
            s = s.dropFirst()
        }
        if s == "0" { return .zero }
        var totalNanos: Double = 0
        while !s.isEmpty {
            let number = s.prefix { $0.isASCIIDigit || $0 == "." }
            guard !number.isEmpty, number != ".", let value = Double(number) else { return nil }
            s = s.dropFirst(number.count)
            let unit = s.prefix { !$0.isASCIIDigit && $0 != "." }
            guard let scale = unitNanos[String(unit)] else { return nil }
            s = s.dropFirst(unit.count)
            totalNanos += value * scale
        }
        let nanos = Int64(totalNanos.rounded())
        let d = Duration.nanoseconds(nanos)
        return negative ? .zero - d : d
    }

    private static let unitNanos: [String: Double] = [
        "ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9,
    ]

    /// Formats like Go's `Duration.String()` for whole seconds and above (`1m0s`, `15m0s`,
    /// `1h0m0s`, `500ms`).
    public static func format(_ d: Duration) -> String {
        let (seconds, attos) = d.components
        if seconds == 0 && attos == 0 { return "0s" }
        if seconds == 0 { return "\(attos / 1_000_000_000_000_000)ms" }
        let h = seconds / 3600, m = (seconds % 3600) / 60, sec = seconds % 60
        let fraction = attos == 0 ? "" : ".\(String(String(format3(attos)).reversed().drop { $0 == "0" }.reversed()))"
        if h > 0 { return "\(h)h\(m)m\(sec)\(fraction)s" }
        if m > 0 { return "\(m)m\(sec)\(fraction)s" }
        return "\(sec)\(fraction)s"
    }

    private static func format3(_ attos: Int64) -> String {
        let ms = attos / 1_000_000_000_000_000
        let text = String(ms)
        return String(repeating: "0", count: max(0, 3 - text.count)) + text
    }
}

/// An inclusive port range such as `--service-node-port-range` (`30000-32767`).
public struct PortRange: Sendable, Hashable, Codable, CustomStringConvertible {
    public var lower: Int
    public var upper: Int

    public init(lower: Int, upper: Int) {
        self.lower = lower
        self.upper = upper
    }

    /// The API server's default NodePort range.
    public static let defaultNodePortRange = PortRange(lower: 30000, upper: 32767)

    /// Parses `low-high` or `base+size` (as the API server's flag does); nil if malformed.
    public init?(_ text: String) {
        let s = text.trimmingSpaces
        if let plus = s.firstIndex(of: "+") {
            guard let base = Int(s[..<plus]), let size = Int(s[s.index(after: plus)...]) else { return nil }
            self.init(lower: base, upper: base + size)
        } else {
            let parts = s.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count <= 2, let low = Int(parts[0]) else { return nil }
            let high = parts.count == 2 ? Int(parts[1]) : low
            guard let high else { return nil }
            self.init(lower: low, upper: high)
        }
        guard lower >= 1, upper <= 65535, lower <= upper else { return nil }
    }

    public func contains(_ port: Int) -> Bool { port >= lower && port <= upper }
    public var description: String { "\(lower)-\(upper)" }
}
