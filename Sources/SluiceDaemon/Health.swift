import Foundation
import NIOConcurrencyHelpers
import SluiceModel

/// kube-proxy's proxier health (`pkg/proxy/healthcheck/proxy_health.go`): a family is
/// unhealthy when an update was queued and not applied within `healthTimeout`
/// (2 × sync period). `/healthz` also fails while the node is not eligible (being deleted
/// or tainted `ToBeDeletedByClusterAutoscaler`); `/livez` does not look at that.
public final class ProxyHealth: Sendable {
    struct FamilyState: Sendable {
        var lastUpdated: Date?
        var oldestQueued: Date?
    }

    struct State: Sendable {
        var families: [IPFamily: FamilyState] = [:]
        var nodeEligible = true
    }

    public let healthTimeout: Duration
    private let state = NIOLockedValueBox(State())

    public init(healthTimeout: Duration) {
        self.healthTimeout = healthTimeout
    }

    /// A change was queued for these families (kept if one is already pending).
    public func queued(_ families: [IPFamily], at now: Date = Date()) {
        state.withLockedValue { s in
            for f in families where s.families[f]?.oldestQueued == nil { s.families[f, default: FamilyState()].oldestQueued = now }
        }
    }

    /// Everything queued for these families is now in the kernel.
    public func updated(_ families: [IPFamily], at now: Date = Date()) {
        state.withLockedValue { s in
            for f in families {
                s.families[f, default: FamilyState()].lastUpdated = now
                s.families[f]?.oldestQueued = nil
            }
        }
    }

    /// Forgets families the node no longer serves.
    public func keepOnly(_ families: [IPFamily]) {
        state.withLockedValue { s in s.families = s.families.filter { families.contains($0.key) } }
    }

    public func setNodeEligible(_ eligible: Bool) {
        state.withLockedValue { $0.nodeEligible = eligible }
    }

    public struct Report: Sendable {
        public var healthy: Bool
        public var nodeEligible: Bool
        public var lastUpdated: Date
        public var currentTime: Date
        public var families: [(IPFamily, lastUpdated: Date, healthy: Bool)]
    }

    public func report(at now: Date = Date()) -> Report {
        let s = state.withLockedValue { $0 }
        let timeout = healthTimeout.inSeconds
        var healthy = true
        var lastUpdated = Date(timeIntervalSince1970: 0)
        var families: [(IPFamily, lastUpdated: Date, healthy: Bool)] = []
        for (family, st) in s.families.sorted(by: { $0.key < $1.key }) {
            let updated = st.lastUpdated ?? Date(timeIntervalSince1970: 0)
            if updated > lastUpdated { lastUpdated = updated }
            var ok = true
            if let q = st.oldestQueued, now.timeIntervalSince(q) > timeout { ok = false }
            healthy = healthy && ok
            families.append((family, updated, ok))
        }
        // kube-proxy reports "now" as lastUpdated while healthy (backward compatibility).
        if healthy { lastUpdated = now }
        return Report(healthy: healthy, nodeEligible: s.nodeEligible, lastUpdated: lastUpdated, currentTime: now, families: families)
    }

    /// The `/healthz` (`includeNodeEligible`) or `/livez` response: status code and JSON body.
    public func response(healthz: Bool, at now: Date = Date()) -> (status: Int, body: String) {
        let r = report(at: now)
        var fields: [String] = ["\"lastUpdated\":\(jsonString(rfc3339(r.lastUpdated)))", "\"currentTime\":\(jsonString(rfc3339(r.currentTime)))"]
        if healthz { fields.append("\"nodeEligible\":\(r.nodeEligible)") }
        fields.append("\"healthy\":\(r.healthy)")
        let status = r.families.map { f in
            "\(jsonString(f.0.rawValue)):{\"lastUpdated\":\(jsonString(rfc3339(f.lastUpdated))),\"healthy\":\(f.healthy)}"
        }
        fields.append("\"status\":{\(status.joined(separator: ","))}")
        let ok = r.healthy && (!healthz || r.nodeEligible)
        return (ok ? 200 : 503, "{" + fields.joined(separator: ",") + "}")
    }
}

/// RFC 3339 with nanosecond-style fraction, as Go's JSON encoding of `time.Time`.
func rfc3339(_ date: Date) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.string(from: date)
}

/// A JSON string literal.
func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
        }
    }
    return out + "\""
}
