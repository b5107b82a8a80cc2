import Foundation
import NIOConcurrencyHelpers
import SluiceCompiler
import SluiceModel

/// `sluice_service_new_connections_total{namespace,service,port,protocol}`: the kernel's
/// per-service connection counters, read by dumping the counter sets at most once per
/// `minInterval` (a scrape within it gets the previous reading).
///
/// The read runs on the sync loop (which owns the netlink socket and knows the Services);
/// the scrape waits for it at most `timeout`, then serves the previous reading.
final class ConnectionMetrics: Sendable {
    let minInterval: Duration
    let timeout: Duration
    private let read: @Sendable () async -> ConnectionCounts
    private let cache = NIOLockedValueBox<(at: ContinuousClock.Instant, text: String)?>(nil)

    init(minInterval: Duration = .seconds(5), timeout: Duration = .seconds(5), read: @escaping @Sendable () async -> ConnectionCounts) {
        self.minInterval = minInterval
        self.timeout = timeout
        self.read = read
    }

    /// The metric family in Prometheus text format.
    func exposition() -> String {
        if let c = cache.withLockedValue({ $0 }), ContinuousClock.now - c.at < minInterval { return c.text }
        let result = NIOLockedValueBox<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        let read = self.read
        Task {
            let counts = await read()
            result.withLockedValue { $0 = Self.render(counts) }
            done.signal()
        }
        guard done.wait(timeout: .now() + .nanoseconds(Int(nanoseconds(timeout)))) == .success, let text = result.withLockedValue({ $0 }) else {
            return cache.withLockedValue { $0?.text } ?? Self.render(ConnectionCounts())
        }
        cache.withLockedValue { $0 = (.now, text) }
        return text
    }

    static let name = "sluice_service_new_connections_total"

    static func render(_ counts: ConnectionCounts) -> String {
        var out = "# HELP \(name) New connections to a service port (all of its addresses and NodePorts), counted in the kernel.\n"
        out += "# TYPE \(name) counter\n"
        for (port, n) in counts.services.sorted(by: { $0.key < $1.key }) {
            out += "\(name){namespace=\"\(escape(port.service.namespace))\",service=\"\(escape(port.service.name))\","
            out += "port=\"\(escape(port.port))\",protocol=\"\(port.proto.rawValue)\"} \(n)\n"
        }
        return out
    }

    /// Prometheus label-value escaping.
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
