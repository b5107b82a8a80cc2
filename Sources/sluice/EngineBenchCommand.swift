import ArgumentParser
import Foundation
import SluiceBench
import SluiceCompiler
import SluiceIR
import SluiceModel

/// `sluice engine-bench` (hidden): the daemon's in-process path without the kernel, phase by
/// phase, on `sluice bench --daemon`'s cluster: the objects decoded from the API's JSON,
/// staged into `ProxyEngine` in parts of 500 as the first lists arrive, the rest planned,
/// the table compiled as the streamed cold start (transactions counted, then dropped), then
/// single endpoint changes and one burst through `ProxyEngine.apply`. No netlink: what is
/// left of `sluice run`'s first sync and of its per-change cost is the kernel's and the
/// transport's (see `sluice bench --daemon`). Run it under `perf record` or callgrind to see
/// where the daemon's own time goes.
struct EngineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine-bench",
        abstract: "Measure the daemon's planning and compiling phases in-process (build with -c release).",
        shouldDisplay: false)

    @Option(help: "Services (each with one EndpointSlice).")
    var services: Int = 10_000

    @Option(help: "Endpoints per EndpointSlice.")
    var endpoints: Int = 10

    @Option(help: "Objects per staged part (the daemon's list parts).")
    var part: Int = 500

    @Option(help: "Single endpoint changes applied one at a time.")
    var changes: Int = 2000

    @Option(help: "Endpoint changes applied in one batch.")
    var burst: Int = 2000

    func validate() throws {
        guard services > 0, endpoints > 0, part > 0, changes >= 0, burst >= 0 else {
            throw ValidationError("--services, --endpoints and --part must be positive; --changes and --burst not negative")
        }
    }

    func run() throws {
        var cluster = DaemonCluster(scale: Scale(services: services, endpoints: endpoints))
        var phases = Phases()
        // As the daemon fed by the API server holds it: no Pods, so no selectors kept.
        var engine = ProxyEngine(options: NodeOptions(nodeName: DaemonCluster.nodeName), plansFromPods: false)
        let context = try phases.time("decode node and ServiceCIDR") { try Self.contextObjects() }
        phases.time("stage node and ServiceCIDR") { _ = engine.stage(context) }
        for first in stride(from: 0, to: services, by: part) {
            let range = first..<min(services, first + part)
            let objects = try phases.time("decode Services") { try Self.decode(range.map { cluster.serviceJSON($0) }, as: .service) }
            phases.time("stage Services") { _ = engine.stage(objects) }
        }
        for first in stride(from: 0, to: services, by: part) {
            let range = first..<min(services, first + part)
            let objects = try phases.time("decode EndpointSlices") { try Self.decode(range.map { cluster.sliceJSON($0) }, as: .endpointSlice) }
            phases.time("stage EndpointSlices") { _ = engine.stage(objects) }
        }
        phases.time("plan the rest") { _ = engine.apply([:], loadNow: false) }
        var elements = 0, transactions = 0
        phases.time("compile (streamed cold start, no kernel)") {
            _ = engine.loadStreamed(maxElementsPerTransaction: 50_000) { _, tx in
                transactions += 1
                for op in tx.operations { if case .addElements(_, _, _, let e) = op { elements += e.count } }
            }
        }
        print("first sync: \(elements) elements in \(transactions) transactions; RSS \(Self.status("VmRSS")) MB, peak \(Self.status("VmHWM")) MB")
        phases.print()

        var rng = SystemRandomNumberGenerator()
        var single: [Double] = []
        var operations = 0
        for _ in 0..<changes {
            let i = Int.random(in: 0..<services, using: &rng)
            _ = cluster.change(service: i)
            let objects = try Self.decode([cluster.sliceJSON(i)], as: .endpointSlice)
            let start = ContinuousClock.now
            let outcome = engine.apply(objects)
            single.append((ContinuousClock.now - start).inSeconds)
            operations += outcome.transaction.operations.count
        }
        if !single.isEmpty {
            single.sort()
            let p = { (q: Double) in single[min(single.count - 1, Int(Double(single.count) * q))] * 1e6 }
            print(String(format: "single change (ProxyEngine.apply, n=%d): p50 %.1f µs, p99 %.1f µs; %.1f operations each",
                         single.count, p(0.5), p(0.99), Double(operations) / Double(single.count)))
        }
        if burst > 0 {
            var batch = ObjectChanges()
            for _ in 0..<burst {
                let i = Int.random(in: 0..<services, using: &rng)
                _ = cluster.change(service: i)
                batch.merge(try Self.decode([cluster.sliceJSON(i)], as: .endpointSlice)) { $1 }
            }
            let start = ContinuousClock.now
            let outcome = engine.apply(batch)
            let s = (ContinuousClock.now - start).inSeconds
            print(String(format: "burst of %d changes (%d slices) in one apply: %.1f ms, %.1f µs per change, %d operations",
                         burst, batch.count, s * 1e3, s * 1e6 / Double(burst), outcome.transaction.operations.count))
        }
        print("end: RSS \(Self.status("VmRSS")) MB, peak \(Self.status("VmHWM")) MB")
    }

    /// Wall and thread-CPU time per named phase (`DecodeBench.Measurement`), in first-seen order.
    struct Phases {
        var order: [String] = []
        var measured: [String: DecodeBench.Measurement] = [:]

        mutating func time<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            if measured[name] == nil { order.append(name) }
            return try measured[name, default: DecodeBench.Measurement()].time(body)
        }

        func print() {
            for name in order {
                let m = measured[name]!
                Swift.print("  " + name.padding(toLength: 44, withPad: " ", startingAt: 0)
                            + String(format: "%8.3f s wall %8.3f s CPU", m.seconds, m.cpuSeconds))
            }
        }
    }

    static func decode(_ texts: [String], as kind: ProxyObjectKind) throws -> ObjectChanges {
        var out = ObjectChanges()
        for text in texts {
            let bytes = Array(text.utf8)
            let object: ProxyObject? = switch kind {
            case .service: JSONReader.read(bytes) { try Service(json: &$0) }.map { .service($0) }
            case .endpointSlice: JSONReader.read(bytes) { try EndpointSlice(json: &$0) }.map { .endpointSlice($0) }
            default: nil
            }
            guard let object else { throw ValidationError("engine-bench: could not read \(kind) \(text.prefix(80))") }
            out[object.key] = SourcedObject(object)
        }
        return out
    }

    static func contextObjects() throws -> ObjectChanges {
        let node = try JSONDecoder().decode(Node.self, from: Data(DaemonCluster.nodeJSON.utf8))
        let cidr = try JSONDecoder().decode(ServiceCIDR.self, from: Data(DaemonCluster.serviceCIDRJSON.utf8))
        return [ProxyObject.node(node).key: SourcedObject(.node(node)),
                ProxyObject.serviceCIDR(cidr).key: SourcedObject(.serviceCIDR(cidr))]
    }

    /// A `/proc/self/status` field in MB.
    static func status(_ field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0) / 1024
        }
        return 0
    }
}
