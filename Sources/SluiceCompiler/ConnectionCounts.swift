import SluiceIR
import SluiceModel

/// The kernel's connection counters (`service-connections`, `endpoint-connections`) read
/// back and named: what `/metrics` and `sluice top` show.
///
/// A `service-connections` key is the connection's original destination. It names a service
/// port when it is one of the port's ClusterIP, externalIPs or LoadBalancer IPs with its
/// port; any other address with a NodePort names the port that owns the NodePort (the node
/// address the client used). Keys of deleted services name nothing and are left out.
public struct ConnectionCounts: Sendable {
    /// Connections per service port, summed over its addresses and NodePorts.
    public var services: [ServicePortName: UInt64] = [:]
    /// Connections per destination tuple (address, protocol, port), as the kernel counts them.
    public var tuples: [Tuple: UInt64] = [:]
    /// Connections per endpoint tuple (after DNAT).
    public var endpoints: [Tuple: UInt64] = [:]

    /// `address:port/PROTO`.
    public struct Tuple: Sendable, Hashable, Comparable, CustomStringConvertible {
        public var address: IPAddress
        public var proto: L4Protocol
        public var port: UInt16

        init?(_ key: [Datum]) {
            guard key.count == 3, let a = IPAddress(datum: key[0]), case .proto(let p) = key[1],
                  let proto = L4Protocol.allCases.first(where: { $0.number == p }), case .port(let port) = key[2] else { return nil }
            address = a
            self.proto = proto
            self.port = port
        }

        public var description: String {
            (address.family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)") + "/\(proto.rawValue)"
        }
        public static func < (a: Tuple, b: Tuple) -> Bool { (a.address.description, a.port, a.proto) < (b.address.description, b.port, b.proto) }
    }

    public init() {}

    /// Reads one family's two counter sets of Sluice's table with `read` (a netlink socket's
    /// or a dataplane's `readCounters`: table family, table name, set) and adds them.
    public mutating func read(_ family: IPFamily, services names: ServicePortNames = ServicePortNames([]),
                              _ read: (Family, String, SetDecl) throws -> [[Datum]: ElementCounter]) rethrows {
        let layout = Layout(family)
        let service = try read(layout.family, Layout.tableName, layout.connectionCounters(Layout.serviceConnections))
        let endpoint = try read(layout.family, Layout.tableName, layout.connectionCounters(Layout.endpointConnections))
        add(service: service, endpoint: endpoint, services: names)
    }

    /// Adds one family's counters; `services` names the tuples.
    public mutating func add(service: [[Datum]: ElementCounter], endpoint: [[Datum]: ElementCounter],
                             services names: ServicePortNames) {
        for (key, c) in service {
            guard let t = Tuple(key) else { continue }
            tuples[t, default: 0] += c.packets
            if let name = names.name(t) { services[name, default: 0] += c.packets }
        }
        for (key, c) in endpoint {
            if let t = Tuple(key) { endpoints[t, default: 0] += c.packets }
        }
    }
}

/// Which service port a destination tuple belongs to, built from the accepted Services.
public struct ServicePortNames: Sendable {
    private var addresses: [ConnectionCounts.Tuple: ServicePortName] = [:]
    private var nodePorts: [L4Protocol: [UInt16: ServicePortName]] = [:]

    public init(_ services: some Sequence<ValidatedService>) {
        for svc in services {
            let ips = svc.clusterIPs + svc.externalIPs + svc.loadBalancerVIPs
            for port in svc.ports {
                let name = ServicePortName(service: svc.name, port: port.name, proto: port.proto)
                for ip in ips {
                    addresses[ConnectionCounts.Tuple(address: ip, proto: port.proto, port: port.port)] = name
                }
                if let np = port.nodePort { nodePorts[port.proto, default: [:]][np] = name }
            }
        }
    }

    /// From compiled plans (`sluice top --source`).
    public init(plans: some Sequence<ServicePortPlan>) {
        for p in plans {
            for ip in [p.clusterIP] + p.externalIPs + p.loadBalancerIPs {
                addresses[ConnectionCounts.Tuple(address: ip, proto: p.name.proto, port: p.port)] = p.name
            }
            if let np = p.nodePort { nodePorts[p.name.proto, default: [:]][np] = p.name }
        }
    }

    public func name(_ t: ConnectionCounts.Tuple) -> ServicePortName? {
        addresses[t] ?? nodePorts[t.proto]?[t.port]
    }
}

extension ConnectionCounts.Tuple {
    public init(address: IPAddress, proto: L4Protocol, port: UInt16) {
        self.address = address
        self.proto = proto
        self.port = port
    }
}

extension IPAddress {
    /// The address a `Datum` holds; nil for prefixes and non-addresses.
    public init?(datum: Datum) {
        switch datum {
        case .ipv4(let v): self = .v4(v)
        case .ipv6(let hi, let lo): self = .v6(hi, lo)
        default: return nil
        }
    }
}
