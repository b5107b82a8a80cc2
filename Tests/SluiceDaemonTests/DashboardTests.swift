import Foundation
import SluiceCompiler
import SluiceDaemon
import SluiceIR
import SluiceModel
import SluiceNetlink
import Testing

/// `deploy/grafana-dashboard.json`: a well-formed Grafana dashboard whose every query names only
/// metrics the daemon exports. What the daemon exports comes from a scrape of a running daemon
/// (fake dataplane), not from a list kept by hand.
@Suite("Grafana dashboard (deploy/grafana-dashboard.json)", .timeLimit(.minutes(2)))
struct DashboardTests {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let path = root + "/deploy/grafana-dashboard.json"

    static func dashboard() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(path) is not a JSON object")
    }

    /// Every panel, rows' nested panels (collapsed rows) included.
    static func panels(_ d: [String: Any]) -> [[String: Any]] {
        func walk(_ list: [[String: Any]]) -> [[String: Any]] {
            list.flatMap { [$0] + walk($0["panels"] as? [[String: Any]] ?? []) }
        }
        return walk(d["panels"] as? [[String: Any]] ?? [])
    }

    /// Every panel target's `expr`, with its panel's title.
    static func expressions(_ d: [String: Any]) -> [(panel: String, expr: String)] {
        panels(d).flatMap { p -> [(panel: String, expr: String)] in
            (p["targets"] as? [[String: Any]] ?? []).compactMap { t in
                (t["expr"] as? String).map { (panel: p["title"] as? String ?? "?", expr: $0) }
            }
        }
    }

    // MARK: Metric names in PromQL

    /// Words that are PromQL, not metric names: keywords, set and grouping operators, and the
    /// aggregation operators (`sum by (le) (…)`: not followed by `(` directly).
    static let keywords: Set<String> = [
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
        "offset", "inf", "nan", "atan2",
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
        "quantile", "limitk", "limit_ratio",
    ]
    /// Keywords followed by a parenthesised list of label names.
    static let grouping: Set<String> = ["by", "without", "on", "ignoring", "group_left", "group_right"]

    /// The metric names a PromQL expression (with Grafana variables) selects: identifiers in
    /// metric-name syntax that are neither functions or aggregations (followed by `(`), nor
    /// keywords, nor label names (in `{…}` selectors and `by`/`without`/`on`/`ignoring`/`group_*`
    /// lists), nor inside strings, ranges (`[…]`), numbers, durations or `$variables`.
    static func metricNames(in expr: String) -> Set<String> {
        let chars = Array(expr)
        var i = 0
        func skipString(_ quote: Character) {
            i += 1
            while i < chars.count, chars[i] != quote {
                if chars[i] == "\\", quote != "`" { i += 1 }
                i += 1
            }
            i += 1
        }
        func skipBlock(_ close: Character) {
            i += 1
            while i < chars.count, chars[i] != close {
                if ["\"", "'", "`"].contains(chars[i]) { skipString(chars[i]) } else { i += 1 }
            }
            i += 1
        }
        func isIdentStart(_ c: Character) -> Bool { c == "_" || c == ":" || (c.isASCII && c.isLetter) }
        func isIdent(_ c: Character) -> Bool { isIdentStart(c) || (c.isASCII && c.isNumber) }
        func nextNonSpace() -> Character? {
            var j = i
            while j < chars.count, chars[j].isWhitespace { j += 1 }
            return j < chars.count ? chars[j] : nil
        }

        var names: Set<String> = []
        while i < chars.count {
            let c = chars[i]
            switch c {
            case "\"", "'", "`":
                skipString(c)
            case "{":
                skipBlock("}")
            case "[":
                skipBlock("]")
            case "#":
                while i < chars.count, chars[i] != "\n" { i += 1 }
            case "$":
                // $var, ${var}, ${var:format}, $__rate_interval
                i += 1
                if i < chars.count, chars[i] == "{" { skipBlock("}") } else { while i < chars.count, isIdent(chars[i]) { i += 1 } }
            case _ where c.isASCII && c.isNumber, "." where i + 1 < chars.count && chars[i + 1].isNumber:
                // Numbers (1e3, 0x1f, 0.99) and durations (5m, 1h30m).
                while i < chars.count, isIdent(chars[i]) || chars[i] == "." { i += 1 }
            case _ where isIdentStart(c):
                let start = i
                while i < chars.count, isIdent(chars[i]) { i += 1 }
                let word = String(chars[start..<i])
                if grouping.contains(word.lowercased()) {
                    if nextNonSpace() == "(" {
                        while chars[i] != "(" { i += 1 }
                        skipBlock(")")
                    }
                } else if keywords.contains(word.lowercased()) || nextNonSpace() == "(" {
                    continue
                } else {
                    names.insert(word)
                }
            default:
                i += 1
            }
        }
        return names
    }

    /// Metric families of a Prometheus text exposition, by `# TYPE` line: name → type.
    static func families(_ exposition: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in exposition.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            if parts.count >= 4 { out[String(parts[2])] = String(parts[3]) }
        }
        return out
    }

    /// Series names each family exposes: a histogram's `_bucket`, `_sum` and `_count` (not its
    /// bare name), a summary's bare name, `_sum` and `_count`, any other type its name.
    static func seriesNames(_ families: [String: String]) -> [String: String] {
        var out: [String: String] = [:]
        for (name, type) in families {
            switch type {
            case "histogram": for s in ["_bucket", "_sum", "_count"] { out[name + s] = name }
            case "summary": for s in ["", "_sum", "_count"] { out[name + s] = name }
            default: out[name] = name
            }
        }
        return out
    }

    /// The queried names no exported series has.
    static func unexported(_ queried: Set<String>, _ families: [String: String]) -> [String] {
        let series = seriesNames(families)
        return queried.filter { series[$0] == nil }.sorted()
    }

    /// Families a set of queried names reads (histogram suffixes mapped to the histogram).
    static func queriedFamilies(_ queried: Set<String>, _ families: [String: String]) -> Set<String> {
        let series = seriesNames(families)
        return Set(queried.compactMap { series[$0] })
    }

    // MARK: The daemon's exposition

    /// With `--traffic-counters`, so the packet and byte families are exported too.
    func config(_ source: ScriptedSource, _ fake: FakeDataplane) -> DaemonConfiguration {
        var options = testOptions()
        options.trafficCounters = true
        var c = DaemonConfiguration(options: options, sources: [source], healthzBindAddress: "127.0.0.1:0",
                                    metricsBindAddress: "127.0.0.1:0", healthCheckBindHost: "127.0.0.1")
        c.dataplane = { fake }
        c.watchCommits = false
        c.connectionCountersInterval = .zero
        return c
    }

    /// One scrape of `/metrics` from a daemon with the fake dataplane, after a first sync and an
    /// update of the Service's EndpointSlice that carries a trigger time (so every histogram
    /// has an observation; trigger times from before the daemon started are not observed),
    /// with a kernel connection counter and traffic counter for it; `/healthz` and `/livez` answered once each.
    func scrape() async throws -> String {
        let source = ScriptedSource(), fake = FakeDataplane()
        source.send(delta(serviceYAML("web", clusterIP: "10.96.1.1") + "---\n"
            + sliceYAML("web-1", service: "web", ips: ["10.244.0.1"])))
        fake.counters = [Layout.serviceConnections: [
            [IPAddress("10.96.1.1")!.datum, .tcp, .port(80)]: ElementCounter(packets: 3, bytes: 180),
        ], Layout.serviceTraffic: [
            [IPAddress("10.96.1.1")!.datum, .tcp, .port(80)]: ElementCounter(packets: 12, bytes: 2400),
        ]]
        return try await withDaemon(config(source, fake)) { daemon in
            _ = try await waitUntil("first sync") { await daemon.commits() == 1 }
            source.send(delta(sliceYAML("web-1", service: "web", ips: ["10.244.0.1", "10.244.0.2"],
                                        annotations: await freshTriggerTime())))
            _ = try await waitUntil("the update's sync") { await daemon.commits() == 2 }
            let hz = try await boundHealthzPort(daemon)
            _ = try httpGet(port: hz, path: "/healthz")
            _ = try httpGet(port: hz, path: "/livez")
            let r = try httpGet(port: try await boundMetricsPort(daemon), path: "/metrics")
            try #require(r.status == 200)
            return r.body
        }
    }

    // MARK: Tests

    @Test("the name extraction skips functions, keywords, labels, strings, ranges, numbers and variables")
    func extraction() {
        let expr = """
            histogram_quantile(0.99, sum by (le, instance) (rate(a_seconds_bucket{job=~"$job", code!="x y"}[$__rate_interval])))
            / on (instance) group_left (node) b_info offset 5m > bool 1e3
            and sum(increase(c_total[1h:5m])) without (pod) or topk($top, label_replace(d, "dst", "$1", "src", "(.*)"))
            unless ${var:csv} + count_values("value", e:recorded:rule) * .5 + Inf + NaN
            """
        #expect(Self.metricNames(in: expr) == ["a_seconds_bucket", "b_info", "c_total", "d", "e:recorded:rule"])
        let families = ["a_seconds": "histogram", "b_info": "gauge", "c_total": "counter", "d": "gauge", "e:recorded:rule": "gauge"]
        #expect(Self.unexported(Self.metricNames(in: expr), families).isEmpty)
        #expect(Self.queriedFamilies(Self.metricNames(in: expr), families) == Set(families.keys))
        // A name nothing exports, and a histogram's bare name (it has no series), are reported.
        #expect(Self.unexported(["sluice_bogus_total", "a_seconds", "a_seconds_bucket", "c_total_bucket"], families)
            == ["a_seconds", "c_total_bucket", "sluice_bogus_total"])
    }

    @Test("a Grafana dashboard: schema, ${datasource} and instance/node variables, panels laid out")
    func structure() throws {
        let d = try Self.dashboard()
        let schema = try #require(d["schemaVersion"] as? Int)
        #expect((36...41).contains(schema), "schemaVersion \(schema)")
        #expect((d["uid"] as? String)?.isEmpty == false)
        #expect((d["title"] as? String)?.isEmpty == false)
        let vars = try #require((d["templating"] as? [String: Any])?["list"] as? [[String: Any]])
        let byName = Dictionary(vars.map { ($0["name"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byName.count == vars.count, "duplicate variable names")
        let ds = try #require(byName["datasource"])
        #expect(ds["type"] as? String == "datasource")
        #expect(ds["query"] as? String == "prometheus")
        for name in ["job", "node", "instance"] {
            let v = try #require(byName[name], "no $\(name) variable")
            #expect(v["type"] as? String == "query")
            #expect((v["datasource"] as? [String: Any])?["uid"] as? String == "${datasource}", "$\(name) queries another datasource")
            #expect(v["includeAll"] as? Bool == true && v["allValue"] as? String == ".*", "$\(name): All must match series without the label")
        }

        let panels = Self.panels(d)
        let ids = panels.compactMap { $0["id"] as? Int }
        #expect(ids.count == panels.count && Set(ids).count == ids.count, "every panel needs a unique id")
        var cells: Set<[Int]> = []
        for p in panels {
            let title = p["title"] as? String ?? "?"
            let g = try #require(p["gridPos"] as? [String: Int], "\(title): no gridPos")
            let (x, y, w, h) = (g["x"] ?? -1, g["y"] ?? -1, g["w"] ?? 0, g["h"] ?? 0)
            let inGrid = x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24
            #expect(inGrid, "\(title): gridPos \(g)")
            if inGrid {
                let overlap = (x..<(x + w)).flatMap { cx in (y..<(y + h)).map { [cx, $0] } }.filter { !cells.insert($0).inserted }
                #expect(overlap.isEmpty, "\(title) overlaps another panel at \(overlap.prefix(3))")
            }
            guard p["type"] as? String != "row" else { continue }
            #expect((p["datasource"] as? [String: Any])?["uid"] as? String == "${datasource}", "\(title): datasource")
            let targets = p["targets"] as? [[String: Any]] ?? []
            #expect(!targets.isEmpty, "\(title): no queries")
            for t in targets {
                #expect((t["datasource"] as? [String: Any])?["uid"] as? String == "${datasource}", "\(title): target datasource")
                let expr = t["expr"] as? String ?? ""
                #expect(!expr.isEmpty, "\(title): empty expr")
                for v in ["$job", "$node", "$instance"] {
                    #expect(expr.contains(v), "\(title): \(expr) ignores \(v)")
                }
            }
        }
    }

    @Test("every metric a panel queries is one the daemon exports, and every exported metric has a panel")
    func queriesOnlyExportedMetrics() async throws {
        let exposition = try await scrape()
        let families = Self.families(exposition)
        // The scrape is a real one: every histogram has observations, the connection counter a sample.
        for h in ["kubeproxy_sync_proxy_rules_duration_seconds", "kubeproxy_network_programming_duration_seconds",
                  "sluice_commit_duration_seconds", "sluice_transaction_operations"] {
            #expect(families[h] == "histogram", "\(h): \(families[h] ?? "missing")")
            #expect((metricValue(exposition, h + "_count") ?? 0) >= 1, "\(h) has no observation:\n\(exposition)")
        }
        #expect(exposition.contains("sluice_service_new_connections_total{namespace=\"default\",service=\"web\""))

        let d = try Self.dashboard()
        var queried: Set<String> = []
        for (panel, expr) in Self.expressions(d) {
            let names = Self.metricNames(in: expr)
            #expect(!names.isEmpty, "\(panel): no metric in \(expr)")
            let missing = Self.unexported(names, families)
            #expect(missing.isEmpty, "panel \"\(panel)\" queries \(missing), which the daemon does not export (\(expr))")
            queried.formUnion(names)
        }
        let covered = Self.queriedFamilies(queried, families)
        let unshown = Set(families.keys).subtracting(covered).sorted()
        #expect(unshown.isEmpty, "exported but on no panel: \(unshown)")
    }

    @Test("panels for each area: sync, commit, network programming, syncs, failures, drift, connections, table, health")
    func coversEveryArea() throws {
        let d = try Self.dashboard()
        let exprs = Self.expressions(d)
        func queries(_ what: String, _ predicate: (String) -> Bool) {
            #expect(exprs.contains { predicate($0.expr) }, "no panel queries \(what)")
        }
        for h in ["kubeproxy_sync_proxy_rules_duration_seconds", "kubeproxy_network_programming_duration_seconds",
                  "sluice_commit_duration_seconds", "sluice_transaction_operations"] {
            queries("quantiles of \(h)") { $0.contains("histogram_quantile(") && Self.metricNames(in: $0).contains(h + "_bucket") }
        }
        let queried = exprs.reduce(into: Set<String>()) { $0.formUnion(Self.metricNames(in: $1.expr)) }
        for m in ["sluice_syncs_total", "kubeproxy_sync_proxy_rules_nftables_sync_failures_total", "sluice_drift_repairs_total",
                  "sluice_commit_notifications_total", "sluice_service_new_connections_total", "sluice_nftables_elements",
                  "kubeproxy_sync_proxy_rules_last_timestamp_seconds", "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
                  "kubeproxy_proxy_healthz_total", "kubeproxy_proxy_livez_total"] {
            #expect(queried.contains(m), "no panel queries \(m)")
        }
        queries("syncs by kind") { $0.contains("sluice_syncs_total") && $0.contains("by (kind)") }
        queries("commit notifications by origin") { $0.contains("sluice_commit_notifications_total") && $0.contains("by (origin)") }
        queries("health requests by code") { $0.contains("kubeproxy_proxy_healthz_total") && $0.contains("by (code)") }

        // Per-service connection rates, busiest first, as a time series and as a table.
        let perService = "sum by (namespace, service, port, protocol) (rate(sluice_service_new_connections_total"
        let connectionPanels = Self.panels(d).filter { p in
            (p["targets"] as? [[String: Any]] ?? []).contains { t in
                let e = t["expr"] as? String ?? ""
                return e.hasPrefix("topk(") && e.contains(perService) && e.contains("[$__rate_interval]")
            }
        }
        #expect(Set(connectionPanels.compactMap { $0["type"] as? String }) == ["timeseries", "table"])
    }
}
