import SluiceIR
import SluiceModel

/// The kernel's traffic counters (`service-traffic`, `--traffic-counters`) read back and
/// named: packets and bytes of every packet of a DNATed connection, both directions, per
/// service address and per service port. Keys are named as `ConnectionCounts` names them.
public struct TrafficCounts: Sendable {
    /// Packets and bytes per service port, summed over its addresses and NodePorts.
    public var services: [ServicePortName: ElementCounter] = [:]
    /// Packets and bytes per destination tuple (address, protocol, port), as counted.
    public var tuples: [ConnectionCounts.Tuple: ElementCounter] = [:]

    public init() {}

    /// Reads one family's `service-traffic` set of Sluice's table with `read` (a netlink
    /// socket's or a dataplane's `readCounters`: table family, table name, set) and adds it.
    public mutating func read(_ family: IPFamily, services names: ServicePortNames = ServicePortNames([]),
                              _ read: (Family, String, SetDecl) throws -> [[Datum]: ElementCounter]) rethrows {
        let layout = Layout(family)
        add(try read(layout.family, Layout.tableName, layout.trafficCounters), services: names)
    }

    /// Adds one family's counters; `services` names the tuples.
    public mutating func add(_ counters: [[Datum]: ElementCounter], services names: ServicePortNames) {
        for (key, c) in counters {
            guard let t = ConnectionCounts.Tuple(key) else { continue }
            tuples[t, default: .zero] += c
            if let name = names.name(t) { services[name, default: .zero] += c }
        }
    }
}
