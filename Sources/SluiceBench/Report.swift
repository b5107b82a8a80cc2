import Foundation

public enum Report {
    static let baselines: [Implementation] = [.kubeProxyNft, .kubeProxyIptables]

    /// Computes the ratios of one scale.
    public static func scaleResult(_ scale: Scale, _ results: [ImplResult]) -> ScaleResult {
        var ratios: [String: [String: Double]] = [:]
        var bounds: [String: [String: Bool]] = [:]
        let sluice = results.first { $0.implementation == .sluice }
        for b in results where b.implementation != .sluice {
            for k in MetricKey.allCases {
                guard let s = sluice?[k], s.status == .ok, let sv = s.value, sv > 0, let m = b[k] else { continue }
                var r: Double?
                var lowerBound = false
                if m.status == .ok, let bv = m.value, bv > 0 {
                    r = k.lowerIsBetter ? bv / sv : sv / bv
                } else if m.status == .timeout, k == .coldStart, let t = timeoutValue(m) {
                    // Only a cold start that itself ran into the timeout gives a lower bound; update
                    // metrics of a baseline that could not load at all have no meaningful bound.
                    r = t / sv
                    lowerBound = true
                }
                if let r, r.isFinite {
                    ratios[k.rawValue, default: [:]][b.implementation.rawValue] = r
                    bounds[k.rawValue, default: [:]][b.implementation.rawValue] = lowerBound
                }
            }
        }
        return ScaleResult(scale: scale, results: results, ratios: ratios, ratioIsLowerBound: bounds)
    }

    /// The timeout (seconds) recorded in a timed-out metric's detail.
    static func timeoutValue(_ m: Metric) -> Double? { m.detail?["timeoutSeconds"] }

    // MARK: Formatting

    public static func seconds(_ s: Double) -> String {
        if s < 1e-3 { return String(format: "%.0f µs", s * 1e6) }
        if s < 1 { return String(format: s < 0.01 ? "%.2f ms" : "%.1f ms", s * 1e3) }
        return String(format: "%.2f s", s)
    }

    static func rate(_ r: Double, _ unit: String) -> String {
        let u = unit.hasSuffix("/s") ? "/s" : ""
        if r >= 1e6 { return String(format: "%.2fM", r / 1e6) + u }
        if r >= 1e3 { return String(format: "%.1fk", r / 1e3) + u }
        return String(format: "%.0f", r) + u
    }

    static func value(_ k: MetricKey, _ m: Metric?) -> String {
        guard let m else { return "–" }
        switch m.status {
        case .ok: break
        case .timeout:
            if let t = timeoutValue(m) { return "> timeout (\(seconds(t)))" }
            return "> timeout"
        case .error: return "error"
        case .notApplicable: return "n/a"
        case .notRun: return "not run"
        }
        guard let v = m.value else { return "–" }
        switch m.unit {
        case "s":
            if let s = m.summary, s.n > 1 {
                let partial = m.note != nil ? "*" : ""
                return "\(seconds(s.p50)) / \(seconds(s.p99)) / \(seconds(s.max)) (n=\(s.n)\(partial))"
            }
            return seconds(v)
        case "bytes": return String(format: "%.0f MB", v / 1e6)
        case "conn/s":
            if let after = m.detail?["afterUpdatesConnPerSec"] { return rate(v, m.unit) + " (after updates: " + rate(after, m.unit) + ")" }
            return rate(v, m.unit)
        default: return rate(v, m.unit)
        }
    }

    static func ratio(_ r: ScaleResult, _ k: MetricKey, _ b: Implementation) -> String {
        guard let x = r.ratios[k.rawValue]?[b.rawValue] else { return "" }
        let lb = r.ratioIsLowerBound[k.rawValue]?[b.rawValue] == true ? "> " : ""
        if x >= 100 { return "\(lb)\(String(format: "%.0f", x))×" }
        return "\(lb)\(String(format: "%.2f", x))×"
    }

    /// Markdown results table, one block per scale.
    public static func table(_ scales: [ScaleResult]) -> String {
        var s = ""
        for r in scales {
            let impls = r.results.map(\.implementation)
            s += "### \(r.scale) (\(r.scale.services) services × \(r.scale.endpoints) endpoints)\n\n"
            var header = "| metric | sluice |"
            var rule = "|---|---|"
            for b in impls where b != .sluice {
                header += " \(b.rawValue) | sluice advantage |"
                rule += "---|---|"
            }
            s += header + "\n" + rule + "\n"
            for k in MetricKey.allCases {
                var title = k.title
                switch k {
                case .endpointChange, .serviceAdd, .serviceDelete, .scaleUp, .scaleDown: title += " p50 / p99 / max"
                case .churn: title += " (changes/s)"
                case .compileThroughput, .loadThroughput: title += " (endpoints/s, no kernel)"
                case .connRate: title += " (conn/s, after cold start)"
                default: break
                }
                var row = "| \(title) | \(value(k, r.result(.sluice)?[k])) |"
                for b in impls where b != .sluice {
                    row += " \(value(k, r.result(b)?[k])) | \(ratio(r, k, b)) |"
                }
                s += row + "\n"
            }
            let notes = r.results.flatMap { res in res.notes.map { "\(res.implementation.rawValue): \($0)" } }
                + r.results.flatMap { res in
                    MetricKey.allCases.compactMap { k -> String? in
                        guard let m = res[k], let n = m.note, m.status != .ok || n.contains("samples finished") || m.status == .ok && k == .churn else { return nil }
                        return "\(res.implementation.rawValue) \(k.title): \(n)"
                    }
                }
            if !notes.isEmpty {
                s += "\n" + notes.map { "- \($0)" }.joined(separator: "\n") + "\n"
            }
            s += "\n"
        }
        return s
    }

    // MARK: Targets

    public static func targets(_ scales: [ScaleResult]) -> [TargetCheck] {
        func find(_ s: Int, _ e: Int) -> ScaleResult? { scales.first { $0.scale.services == s && $0.scale.endpoints == e } }
        let big = find(100_000, 10), small = find(1000, 10), mid = find(10000, 10)
        func sl(_ r: ScaleResult?, _ k: MetricKey) -> Metric? {
            guard let m = r?.result(.sluice)?[k], m.status == .ok else { return nil }
            return m
        }
        var out: [TargetCheck] = []
        func check(_ name: String, _ measured: String?, _ ok: Bool?) {
            guard let measured, let ok else { out.append(TargetCheck(target: name, status: "not measured", measured: "–")); return }
            out.append(TargetCheck(target: name, status: ok ? "met" : "missed", measured: measured))
        }
        let e100 = sl(big, .endpointChange)?.summary
        check("endpoint change p50 ≤ 0.2 ms at 100k×10", e100.map { seconds($0.p50) }, e100.map { $0.p50 <= 0.0002 })
        check("endpoint change p99 ≤ 2 ms at 100k×10", e100.map { seconds($0.p99) }, e100.map { $0.p99 <= 0.002 })
        if let a = e100, let b = sl(small, .endpointChange)?.summary {
            let f = a.p50 / b.p50
            check("flatness p50(100k×10) ≤ 1.5 × p50(1k×10)", String(format: "%.2f×", f) + " (\(seconds(a.p50)) vs \(seconds(b.p50)))", f <= 1.5)
        } else { check("flatness p50(100k×10) ≤ 1.5 × p50(1k×10)", nil, nil) }
        if let mid, let x = mid.ratios[MetricKey.endpointChange.rawValue]?[Implementation.kubeProxyNft.rawValue] {
            let lb = mid.ratioIsLowerBound[MetricKey.endpointChange.rawValue]?[Implementation.kubeProxyNft.rawValue] == true
            check("≥ 1000× faster than the nft baseline at 10k×10 (endpoint change p50)", "\(lb ? "> " : "")\(String(format: "%.0f", x))×", x >= 1000)
        } else { check("≥ 1000× faster than the nft baseline at 10k×10 (endpoint change p50)", nil, nil) }
        let cs = sl(big, .coldStart)?.value
        check("cold start ≤ 5 s at 100k×10", cs.map(seconds), cs.map { $0 <= 5 })
        let mem = sl(big, .memory)?.value
        check("peak RSS ≤ 300 MB at 100k×10", mem.map { String(format: "%.0f MB", $0 / 1e6) }, mem.map { $0 <= 300e6 })
        if let a = sl(big, .connRate)?.value, let b = sl(small, .connRate)?.value {
            check("new-connection rate at 100k within 10 % of 1k", String(format: "%.0f vs %.0f conn/s (%+.1f %%)", a, b, (a / b - 1) * 100), a >= 0.9 * b)
        } else { check("new-connection rate at 100k within 10 % of 1k", nil, nil) }
        if let r = sl(big, .connRate)?.detail?["countersOnOverOff"] {
            check("new-connection rate with connection counters within 5 % of counters off (100k×10)",
                  String(format: "%.3f×", r), r >= 0.95)
        } else { check("new-connection rate with connection counters within 5 % of counters off (100k×10)", nil, nil) }
        engineTargets(big, sl, check)
        return out
    }

    /// Issue 10's engine targets at 100k×10: a single change near the kernel's floor, and a
    /// first sync's compile faster than a text printer.
    private static func engineTargets(_ big: ScaleResult?, _ sl: (ScaleResult?, MetricKey) -> Metric?,
                                      _ check: (String, String?, Bool?) -> Void) {
        let change = sl(big, .endpointChange)
        let kernel = change?.detail?["kernelP50"]
        check("endpoint change p50 ≤ 25 µs at 100k×10, Sluice's share ≤ the kernel's",
              change?.summary.map { p in seconds(p.p50) + (kernel.map { " (kernel \(seconds($0)))" } ?? "") },
              change?.summary.map { p in p.p50 <= 25e-6 && kernel.map { k in p.p50 - k <= k } ?? false })
        let load = sl(big, .loadThroughput)?.value
        let nft = big?.result(.kubeProxyNft)?[.compileThroughput].flatMap { $0.status == .ok ? $0.value : nil }
        check("streamed load ≥ 1M endpoints/s at 100k×10" + (nft == nil ? "" : ", ≥ 2× the nft baseline's rendering"),
              load.map { String(format: "%.2fM endpoints/s", $0 / 1e6) + (nft.map { String(format: " (%.1f× nft)", load! / $0) } ?? "") },
              load.map { l in l >= 1e6 && nft.map { n in l >= 2 * n } ?? true })
    }

    public static func targetsTable(_ t: [TargetCheck]) -> String {
        "| target | measured | status |\n|---|---|---|\n" + t.map { "| \($0.target) | \($0.measured) | \($0.status) |" }.joined(separator: "\n") + "\n"
    }

    // MARK: SVG

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static let colors: [Implementation: String] = [.sluice: "#1f77b4", .kubeProxyNft: "#d62728", .kubeProxyIptables: "#2ca02c"]

    /// Two log-log panels: endpoint-change p50 and cold start against total endpoints.
    public static func svg(_ scales: [ScaleResult]) -> String {
        let panelW = 440.0, panelH = 340.0, w = panelW * 2 + 40, h = panelH + 110
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<rect x=\"0\" y=\"0\" width=\"\(Int(w))\" height=\"\(Int(h))\" fill=\"white\"/>\n"
        let panels: [(MetricKey, String)] = [(.endpointChange, "Single endpoint change, p50 (accept → kernel ACK)"), (.coldStart, "Cold start (empty namespace → programmed)")]
        for (pi, (key, title)) in panels.enumerated() {
            s += panel(scales, key: key, title: title, x0: 20 + Double(pi) * (panelW + 10), y0: 10, w: panelW, h: panelH)
        }
        // Legend.
        var lx = 40.0
        let ly = h - 30
        for impl in Implementation.allCases {
            s += "<line x1=\"\(lx)\" y1=\"\(ly)\" x2=\"\(lx + 24)\" y2=\"\(ly)\" stroke=\"\(colors[impl]!)\" stroke-width=\"2\"/>"
            s += "<circle cx=\"\(lx + 12)\" cy=\"\(ly)\" r=\"3.5\" fill=\"\(colors[impl]!)\"/>"
            s += "<text x=\"\(lx + 30)\" y=\"\(ly + 4)\">\(esc(impl.rawValue))</text>\n"
            lx += 190
        }
        s += "<polygon points=\"\(lx + 8),\(ly - 5) \(lx + 3),\(ly + 4) \(lx + 13),\(ly + 4)\" fill=\"none\" stroke=\"#555\"/>"
        s += "<text x=\"\(lx + 20)\" y=\"\(ly + 4)\">did not finish: drawn at the timeout (a lower bound)</text>\n"
        s += "</svg>\n"
        return s
    }

    static func panel(_ scales: [ScaleResult], key: MetricKey, title: String, x0: Double, y0: Double, w: Double, h: Double) -> String {
        let left = x0 + 60, right = x0 + w - 10, top = y0 + 30, bottom = y0 + h - 40
        struct P { var x: Double; var y: Double; var impl: Implementation; var lowerBound: Bool; var label: String }
        var pts: [P] = []
        for r in scales {
            let x = Double(r.scale.totalEndpoints)
            for res in r.results {
                guard let m = res[key] else { continue }
                if m.status == .ok, let v = m.value, v > 0 {
                    pts.append(P(x: x, y: v, impl: res.implementation, lowerBound: false, label: r.scale.description))
                } else if m.status == .timeout, let t = timeoutValue(m) {
                    pts.append(P(x: x, y: t, impl: res.implementation, lowerBound: true, label: r.scale.description))
                }
            }
        }
        var s = "<g>\n<text x=\"\(x0 + w / 2)\" y=\"\(y0 + 16)\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(esc(title))</text>\n"
        s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(right - left)\" height=\"\(bottom - top)\" fill=\"none\" stroke=\"#888\"/>\n"
        guard !pts.isEmpty else { return s + "<text x=\"\(x0 + w / 2)\" y=\"\(y0 + h / 2)\" text-anchor=\"middle\">no data</text>\n</g>\n" }
        let xmin = floor(log10(pts.map(\.x).min()!)) , xmax = max(xmin + 1, ceil(log10(pts.map(\.x).max()!)))
        let ymin = floor(log10(pts.map(\.y).min()!)), ymax = max(ymin + 1, ceil(log10(pts.map(\.y).max()!)))
        func px(_ x: Double) -> Double { left + (log10(x) - xmin) / (xmax - xmin) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (log10(y) - ymin) / (ymax - ymin) * (bottom - top) }
        for e in Int(xmin)...Int(xmax) {
            let x = left + (Double(e) - xmin) / (xmax - xmin) * (right - left)
            s += "<line x1=\"\(x)\" y1=\"\(top)\" x2=\"\(x)\" y2=\"\(bottom)\" stroke=\"#eee\"/>"
            s += "<text x=\"\(x)\" y=\"\(bottom + 14)\" text-anchor=\"middle\">\(esc(countLabel(pow(10, Double(e)))))</text>\n"
        }
        for e in Int(ymin)...Int(ymax) {
            let y = bottom - (Double(e) - ymin) / (ymax - ymin) * (bottom - top)
            s += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(right)\" y2=\"\(y)\" stroke=\"#eee\"/>"
            s += "<text x=\"\(left - 4)\" y=\"\(y + 4)\" text-anchor=\"end\">\(esc(seconds(pow(10, Double(e)))))</text>\n"
        }
        s += "<text x=\"\((left + right) / 2)\" y=\"\(bottom + 30)\" text-anchor=\"middle\">total endpoints (services × endpoints), log scale</text>\n"
        for impl in Implementation.allCases {
            let ps = pts.filter { $0.impl == impl }.sorted { $0.x < $1.x }
            guard !ps.isEmpty else { continue }
            let c = colors[impl]!
            if ps.count > 1 {
                s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.5\" points=\"\(ps.map { "\(px($0.x)),\(py($0.y))" }.joined(separator: " "))\"/>\n"
            }
            for p in ps {
                let x = px(p.x), y = py(p.y)
                if p.lowerBound {
                    s += "<polygon points=\"\(x),\(y - 6) \(x - 5),\(y + 3) \(x + 5),\(y + 3)\" fill=\"white\" stroke=\"\(c)\" stroke-width=\"1.5\"><title>\(esc("\(impl.rawValue) \(p.label): > \(seconds(p.y))"))</title></polygon>\n"
                } else {
                    s += "<circle cx=\"\(x)\" cy=\"\(y)\" r=\"3.5\" fill=\"\(c)\"><title>\(esc("\(impl.rawValue) \(p.label): \(seconds(p.y))"))</title></circle>\n"
                }
                if impl == .sluice {
                    s += "<text x=\"\(x + 5)\" y=\"\(y + 14)\" fill=\"#555\" font-size=\"10\">\(esc(p.label))</text>\n"
                }
            }
        }
        return s + "</g>\n"
    }

    static func countLabel(_ x: Double) -> String {
        if x >= 1e6 { return "\(Int(x / 1e6))M" }
        if x >= 1e3 { return "\(Int(x / 1e3))k" }
        return "\(Int(x))"
    }

    // MARK: Files

    /// Writes results.json, update-latency.svg and results.md into `dir`.
    public static func write(_ run: RunResult, to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(run).write(to: URL(fileURLWithPath: dir).appendingPathComponent("results.json"))
        try svg(run.scales).write(toFile: dir + "/update-latency.svg", atomically: true, encoding: .utf8)
        try (table(run.scales) + "\n" + targetsTable(run.targets)).write(toFile: dir + "/results.md", atomically: true, encoding: .utf8)
    }

    /// Machine facts for the record.
    public static func runInfo(command: String) -> RunInfo {
        func sh(_ a: [String]) -> String { ((try? runProc(a, timeout: 20))?.stdout ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("model name") }.map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "?"
        let mem = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8))?.split(separator: "\n").first { $0.hasPrefix("MemTotal") }
            .flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        let df = DateFormatter()
        df.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        df.timeZone = TimeZone(identifier: "UTC")
        return RunInfo(date: df.string(from: Date()), kernel: sh(["uname", "-r"]), machine: cpu,
                       cpus: ProcessInfo.processInfo.activeProcessorCount, memoryBytes: mem * 1024,
                       nft: sh(["nft", "--version"]), iptables: sh(["iptables", "--version"]),
                       swift: sh(["swift", "--version"]).split(separator: "\n").first.map(String.init) ?? "?", command: command)
    }
}
