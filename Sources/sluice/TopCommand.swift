import ArgumentParser
import Foundation
import SluiceCompiler
import SluiceIR
import SluiceModel
import SluiceNetlink

/// `sluice top`: the busiest services and endpoints of this node, from the kernel's
/// connection counters.
struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the busiest services and endpoints, from the kernel's connection counters.",
        discussion: """
        Reads the `service-connections` and `endpoint-connections` sets of Sluice's tables over \
        netlink (nothing else is needed on the node) and prints new connections per second and \
        in total, busiest first, refreshed every --interval seconds.

        A service address is the destination a client used (a ClusterIP, external or load \
        balancer IP, or a node address with a NodePort). With --source, addresses are named by \
        the Services in those manifests.

        When the tables count traffic (`sluice run --traffic-counters`: the `service-traffic` \
        set), the service tables also show packets and bytes per second of the services' \
        connections, both directions (totals with --interval 0).

        --once prints one table and exits: with --interval 0 the totals only, else the rates \
        over one interval.
        """)

    @Option(name: .customLong("netns"), help: "Read this named network namespace.", completion: .networkNamespaces)
    var netns: String?

    @Flag(help: "Print one table and exit.")
    var once = false

    @Option(help: "Seconds between readings (rates are over this interval).")
    var interval: Double = 2

    @Option(help: "Rows per table.")
    var limit: Int = 20

    @Option(name: .customLong("source"), help: "Manifests whose Services name the addresses (repeatable).", completion: .file())
    var sources: [String] = []

    @OptionGroup var node: NodeOptionArguments

    func validate() throws {
        guard interval >= 0 else { throw ValidationError("--interval must be 0 or more seconds") }
        guard interval > 0 || once else { throw ValidationError("--interval 0 needs --once") }
        guard limit > 0 else { throw ValidationError("--limit must be positive") }
    }

    func run() throws {
        let socket = try NetlinkSocket(namespace: netns)
        let names = sources.isEmpty ? nil : ServicePortNames(plans: Pipeline.compile(sources: sources, flags: node.flags).plan.families.flatMap(\.servicePorts))
        var previous = try read(socket, names)
        if once && interval == 0 {
            print(TopTable(now: previous, before: nil, seconds: 0, limit: limit, named: names != nil).text)
            return
        }
        while true {
            Thread.sleep(forTimeInterval: interval)
            let now = try read(socket, names)
            let table = TopTable(now: now, before: previous, seconds: interval, limit: limit, named: names != nil).text
            if once {
                print(table)
                return
            }
            FileHandle.standardOutput.write(Data(("\u{1B}[H\u{1B}[2J" + table).utf8))
            previous = now
        }
    }

    /// Both families' counters; a family without Sluice's table (or without counters) adds
    /// nothing. Traffic is nil when no family has the `service-traffic` set.
    func read(_ socket: NetlinkSocket, _ names: ServicePortNames?) throws -> TopReading {
        var reading = TopReading()
        let names = names ?? ServicePortNames([])
        for family in IPFamily.allCases {
            do {
                try reading.connections.read(family, services: names) { try socket.readCounters($0, $1, set: $2) }
            } catch let e as NetlinkError where e.isNotFound {
                continue
            }
            do {
                var traffic = reading.traffic ?? TrafficCounts()
                try traffic.read(family, services: names) { try socket.readCounters($0, $1, set: $2) }
                reading.traffic = traffic
            } catch let e as NetlinkError where e.isNotFound {
                continue
            }
        }
        return reading
    }
}

/// One reading of the kernel's counters for `sluice top`: connections, and packets and bytes
/// when the tables count traffic (`--traffic-counters`).
struct TopReading {
    var connections = ConnectionCounts()
    var traffic: TrafficCounts?
}

/// The text `sluice top` prints: services (named, or by address) and endpoints, busiest first.
/// With traffic counters the service tables gain `PKT/S` and `BYTE/S` columns (`PACKETS` and
/// `BYTES` totals without a previous reading).
struct TopTable {
    let now: TopReading
    let before: TopReading?
    let seconds: Double
    let limit: Int
    let named: Bool

    /// One row: connection totals now and before, and traffic now and before.
    struct Row {
        var name: String
        var total: UInt64
        var previous: UInt64?
        var traffic: ElementCounter? = nil
        var previousTraffic: ElementCounter? = nil
    }

    var text: String {
        var out = ""
        if named {
            out += section("SERVICE PORT", rows(now.connections.services, before?.connections.services, now.traffic?.services,
                                                before?.traffic?.services) { "\($0) (\($0.proto.rawValue))" })
            out += "\n"
        }
        out += section("SERVICE ADDRESS", rows(now.connections.tuples, before?.connections.tuples, now.traffic?.tuples,
                                               before?.traffic?.tuples) { $0.description })
        let endpoints = now.connections.endpoints.map { Row(name: $0.key.description, total: $0.value, previous: before?.connections.endpoints[$0.key]) }
        out += "\n" + section("ENDPOINT", endpoints, traffic: false)
        return out
    }

    /// Rows for every key with connections or traffic.
    func rows<Key: Hashable>(_ conns: [Key: UInt64], _ previous: [Key: UInt64]?, _ traffic: [Key: ElementCounter]?,
                             _ previousTraffic: [Key: ElementCounter]?, name: (Key) -> String) -> [Row] {
        Set(conns.keys).union(traffic.map { Array($0.keys) } ?? []).map { k in
            Row(name: name(k), total: conns[k] ?? 0, previous: previous?[k], traffic: traffic.map { $0[k] ?? .zero },
                previousTraffic: previousTraffic?[k])
        }
    }

    /// Rows `name  conn/s  total [pkt/s  byte/s | packets  bytes]`, by rate then total.
    func section(_ title: String, _ rows: [Row], traffic: Bool? = nil) -> String {
        let showTraffic = traffic ?? (now.traffic != nil)
        let rated = rows.map { (row: $0, rate: rate($0.total, $0.previous)) }
            .sorted { ($0.rate, $0.row.total, $1.row.name) > ($1.rate, $1.row.total, $0.row.name) }
        let width = max(title.count, rated.prefix(limit).map(\.row.name.count).max() ?? 0)
        var out = pad(title, width) + "  " + pad("CONN/S", 10, left: true) + "  " + pad("TOTAL", 12, left: true)
        if showTraffic { out += before == nil ? trafficColumns("PACKETS", "BYTES") : trafficColumns("PKT/S", "BYTE/S") }
        out += "\n"
        for r in rated.prefix(limit) {
            let shown = before == nil ? "-" : String(format: "%.1f", r.rate)
            out += pad(r.row.name, width) + "  " + pad(shown, 10, left: true) + "  " + pad("\(r.row.total)", 12, left: true)
            if showTraffic { out += trafficCells(r.row) }
            out += "\n"
        }
        if rated.isEmpty { out += "(no connections counted)\n" }
        return out
    }

    func trafficColumns(_ packets: String, _ bytes: String) -> String {
        "  " + pad(packets, 12, left: true) + "  " + pad(bytes, 14, left: true)
    }

    /// Packet and byte rates over the interval, or totals without a previous reading.
    func trafficCells(_ row: Row) -> String {
        let t = row.traffic ?? .zero
        guard before != nil else { return trafficColumns("\(t.packets)", "\(t.bytes)") }
        let p = rate(t.packets, row.previousTraffic?.packets ?? 0), b = rate(t.bytes, row.previousTraffic?.bytes ?? 0)
        return trafficColumns(String(format: "%.1f", p), String(format: "%.1f", b))
    }

    func rate(_ total: UInt64, _ previous: UInt64?) -> Double {
        guard before != nil, seconds > 0 else { return 0 }
        // A counter that went down was re-created (table rebuilt): count from zero.
        let base = previous.map { $0 <= total ? $0 : 0 } ?? 0
        return Double(total - base) / seconds
    }

    func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, n - s.count))
        return left ? fill + s : s + fill
    }
}
