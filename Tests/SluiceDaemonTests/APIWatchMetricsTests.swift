import Foundation
@testable import SluiceDaemon
import SluiceKube
import SluiceKubeFake
import SluiceModel
import NIOConcurrencyHelpers
import Testing

/// `sluice_api_*`: the API watch's counters on `/metrics`, read from the reflectors.
@Suite("API watch metrics", .timeLimit(.minutes(2)))
struct APIWatchMetricsTests {
    @Test("lists, watch events and sync state per resource appear on /metrics and follow the watch")
    func followTheWatch() async throws {
        let server = try await FakeAPIServer.start(FakeAPIServer.Configuration())
        let client = try KubeAPIClient(configuration: KubeClientConfiguration(server: server.url))
        let synced = NIOLockedValueBox(false)
        let source = APIServerSource(client: client, nodeName: nodeName)
        let run = Task { try await source.run { delta in if delta.synced { synced.withLockedValue { $0 = true } } } }
        func metrics() -> String {
            Daemon.metricsReply(path: "/metrics", health: ProxyHealth(healthTimeout: .seconds(120)), metrics: DaemonMetrics(),
                                sources: [source]).body
        }
        func value(_ name: String, _ resource: String) -> Int? {
            let prefix = "\(name){resource=\"\(resource)\"} "
            return metrics().split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) }
        }
        do {
            #expect(source.metricsExposition() == "", "nothing before the source starts its reflectors")
            _ = try server.create(Service(metadata: ObjectMeta(name: "web", namespace: "default"),
                                          spec: Service.Spec(type: "ClusterIP", clusterIP: "10.96.0.10", clusterIPs: ["10.96.0.10"],
                                                             ports: [Service.Port(name: "p", protocol: "TCP", port: 80, targetPort: .int(8080))])))
            _ = try await waitUntil("synced") { synced.withLockedValue { $0 } }
            for resource in ["services", "endpointslices", "node", "servicecidrs"] {
                #expect(value("sluice_api_synced", resource) == 1, "\(resource)")
                #expect(value("sluice_api_lists_total", resource) == 1, "\(resource)")
                #expect(value("sluice_api_relists_total", resource) == 0, "\(resource)")
            }
            let before = try #require(value("sluice_api_watch_events_total", "endpointslices"))
            _ = try server.create(EndpointSlice(metadata: ObjectMeta(name: "web-1", namespace: "default", labels: [WellKnownKeys.serviceName: "web"]),
                                                addressType: "IPv4", endpoints: [], ports: []))
            _ = try await waitUntil("the slice's watch event counted") {
                (value("sluice_api_watch_events_total", "endpointslices") ?? 0) > before
            }
            #expect(metrics().contains("# TYPE sluice_api_watch_stalls_total counter"))
        } catch {
            run.cancel()
            try? await client.shutdown()
            try? await server.shutdown()
            throw error
        }
        run.cancel()
        _ = await run.result
        try await client.shutdown()
        try await server.shutdown()
    }
}
