import SluiceIR
import SluiceModel

/// The names and key types of Sluice's fixed nftables layout for one family.
///
/// Every per-service and per-endpoint fact lives in an element of one of these sets and
/// maps. The chains and rules depend only on the node configuration and on which
/// *feature classes* are in use (slot totals `T` of the endpoint maps, affinity timeouts),
/// never on the number of services or endpoints.
public struct Layout: Sendable, Hashable {
    public let family: Family
    public static let tableName = "sluice"
    public static let tableComment = "rules for sluice"

    public init(_ family: IPFamily) {
        self.family = family == .ipv4 ? .ip : .ip6
    }

    // MARK: Expressions in this family's spelling.

    public var saddr: Expr { .payload(family == .ip ? .ipSaddr : .ip6Saddr) }
    public var daddr: Expr { .payload(family == .ip ? .ipDaddr : .ip6Daddr) }
    public var l4proto: Expr { .meta(.l4proto) }
    public var dport: Expr { .payload(.thDport) }
    /// `ip daddr . meta l4proto . th dport`: the service tuple a packet is addressed to.
    public var tuple: Expr { .concat([daddr, l4proto, dport]) }
    /// `meta l4proto . th dport`: a NodePort.
    public var nodePortTuple: Expr { .concat([l4proto, dport]) }
    /// `ip daddr . th dport`: the data of every endpoint map.
    public var endpointData: [Expr] { [daddr, dport] }
    public var originalDaddr: Expr { .ct(.originalDaddr(family)) }

    // MARK: Set and map names.

    public static let natProtos = "nat-protos"
    public static let clusterIPs = "cluster-ips"
    public static let serviceCIDRs = "service-cidrs"
    public static let nodePortIPs = "nodeport-ips"
    public static let firewallIPs = "firewall-ips"
    public static let firewallAllow = "firewall-allow"
    public static let clusterIPPorts = "clusterip-ports"
    public static let externalPorts = "external-ports"
    public static let externalLocalPorts = "external-local-ports"
    public static let nodePorts = "nodeports"
    public static let nodePortsLocal = "nodeports-local"
    public static let noEndpointReject = "no-endpoint-reject"
    public static let noEndpointDrop = "no-endpoint-drop"
    public static let noEndpointNodePortsReject = "no-endpoint-nodeports-reject"
    public static let noEndpointNodePortsDrop = "no-endpoint-nodeports-drop"
    public static let hairpin = "hairpin"
    public static let affinity = "affinity"
    public static let affinityNodePorts = "affinity-nodeports"

    /// `affinity-<seconds>`: service tuples with ClientIP affinity of this timeout.
    public static func affinityPorts(_ timeout: UInt32) -> String { "affinity-\(timeout)" }
    /// `affinity-nodeports-<seconds>`: NodePorts with ClientIP affinity of this timeout.
    public static func affinityNodePortsClass(_ timeout: UInt32) -> String { "affinity-nodeports-\(timeout)" }

    /// Which traffic an endpoint map serves.
    public enum EndpointMapKind: String, Sendable, Hashable, CaseIterable, Comparable {
        /// Service tuples (ClusterIP, externalIP, LoadBalancer IP) → their policy's endpoints.
        case service = "endpoints"
        /// NodePorts → their external policy's endpoints.
        case nodePort = "nodeport-endpoints"
        /// eTP=Local external tuples reached from a pod or the node → cluster endpoints.
        case serviceShortcut = "shortcut-endpoints"
        /// eTP=Local NodePorts reached from a pod or the node → cluster endpoints.
        case nodePortShortcut = "nodeport-shortcut-endpoints"

        public static func < (a: Self, b: Self) -> Bool { a.order < b.order }
        private var order: Int { Self.allCases.firstIndex(of: self)! }

        public var isNodePort: Bool { self == .nodePort || self == .nodePortShortcut }
    }

    /// `endpoints-<T>` etc.: slot maps whose random modulus is `T`.
    public static func endpointMap(_ kind: EndpointMapKind, slots: UInt32) -> String { "\(kind.rawValue)-\(slots)" }
    /// `dnat-endpoints-<T>` etc.: the chain holding the one DNAT rule through that slot map.
    public static func endpointChain(_ kind: EndpointMapKind, slots: UInt32) -> String { "dnat-\(endpointMap(kind, slots: slots))" }

    // MARK: Chain names.

    public static let services = "services"
    public static let nodePortsChain = "nodeports"
    public static let serviceShortcutChain = "external-shortcut"
    public static let nodePortShortcutChain = "nodeport-shortcut"
    public static let firewallCheck = "firewall-check"
    public static let serviceEndpointsCheck = "service-endpoints-check"
    public static let nodePortEndpointsCheck = "nodeport-endpoints-check"
    public static let clusterIPsCheck = "cluster-ips-check"
    public static let affinityRecord = "affinity-record"
    public static let masquerading = "masquerading"

    // MARK: Key types.

    /// The `typeof` key of an endpoint map of the given kind and modulus.
    public func endpointMapKey(_ kind: EndpointMapKind, slots: UInt32) -> [Expr] {
        kind.isNodePort ? [l4proto, dport, .numgenRandom(mod: slots)] : [daddr, l4proto, dport, .numgenRandom(mod: slots)]
    }
}
