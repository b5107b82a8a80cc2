import NIOConcurrencyHelpers
import SluiceKube

/// The API watch's health as metrics, read from the reflectors' counters at scrape time
/// (`sluice_api_*{resource}`): lists and relists, watches opened and failed, events,
/// watches given up as stalled, and whether each resource has synced. A relist count that
/// climbs, or stalls, tell an operator the node's view of the cluster is being rebuilt.
final class APIWatchMetrics: Sendable {
    private let reflectors = NIOLockedValueBox<ProxyReflectors?>(nil)

    /// The reflectors to read (set when the source starts them).
    func attach(_ r: ProxyReflectors) { reflectors.withLockedValue { $0 = r } }

    /// The metric families in Prometheus text format (empty before the source started).
    func exposition() -> String {
        guard let r = reflectors.withLockedValue({ $0 }) else { return "" }
        return Self.render(r.statistics)
    }

    private static let families: [(name: String, type: String, help: String, value: @Sendable (ReflectorStatistics) -> Int)] = [
        ("sluice_api_lists_total", "counter", "Complete lists of a resource (the first one and every relist).", { $0.lists }),
        ("sluice_api_relists_total", "counter", "Lists after the first one: the watch could not resume.", { $0.relists }),
        ("sluice_api_list_failures_total", "counter", "Failed list requests.", { $0.listFailures }),
        ("sluice_api_watches_total", "counter", "Watches opened.", { $0.watchesOpened }),
        ("sluice_api_watch_failures_total", "counter", "Watches that ended with an error.", { $0.watchFailures }),
        ("sluice_api_watch_events_total", "counter", "Watch events received, bookmarks included.", { $0.watchEvents }),
        ("sluice_api_watch_stalls_total", "counter", "Watches given up because they brought nothing for --watch-progress-timeout.", { $0.watchStalls }),
    ]

    static func render(_ rows: [(resource: String, statistics: ReflectorStatistics, synced: Bool)]) -> String {
        var out = ""
        for f in families {
            out += "# HELP \(f.name) \(f.help)\n# TYPE \(f.name) \(f.type)\n"
            for row in rows { out += "\(f.name){resource=\"\(row.resource)\"} \(f.value(row.statistics))\n" }
        }
        out += "# HELP sluice_api_synced Whether the resource's first list has been applied (1) or not (0).\n# TYPE sluice_api_synced gauge\n"
        for row in rows { out += "sluice_api_synced{resource=\"\(row.resource)\"} \(row.synced ? 1 : 0)\n" }
        return out
    }
}
