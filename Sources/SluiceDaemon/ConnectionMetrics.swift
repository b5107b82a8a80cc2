import Foundation
import NIOConcurrencyHelpers
import SluiceCompiler
import SluiceModel

/// `sluice_service_new_connections_total{namespace,service,port,protocol}`: the kernel's
/// per-service connection counters, and with `--traffic-counters`
/// `sluice_service_packets_total` / `sluice_service_bytes_total` with the same labels, read
/// by dumping the counter sets at most once per `minInterval` (a scrape within it gets the
/// previous reading).
///
/// The read runs on the sync loop (which owns the netlink socket and knows the Services);
/// the scrape waits for it at most `timeout`, then serves the previous reading.
final class ConnectionMetrics: Sendable {
    let minInterval: Duration
    let timeout: Duration
    /// The connection counters, and the traffic counters when they are on.
    private let read: @Sendable () async -> (ConnectionCounts, TrafficCounts?)
    private let cache = NIOLockedValueBox<(at: ContinuousClock.Instant, text: String)?>(nil)

    init(minInterval: Duration = .seconds(5), timeout: Duration = .seconds(5), read: @escaping @Sendable () async -> (ConnectionCounts, TrafficCounts?)) {
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
            let (counts, traffic) = await read()
            result.withLockedValue { $0 = Self.render(counts) + (traffic.map { Self.render($0) } ?? "") }
            done.signal()
        }
        guard done.wait(timeout: .now() + .nanoseconds(Int(nanoseconds(timeout)))) == .success, let text = result.withLockedValue({ $0 }) else {
            return cache.withLockedValue { $0?.text } ?? Self.render(ConnectionCounts())
        }
        cache.withLockedValue { $0 = (.now, text) }
        return text
    }

    static let name = "sluice_service_new_connections_total"

    static let packetsName = "sluice_service_packets_total"
    static let bytesName = "sluice_service_bytes_total"

    static func render(_ counts: ConnectionCounts) -> String {
        family(name, help: "New connections to a service port (all of its addresses and NodePorts), counted in the kernel.", counts.services)
    }

    /// The two traffic families (`--traffic-counters`).
    static func render(_ traffic: TrafficCounts) -> String {
        family(packetsName, help: "Packets of a service port's connections, both directions (all of its addresses and NodePorts), counted in the kernel.",
               traffic.services.mapValues(\.packets))
            + family(bytesName, help: "Bytes of a service port's connections, both directions (all of its addresses and NodePorts), counted in the kernel.",
                     traffic.services.mapValues(\.bytes))
    }

    /// One counter family with a series per service port.
    static func family(_ name: String, help: String, _ values: [ServicePortName: UInt64]) -> String {
        var out = "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
        for (port, n) in values.sorted(by: { $0.key < $1.key }) {
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
