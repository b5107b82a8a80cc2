import ArgumentParser
import Foundation
import SluiceBench
import SluiceKube
import SluiceModel

/// `sluice decode-bench` (hidden): decoding throughput of manifest files (YAML, JSON) and of
/// API list pages, on synthetic objects generated in memory. Only decoding is timed.
struct DecodeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode-bench",
        abstract: "Measure manifest and API-list decoding throughput (build with -c release).",
        shouldDisplay: false)

    @Option(help: "Services (each with one EndpointSlice).")
    var services: Int = 10_000

    @Option(help: "Endpoints per EndpointSlice.")
    var endpoints: Int = 10

    @Option(help: "Services per manifest file or list page.")
    var perFile: Int = 500

    @Option(help: "What to decode: yaml, json, api (comma-separated).")
    var formats: String = "yaml,json,api"

    func run() throws {
        let corpus = DecodeCorpus(endpoints: endpoints)
        for format in formats.split(separator: ",") {
            switch format {
            case "yaml": report("yaml", measureManifests(corpus, ext: "yaml") { corpus.yamlFile(first: $0, count: $1) })
            case "json": report("json", measureManifests(corpus, ext: "json") { corpus.jsonFile(first: $0, count: $1) })
            case "api": report("api", measureAPILists(corpus))
            default: throw ValidationError("unknown format \(format)")
            }
        }
    }

    struct Measurement {
        var bytes = 0
        var objects = 0
        var seconds = 0.0
    }

    func report(_ label: String, _ m: Measurement) {
        let mbps = Double(m.bytes) / 1e6 / m.seconds
        print("\(label): \(m.objects) objects, \(String(format: "%.1f", Double(m.bytes) / 1e6)) MB in "
              + "\(String(format: "%.3f", m.seconds)) s = \(String(format: "%.1f", mbps)) MB/s")
    }

    /// Files of `perFile` services through `ManifestLoader.parse`, as the daemon's source reads them.
    func measureManifests(_ corpus: DecodeCorpus, ext: String, file: (Int, Int) -> String) -> Measurement {
        var m = Measurement()
        var diagnostics = 0
        for first in stride(from: 0, to: services, by: perFile) {
            let text = file(first, min(perFile, services - first))
            m.bytes += text.utf8.count
            let start = ContinuousClock.now
            let result = ManifestLoader().parse(text: text, file: "bench-\(first).\(ext)")
            m.seconds += seconds(ContinuousClock.now - start)
            m.objects += result.objects.count
            diagnostics += result.diagnostics.count
        }
        if diagnostics > 0 { print("\(ext): \(diagnostics) diagnostics") }
        return m
    }

    /// Service and EndpointSlice list pages through the API client's decoder.
    func measureAPILists(_ corpus: DecodeCorpus) -> Measurement {
        var m = Measurement()
        for first in stride(from: 0, to: services, by: perFile) {
            let count = min(perFile, services - first)
            let pages = [Data(corpus.serviceListPage(first: first, count: count).utf8),
                         Data(corpus.sliceListPage(first: first, count: count).utf8)]
            m.bytes += pages.reduce(0) { $0 + $1.count }
            let start = ContinuousClock.now
            let svc = try? KubeAPIClient.decodeListPage(Service.self, from: pages[0])
            let eps = try? KubeAPIClient.decodeListPage(EndpointSlice.self, from: pages[1])
            m.seconds += seconds(ContinuousClock.now - start)
            m.objects += (svc?.items.count ?? 0) + (eps?.items.count ?? 0)
        }
        return m
    }

    func seconds(_ d: Duration) -> Double {
        let (s, atto) = d.components
        return Double(s) + Double(atto) / 1e18
    }
}
