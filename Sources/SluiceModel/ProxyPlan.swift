/// Kubernetes vocabulary: the resolved, per-family view of a node's services that the
/// compiler consumes. It is what kube-proxy's ServicePort/Endpoint trackers hold after
/// filtering, merging EndpointSlices and categorizing endpoints, plus Sluice's weights.

/// `TCP`, `UDP`, `SCTP`.
public enum L4Protocol: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case tcp = "TCP"
    case udp = "UDP"
    case sctp = "SCTP"

    /// IANA protocol number.
    public var number: UInt8 {
        switch self {
        case .tcp: 6
        case .udp: 17
        case .sctp: 132
        }
    }

    /// Lower-case name as nft and kube-proxy chain names use it.
    public var lowercased: String { rawValue.lowercased() }

    public static func < (a: L4Protocol, b: L4Protocol) -> Bool { a.number < b.number }
}

/// `namespace/name` of a Service.
public struct ServiceName: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public var description: String { "\(namespace)/\(name)" }
    public static func < (a: ServiceName, b: ServiceName) -> Bool { (a.namespace, a.name) < (b.namespace, b.name) }
}

/// kube-proxy's ServicePortName: `namespace/name:portName` plus protocol.
public struct ServicePortName: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var service: ServiceName
    /// `spec.ports[].name` (may be empty).
    public var port: String
    public var proto: L4Protocol

    public init(service: ServiceName, port: String, proto: L4Protocol) {
        self.service = service
        self.port = port
        self.proto = proto
    }

    /// `ns/svc:port` as kube-proxy prints it (`ns/svc` when the port has no name).
    public var description: String { port.isEmpty ? "\(service)" : "\(service):\(port)" }

    public static func < (a: ServicePortName, b: ServicePortName) -> Bool {
        (a.service, a.port, a.proto) < (b.service, b.port, b.proto)
    }
}

/// One endpoint of a service port after merging the service's EndpointSlices.
public struct Endpoint: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: UInt16
    /// `conditions.ready` (nil counts as true).
    public var ready: Bool
    /// `conditions.serving` (nil counts as true).
    public var serving: Bool
    /// `conditions.terminating` (nil counts as false).
    public var terminating: Bool
    /// `nodeName` equals this node.
    public var isLocal: Bool
    public var nodeName: String?
    public var zone: String?
    /// `hints.forZones[].name`.
    public var zoneHints: [String]
    /// `hints.forNodes[].name`.
    public var nodeHints: [String]
    /// From the slice annotation `sluice.dev/weight` (0…1000, default 1).
    public var weight: UInt32

    public init(ip: IPAddress, port: UInt16, ready: Bool = true, serving: Bool = true, terminating: Bool = false,
                isLocal: Bool = false, nodeName: String? = nil, zone: String? = nil,
                zoneHints: [String] = [], nodeHints: [String] = [], weight: UInt32 = 1) {
        self.ip = ip
        self.port = port
        self.ready = ready
        self.serving = serving
        self.terminating = terminating
        self.isLocal = isLocal
        self.nodeName = nodeName
        self.zone = zone
        self.zoneHints = zoneHints
        self.nodeHints = nodeHints
        self.weight = weight
    }

    /// `ip:port` (`[ip]:port` for IPv6), the string kube-proxy sorts and names by.
    public var description: String {
        ip.family == .ipv6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    public static func < (a: Endpoint, b: Endpoint) -> Bool { a.description < b.description }
}

/// An endpoint chosen for a traffic group, with the weight used for new connections
/// (0 = no new connections; see `ServicePortPlan` for an all-zero group).
public struct WeightedEndpoint: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: UInt16
    public var weight: UInt32

    public init(ip: IPAddress, port: UInt16, weight: UInt32 = 1) {
        self.ip = ip
        self.port = port
        self.weight = weight
    }

    public var description: String {
        ip.family == .ipv6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    public static func < (a: WeightedEndpoint, b: WeightedEndpoint) -> Bool { a.description < b.description }
}

/// Everything the datapath needs for one service port in one IP family.
///
/// Endpoint groups follow kube-proxy's `CategorizeEndpoints`: `clusterEndpoints` is only
/// filled when the port `usesClusterEndpoints`, `localEndpoints` only when it
/// `usesLocalEndpoints` (otherwise they are empty, and unused).
///
/// **Weights** (Sluice's `sluice.dev/weight` EndpointSlice annotation, 0…1000, default 1):
/// every `WeightedEndpoint` carries its slice's weight. Weight-0 endpoints are kept in the
/// groups (existing connections and affinity entries to them stay valid) but must get no
/// new connections. When a group's `totalWeight` is 0 the group still counts as having
/// endpoints (`hasAnyEndpoints` is about readiness, not weight), yet no endpoint may take a
/// new connection: the compiler must treat new connections for that group like a group with
/// no usable endpoint (reject, as for a service without endpoints) rather than spreading
/// them equally. Use `clusterEndpoints.totalWeight == 0` / `localEndpoints.totalWeight == 0`.
public struct ServicePortPlan: Sendable, Hashable, Codable {
    public var name: ServicePortName
    public var family: IPFamily
    /// This family's ClusterIP.
    public var clusterIP: IPAddress
    public var port: UInt16
    /// `nodePort`, nil when 0 or absent.
    public var nodePort: UInt16?
    /// `spec.externalIPs` of this family.
    public var externalIPs: [IPAddress]
    /// `status.loadBalancer.ingress[].ip` of this family whose `ipMode` is `VIP` or unset.
    public var loadBalancerIPs: [IPAddress]
    /// `spec.loadBalancerSourceRanges` of this family.
    public var loadBalancerSourceRanges: [CIDR]
    /// `sessionAffinityConfig.clientIP.timeoutSeconds` when `sessionAffinity: ClientIP`.
    public var affinityTimeoutSeconds: UInt32?
    /// `externalTrafficPolicy: Local`.
    public var externalPolicyLocal: Bool
    /// `internalTrafficPolicy: Local`.
    public var internalPolicyLocal: Bool
    /// `healthCheckNodePort` when the service needs one (LoadBalancer + eTP Local).
    public var healthCheckNodePort: UInt16?
    /// Endpoints for Cluster-policy traffic (ready, topology-filtered; else serving+terminating).
    public var clusterEndpoints: [WeightedEndpoint]
    /// Endpoints for Local-policy traffic (local ready; else local serving+terminating).
    public var localEndpoints: [WeightedEndpoint]
    /// Any ready or serving+terminating endpoint exists anywhere.
    public var hasAnyEndpoints: Bool
    /// Local ready endpoints counted for the health check node port.
    public var localReadyEndpointCount: Int
    /// How a new connection picks among the endpoints (`sluice.dev/load-balancing`).
    public var loadBalancing: LoadBalancing = .random

    public init(name: ServicePortName, family: IPFamily, clusterIP: IPAddress, port: UInt16,
                nodePort: UInt16? = nil, externalIPs: [IPAddress] = [], loadBalancerIPs: [IPAddress] = [],
                loadBalancerSourceRanges: [CIDR] = [], affinityTimeoutSeconds: UInt32? = nil,
                externalPolicyLocal: Bool = false, internalPolicyLocal: Bool = false,
                healthCheckNodePort: UInt16? = nil, clusterEndpoints: [WeightedEndpoint] = [],
                localEndpoints: [WeightedEndpoint] = [], hasAnyEndpoints: Bool? = nil,
                localReadyEndpointCount: Int = 0, loadBalancing: LoadBalancing = .random) {
        self.loadBalancing = loadBalancing
        self.name = name
        self.family = family
        self.clusterIP = clusterIP
        self.port = port
        self.nodePort = nodePort
        self.externalIPs = externalIPs
        self.loadBalancerIPs = loadBalancerIPs
        self.loadBalancerSourceRanges = loadBalancerSourceRanges
        self.affinityTimeoutSeconds = affinityTimeoutSeconds
        self.externalPolicyLocal = externalPolicyLocal
        self.internalPolicyLocal = internalPolicyLocal
        self.healthCheckNodePort = healthCheckNodePort
        self.clusterEndpoints = clusterEndpoints
        self.localEndpoints = localEndpoints
        self.hasAnyEndpoints = hasAnyEndpoints ?? !(clusterEndpoints.isEmpty && localEndpoints.isEmpty)
        self.localReadyEndpointCount = localReadyEndpointCount
    }

    /// NodePort, LoadBalancer IPs or externalIPs exist (kube-proxy's `ExternallyAccessible`).
    public var externallyAccessible: Bool {
        nodePort != nil || !loadBalancerIPs.isEmpty || !externalIPs.isEmpty
    }

    /// kube-proxy's `UsesClusterEndpoints`.
    public var usesClusterEndpoints: Bool { !internalPolicyLocal || externallyAccessible }
    /// kube-proxy's `UsesLocalEndpoints`.
    public var usesLocalEndpoints: Bool { internalPolicyLocal || (externalPolicyLocal && externallyAccessible) }

    /// Endpoints that ClusterIP traffic may reach.
    public var internalEndpoints: [WeightedEndpoint] { internalPolicyLocal ? localEndpoints : clusterEndpoints }
    /// Endpoints that external traffic (not short-circuited) may reach.
    public var externalEndpoints: [WeightedEndpoint] { externalPolicyLocal ? localEndpoints : clusterEndpoints }
}

/// How kube-proxy recognizes traffic that comes from pods (`--detect-local-mode`).
public enum LocalTrafficDetector: Sendable, Hashable, Codable {
    /// No detector: ClusterIP traffic is never masqueraded (unless masquerade-all) and
    /// eTP=Local has no pod short-circuit.
    case none
    /// `ip saddr <cidr>` (ClusterCIDR or NodeCIDR mode).
    case cidrs([CIDR])
    /// `iifname <name>` (BridgeInterface mode).
    case bridgeInterface(String)
    /// `iifname <prefix>*` (InterfaceNamePrefix mode).
    case interfaceNamePrefix(String)
}

/// The node's addresses that accept NodePort traffic (`--nodeport-addresses`).
public enum NodePortAddresses: Sendable, Hashable, Codable {
    /// These IPs only (from CIDRs intersected with the node's IPs, or `primary`).
    case ips([IPAddress])
    /// Every local address except loopback (`0.0.0.0/0`, `::/0`).
    case all
}

/// The node context for one family: what kube-proxy's node flags resolve to.
public struct FamilyContext: Sendable, Hashable, Codable {
    public var family: IPFamily
    public var nodeName: String
    public var localDetector: LocalTrafficDetector
    public var nodePortAddresses: NodePortAddresses
    /// The node's own IPs of this family (for loadBalancerSourceRanges handling).
    public var nodeIPs: [IPAddress]
    public var masqueradeAll: Bool
    /// Masquerade mark bit (`nftables.masqueradeBit`, default 14 → 0x4000).
    public var masqueradeBit: Int
    /// ServiceCIDRs of this family: unallocated ClusterIPs inside them are dropped.
    public var serviceCIDRs: [CIDR]
    /// Count new connections per service address and per endpoint in the kernel
    /// (`--connection-counters`, default on).
    public var connectionCounters: Bool
    /// Count packets and bytes of every DNATed connection, both directions, per service
    /// address (`--traffic-counters`, default off: a set update per packet).
    public var trafficCounters: Bool

    public init(family: IPFamily, nodeName: String, localDetector: LocalTrafficDetector = .none,
                nodePortAddresses: NodePortAddresses = .ips([]), nodeIPs: [IPAddress] = [],
                masqueradeAll: Bool = false, masqueradeBit: Int = 14, serviceCIDRs: [CIDR] = [],
                connectionCounters: Bool = true, trafficCounters: Bool = false) {
        self.connectionCounters = connectionCounters
        self.trafficCounters = trafficCounters
        self.family = family
        self.nodeName = nodeName
        self.localDetector = localDetector
        self.nodePortAddresses = nodePortAddresses
        self.nodeIPs = nodeIPs
        self.masqueradeAll = masqueradeAll
        self.masqueradeBit = masqueradeBit
        self.serviceCIDRs = serviceCIDRs
    }

    public var masqueradeMark: UInt32 { UInt32(1) << UInt32(masqueradeBit) }
}

/// The compiler's input for one family: node context and every proxied service port,
/// sorted by name.
public struct FamilyPlan: Sendable, Hashable, Codable {
    public var context: FamilyContext
    public var servicePorts: [ServicePortPlan]

    public init(context: FamilyContext, servicePorts: [ServicePortPlan]) {
        self.context = context
        self.servicePorts = servicePorts.sorted { $0.name < $1.name }
    }
}

/// Services that produce no datapath, reported in the summary.
public struct SkippedService: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Reason: String, Sendable, Hashable, Codable {
        /// `type: ExternalName`: resolved by cluster DNS as a CNAME to `target`.
        case externalName
        /// `clusterIP: None`: DNS returns the endpoint addresses directly.
        case headless
    }

    public var service: ServiceName
    public var reason: Reason
    /// The ExternalName target.
    public var target: String?

    public init(service: ServiceName, reason: Reason, target: String? = nil) {
        self.service = service
        self.reason = reason
        self.target = target
    }

    public var description: String {
        switch reason {
        case .externalName: return "\(service): ExternalName → \(target ?? "?") (CNAME in cluster DNS, no rules)"
        case .headless: return "\(service): headless (DNS returns endpoint addresses, no rules)"
        }
    }
}

/// The compiler's whole input: one plan per family in use, plus what was skipped.
public struct ProxyPlan: Sendable, Hashable, Codable {
    public var families: [FamilyPlan]
    public var skipped: [SkippedService]

    public init(families: [FamilyPlan], skipped: [SkippedService] = []) {
        self.families = families.sorted { $0.context.family < $1.context.family }
        self.skipped = skipped.sorted { $0.service < $1.service }
    }

    public func family(_ f: IPFamily) -> FamilyPlan? { families.first { $0.context.family == f } }
}
