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

    @Option(help: "What to decode: yaml, json, api, watch (comma-separated; watch: splitting a watch stream into events only).")
    var formats: String = "yaml,json,api"

    func run() throws {
        let corpus = DecodeCorpus(endpoints: endpoints)
        for format in formats.split(separator: ",") {
            switch format {
            case "yaml": report("yaml", measureManifests(corpus, ext: "yaml") { corpus.yamlFile(first: $0, count: $1) })
            case "json": report("json", measureManifests(corpus, ext: "json") { corpus.jsonFile(first: $0, count: $1) })
            case "api": report("api", measureAPILists(corpus))
            case "watch": report("watch", measureWatchSplitting(corpus))
            default: throw ValidationError("unknown format \(format)")
            }
        }
    }

    struct Measurement {
        var bytes = 0
        var objects = 0
        var seconds = 0.0
        /// CPU time of the decoding thread: what the decoding costs whatever else the machine runs.
        var cpuSeconds = 0.0

        mutating func time<T>(_ body: () throws -> T) rethrows -> T {
            let (start, cpuStart) = (ContinuousClock.now, threadCPUSeconds())
            let result = try body()
            cpuSeconds += threadCPUSeconds() - cpuStart
            seconds += (ContinuousClock.now - start).inSeconds
            return result
        }
    }

    func report(_ label: String, _ m: Measurement) {
        let mb = Double(m.bytes) / 1e6
        print("\(label): \(m.objects) objects, \(String(format: "%.1f", mb)) MB in "
              + "\(String(format: "%.3f", m.seconds)) s wall = \(String(format: "%.1f", mb / m.seconds)) MB/s; "
              + "\(String(format: "%.3f", m.cpuSeconds)) s CPU = \(String(format: "%.1f", mb / m.cpuSeconds)) MB per CPU-second")
    }

    /// Files of `perFile` services through `ManifestLoader.parse`, as the daemon's source reads them.
    func measureManifests(_ corpus: DecodeCorpus, ext: String, file: (Int, Int) -> String) -> Measurement {
        var m = Measurement()
        var diagnostics = 0
        for first in stride(from: 0, to: services, by: perFile) {
            let text = file(first, min(perFile, services - first))
            m.bytes += text.utf8.count
            let result = m.time { ManifestLoader().parse(text: text, file: "bench-\(first).\(ext)") }
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
            let (svc, eps) = m.time {
                (try? KubeAPIClient.decodeListPage(Service.self, from: pages[0]),
                 try? KubeAPIClient.decodeListPage(EndpointSlice.self, from: pages[1]))
            }
            m.objects += (svc?.items.count ?? 0) + (eps?.items.count ?? 0)
        }
        return m
    }

    /// A watch-list stream cut into its events (`JSONStreamSplitter`) as it arrives in 16 KB
    /// buffers; the events are not decoded.
    func measureWatchSplitting(_ corpus: DecodeCorpus) -> Measurement {
        var m = Measurement()
        for first in stride(from: 0, to: services, by: perFile) {
            let stream = Array(corpus.watchEvents(first: first, count: min(perFile, services - first)).utf8)
            m.bytes += stream.count
            var splitter = JSONStreamSplitter()
            m.objects += m.time {
                var values = 0
                for chunk in stride(from: 0, to: stream.count, by: 16_384) {
                    values += (try? splitter.feed(stream[chunk..<min(chunk + 16_384, stream.count)]).count) ?? 0
                }
                return values
            }
        }
        return m
    }
}

/// CPU time consumed by the calling thread.
func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
