import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import SluiceBench
import Testing

/// CI smoke run of `sluice bench`: about 100 services, a few samples, both baselines, so the
/// harness keeps working. It checks that the JSON has every field and that the chart is
/// valid SVG. Performance is never asserted here. Must run as root: it fails, not skips,
/// otherwise.
@Suite("sluice bench smoke", .serialized)
struct BenchSmokeTests {
    /// The `sluice` binary next to the test bundle (SwiftPM builds it with the tests), so the
    /// Sluice side runs in its own process as in `sluice bench`; nil falls back to in-process.
    static func sluiceBinary() -> String? {
        var dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("sluice").path
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir), !isDir.boolValue,
               FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    @Test("smoke run: every metric for Sluice and both baselines, JSON complete, SVG valid")
    func smoke() throws {
        try #require(getuid() == 0, "sluice bench tests must run as root (CI runs them as root; they are never skipped)")
        for tool in ["ip", "nft", "iptables-restore", "nsenter", "python3"] {
            let r = try runProc(["sh", "-c", "command -v \(tool)"], timeout: 10)
            try #require(r.ok, "missing tool \(tool)")
        }
        let options = BenchOptions(scales: [Scale(services: 100, endpoints: 3)], samples: 5, baselineSamples: 3, timeout: 60,
                                   churnSeconds: 0.5, churnProbeSeconds: 0.2, churnMaxLag: 1, baselineChurn: true, connSeconds: 0.3)
        let runner = BenchRunner(options: options, workerExecutable: Self.sluiceBinary(), progress: ProgressReporter(enabled: false))
        let scales = runner.run()
        cleanupAllNamespaces()
        let run = RunResult(info: Report.runInfo(command: "swift test"), options: options, scales: scales, targets: Report.targets(scales))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-bench-smoke-\(randomTag())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Report.write(run, to: dir)

        // JSON: every implementation has every metric, with its fields.
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/results.json"))) as? [String: Any])
        for key in ["info", "options", "scales", "targets"] { #expect(json[key] != nil, "results.json lacks \(key)") }
        let scaleList = try #require(json["scales"] as? [[String: Any]])
        #expect(scaleList.count == 1)
        let results = try #require(scaleList.first?["results"] as? [[String: Any]])
        #expect(Set(results.compactMap { $0["implementation"] as? String }) == ["sluice", "kube-proxy-nft", "kube-proxy-iptables"])
        #expect(scaleList.first?["ratios"] is [String: Any])
        for r in results {
            let impl = r["implementation"] as? String ?? "?"
            let metrics = try #require(r["metrics"] as? [String: [String: Any]], "\(impl) has no metrics")
            for k in MetricKey.allCases {
                let m = try #require(metrics[k.rawValue], "\(impl) lacks \(k.rawValue)")
                let status = m["status"] as? String
                #expect(m["unit"] is String, "\(impl) \(k.rawValue) lacks unit")
                // Everything must have run at this size (memory is Sluice-only).
                let expected = ([.memory, .loadThroughput].contains(k) && impl != "sluice") ? "n/a" : "ok"
                #expect(status == expected, "\(impl) \(k.rawValue): \(status ?? "nil") \(m["note"] ?? "")")
                guard status == "ok" else { continue }
                #expect(m["value"] is Double || m["value"] is Int, "\(impl) \(k.rawValue) lacks value")
                switch k {
                case .endpointChange, .serviceAdd, .serviceDelete, .scaleUp, .scaleDown:
                    let s = try #require(m["summary"] as? [String: Any], "\(impl) \(k.rawValue) lacks summary")
                    for f in ["n", "min", "p50", "p99", "max", "mean"] { #expect(s[f] != nil, "\(impl) \(k.rawValue) summary lacks \(f)") }
                    let samples = m["samples"] as? [Any] ?? []
                    let want = impl == "sluice" ? options.samples : options.baselineSamples
                    #expect(samples.count == want, "\(impl) \(k.rawValue): \(samples.count) samples")
                case .churn:
                    #expect((m["churnSteps"] as? [Any])?.isEmpty == false, "\(impl) churn lacks steps")
                default:
                    break
                }
            }
        }

        // SVG: well-formed XML with an <svg> root.
        let svg = try Data(contentsOf: URL(fileURLWithPath: dir + "/update-latency.svg"))
        let parser = XMLParser(data: svg)
        let root = RootElement()
        parser.delegate = root
        #expect(parser.parse(), "update-latency.svg is not well-formed XML: \(String(describing: parser.parserError))")
        #expect(root.name == "svg")
        #expect(FileManager.default.fileExists(atPath: dir + "/results.md"))
        #expect(!Report.table(scales).isEmpty)
    }

    @Test("order statistics")
    func summary() throws {
        let s = try #require(Summary((1...200).map(Double.init)))
        #expect(s.n == 200 && s.min == 1 && s.p50 == 100 && s.p99 == 198 && s.max == 200)
        #expect(Summary([]) == nil)
    }
}

final class RootElement: NSObject, XMLParserDelegate {
    var name: String?
    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        if name == nil { name = elementName }
    }
}
