import Foundation
import SluiceCompiler
import SluiceDaemon
import SluiceIR
import SluiceModel
import SluiceNetlink
import SluiceTestSupport
import Testing

@Suite("Connection counters on /metrics (fake dataplane)", .timeLimit(.minutes(2)))
struct ConnectionMetricsTests {
    func config(_ source: ScriptedSource, _ fake: FakeDataplane, interval: Duration, traffic: Bool = false) -> DaemonConfiguration {
        var options = testOptions()
        options.trafficCounters = traffic
        var c = DaemonConfiguration(options: options, sources: [source], healthzBindAddress: "127.0.0.1:0",
                                    metricsBindAddress: "127.0.0.1:0", healthCheckBindHost: "127.0.0.1")
        c.dataplane = { fake }
        c.watchCommits = false
        c.connectionCountersInterval = interval
        return c
    }

    func key(_ ip: String, _ port: UInt16) -> [Datum] { [IPAddress(ip)!.datum, .tcp, .port(port)] }
    func line(_ svc: String, _ metric: String = "sluice_service_new_connections_total") -> String {
        "\(metric){namespace=\"default\",service=\"\(svc)\",port=\"p\",protocol=\"TCP\"}"
    }

    /// Counters are named by the Services the daemon holds; a tuple no Service owns (a deleted
    /// one) is left out; within the read interval a scrape serves the previous reading.
    @Test(arguments: [false, true])
    func serviceConnectionsAreExported(cached: Bool) async throws {
        let source = ScriptedSource(), fake = FakeDataplane()
        var yaml = serviceYAML("web", clusterIP: "10.96.1.1") + "---\n" + sliceYAML("web-1", service: "web", ips: ["10.244.0.1"])
        yaml += "---\n" + serviceYAML("db", clusterIP: "10.96.1.2", extraSpec: ["externalIPs: [192.0.2.7]"])
        source.send(delta(yaml))
        fake.counters = [Layout.serviceConnections: [
            key("10.96.1.1", 80): ElementCounter(packets: 7, bytes: 420),
            key("10.96.1.2", 80): ElementCounter(packets: 2, bytes: 120),
            key("192.0.2.7", 80): ElementCounter(packets: 3, bytes: 180),
            key("10.96.9.9", 80): ElementCounter(packets: 5, bytes: 300),
        ]]
        try await withDaemon(config(source, fake, interval: cached ? .seconds(3600) : .zero)) { daemon in
            _ = try await waitUntil("first sync") { await daemon.commits() == 1 }
            let port = try await boundMetricsPort(daemon)
            let body = try httpGet(port: port, path: "/metrics").body
            #expect(body.contains("# TYPE sluice_service_new_connections_total counter"))
            #expect(metricValue(body, line("web")) == 7)
            #expect(metricValue(body, line("db")) == 5, "ClusterIP and externalIP add up")
            #expect(body.components(separatedBy: "sluice_service_new_connections_total{").count == 3, "no line for 10.96.9.9:\n\(body)")
            var counters = fake.counters
            counters[Layout.serviceConnections]![key("10.96.1.1", 80)] = ElementCounter(packets: 9, bytes: 540)
            fake.counters = counters
            let reads = fake.counterReads
            let again = try httpGet(port: port, path: "/metrics").body
            #expect(metricValue(again, line("web")) == (cached ? 7 : 9))
            #expect(fake.counterReads == (cached ? reads : reads + 2), "one dump per counter set per reading")
        }
    }

    /// With `--traffic-counters` the `service-traffic` counters are exported as packets and
    /// bytes per service port (addresses added up, unknown tuples left out); without it the
    /// set does not exist, is not read, and neither family is exported.
    @Test(arguments: [false, true])
    func serviceTrafficIsExportedOnlyWithTheFlag(traffic: Bool) async throws {
        let source = ScriptedSource(), fake = FakeDataplane()
        var yaml = serviceYAML("web", clusterIP: "10.96.1.1") + "---\n" + sliceYAML("web-1", service: "web", ips: ["10.244.0.1"])
        yaml += "---\n" + serviceYAML("db", clusterIP: "10.96.1.2", extraSpec: ["externalIPs: [192.0.2.7]"])
        source.send(delta(yaml))
        fake.counters = [Layout.serviceConnections: [key("10.96.1.1", 80): ElementCounter(packets: 2, bytes: 120)],
                         Layout.serviceTraffic: [
                            key("10.96.1.1", 80): ElementCounter(packets: 20, bytes: 3000),
                            key("10.96.1.2", 80): ElementCounter(packets: 4, bytes: 400),
                            key("192.0.2.7", 80): ElementCounter(packets: 6, bytes: 600),
                            key("10.96.9.9", 80): ElementCounter(packets: 5, bytes: 500),
                         ]]
        try await withDaemon(config(source, fake, interval: .zero, traffic: traffic)) { daemon in
            _ = try await waitUntil("first sync") { await daemon.commits() == 1 }
            let reads = fake.counterReads
            let body = try httpGet(port: try await boundMetricsPort(daemon), path: "/metrics").body
            #expect(metricValue(body, line("web")) == 2)
            #expect(fake.counterReads == reads + (traffic ? 3 : 2), "the traffic set is read only with the flag")
            guard traffic else {
                #expect(!body.contains("sluice_service_packets_total") && !body.contains("sluice_service_bytes_total"), "\(body)")
                return
            }
            #expect(body.contains("# TYPE sluice_service_packets_total counter"))
            #expect(body.contains("# TYPE sluice_service_bytes_total counter"))
            #expect(metricValue(body, line("web", "sluice_service_packets_total")) == 20)
            #expect(metricValue(body, line("web", "sluice_service_bytes_total")) == 3000)
            #expect(metricValue(body, line("db", "sluice_service_packets_total")) == 10, "ClusterIP and externalIP add up")
            #expect(metricValue(body, line("db", "sluice_service_bytes_total")) == 1000)
            #expect(body.components(separatedBy: "sluice_service_packets_total{").count == 3, "no line for 10.96.9.9:\n\(body)")
        }
    }
}
