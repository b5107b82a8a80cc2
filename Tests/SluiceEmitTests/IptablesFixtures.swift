import SluiceEmit
import SluiceModel

/// Plan builders and script readers shared by the iptables emitter tests.
enum IptFix {
    static func ip(_ s: String) -> IPAddress { IPAddress(s)! }
    static func cidr(_ s: String) -> CIDR { CIDR(s)! }

    static func ep(_ s: String, _ port: UInt16 = 80, weight: UInt32 = 1) -> WeightedEndpoint {
        WeightedEndpoint(ip: ip(s), port: port, weight: weight)
    }

    static func name(_ ns: String, _ svc: String, _ port: String = "p80", _ proto: L4Protocol = .tcp) -> ServicePortName {
        ServicePortName(service: ServiceName(namespace: ns, name: svc), port: port, proto: proto)
    }

    /// An IPv4 node context like upstream's fake proxier: pod CIDR 10.0.0.0/8 detector,
    /// NodePorts on every local address, node IP 192.168.0.2.
    static func context(_ family: IPFamily = .ipv4,
                        detector: LocalTrafficDetector? = nil,
                        nodePortAddresses: NodePortAddresses = .all,
                        nodeIPs: [IPAddress]? = nil,
                        masqueradeAll: Bool = false) -> FamilyContext {
        let v6 = family == .ipv6
        return FamilyContext(
            family: family, nodeName: "test-node",
            localDetector: detector ?? .cidrs([cidr(v6 ? "fd00:10::/64" : "10.0.0.0/8")]),
            nodePortAddresses: nodePortAddresses,
            nodeIPs: nodeIPs ?? [ip(v6 ? "fd00:192::2" : "192.168.0.2")],
            masqueradeAll: masqueradeAll,
            serviceCIDRs: [cidr(v6 ? "fd00:172::/112" : "172.30.0.0/16")])
    }

    static func plan(_ ports: [ServicePortPlan], context: FamilyContext = context()) -> FamilyPlan {
        FamilyPlan(context: context, servicePorts: ports)
    }

    /// A TCP port-80 service port in `ns1/svc1` unless told otherwise.
    static func port(_ ns: String = "ns1", _ svc: String = "svc1", portName: String = "p80",
                     proto: L4Protocol = .tcp, clusterIP: String = "172.30.0.41", port: UInt16 = 80,
                     nodePort: UInt16? = nil, externalIPs: [String] = [], lbIPs: [String] = [],
                     sourceRanges: [String] = [], affinity: UInt32? = nil,
                     eTPLocal: Bool = false, iTPLocal: Bool = false, healthCheckNodePort: UInt16? = nil,
                     cluster: [WeightedEndpoint] = [], local: [WeightedEndpoint] = [],
                     hasAnyEndpoints: Bool? = nil) -> ServicePortPlan {
        let cip = ip(clusterIP)
        return ServicePortPlan(
            name: name(ns, svc, portName, proto), family: cip.family, clusterIP: cip, port: port,
            nodePort: nodePort, externalIPs: externalIPs.map(ip), loadBalancerIPs: lbIPs.map(ip),
            loadBalancerSourceRanges: sourceRanges.map(cidr), affinityTimeoutSeconds: affinity,
            externalPolicyLocal: eTPLocal, internalPolicyLocal: iTPLocal,
            healthCheckNodePort: healthCheckNodePort, clusterEndpoints: cluster.sorted(),
            localEndpoints: local.sorted(), hasAnyEndpoints: hasAnyEndpoints)
    }
}

/// A parsed `iptables-restore` script: per table, the chain declarations and the rules.
struct ParsedScript {
    struct Table {
        var chains: [String] = []
        var rules: [String] = []
        var deletions: [String] = []
    }

    var tables: [String: Table] = [:]
    var tableOrder: [String] = []

    init(_ text: String) {
        var current = ""
        for line in text.split(separator: "\n").map(String.init) {
            if line.hasPrefix("*") {
                current = String(line.dropFirst())
                tableOrder.append(current)
                tables[current] = Table()
            } else if line.hasPrefix(":") {
                tables[current]!.chains.append(String(line.dropFirst().split(separator: " ")[0]))
            } else if line.hasPrefix("-A ") {
                tables[current]!.rules.append(line)
            } else if line.hasPrefix("-X ") {
                tables[current]!.deletions.append(String(line.dropFirst(3)))
            }
        }
    }

    /// The rules of `chain` in `table`, without the `-A chain ` prefix.
    func rules(_ table: String, _ chain: String) -> [String] {
        let prefix = "-A \(chain) "
        return (tables[table]?.rules ?? []).compactMap { line in
            if line == "-A \(chain)" { return "" }
            return line.hasPrefix(prefix) ? String(line.dropFirst(prefix.count)) : nil
        }
    }

    func hasChain(_ table: String, _ chain: String) -> Bool {
        tables[table]?.chains.contains(chain) ?? false
    }

    /// Every declared chain of `table` starting with `prefix`.
    func chains(_ table: String, prefix: String) -> [String] {
        (tables[table]?.chains ?? []).filter { $0.hasPrefix(prefix) }
    }
}
