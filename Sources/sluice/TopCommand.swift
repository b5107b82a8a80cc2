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

    /// Both families' counters; a family without Sluice's table (or without counters) adds nothing.
    func read(_ socket: NetlinkSocket, _ names: ServicePortNames?) throws -> ConnectionCounts {
        var counts = ConnectionCounts()
        for family in IPFamily.allCases {
            do {
                try counts.read(family, services: names ?? ServicePortNames([])) { try socket.readCounters($0, $1, set: $2) }
            } catch let e as NetlinkError where e.isNotFound {
                continue
            }
        }
        return counts
    }
}

/// The text `sluice top` prints: services (named, or by address) and endpoints, busiest first.
struct TopTable {
    let now: ConnectionCounts
    let before: ConnectionCounts?
    let seconds: Double
    let limit: Int
    let named: Bool

    var text: String {
        var out = ""
        if named {
            out += section("SERVICE PORT", now.services.map { ("\($0.key) (\($0.key.proto.rawValue))", $0.value, before?.services[$0.key]) })
            out += "\n"
        }
        out += section("SERVICE ADDRESS", now.tuples.map { ($0.key.description, $0.value, before?.tuples[$0.key]) })
        out += "\n" + section("ENDPOINT", now.endpoints.map { ($0.key.description, $0.value, before?.endpoints[$0.key]) })
        return out
    }

    /// Rows `name  conn/s  total`, by rate then total.
    func section(_ title: String, _ rows: [(String, UInt64, UInt64?)]) -> String {
        let rated = rows.map { (name: $0.0, total: $0.1, rate: rate($0.1, $0.2)) }
            .sorted { ($0.rate, $0.total, $1.name) > ($1.rate, $1.total, $0.name) }
        let width = max(title.count, rated.prefix(limit).map(\.name.count).max() ?? 0)
        var out = pad(title, width) + "  " + pad("CONN/S", 10, left: true) + "  " + pad("TOTAL", 12, left: true) + "\n"
        for r in rated.prefix(limit) {
            let shown = before == nil ? "-" : String(format: "%.1f", r.rate)
            out += pad(r.name, width) + "  " + pad(shown, 10, left: true) + "  " + pad("\(r.total)", 12, left: true) + "\n"
        }
        if rated.isEmpty { out += "(no connections counted)\n" }
        return out
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
