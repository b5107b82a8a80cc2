/// A Service that passed validation: addresses parsed and normalized (zero-padded octets,
/// spaces), defaults applied, bad optional entries (externalIPs, LB ingress IPs, source
/// ranges) dropped. It is the planner's input and still holds every family.
public struct ValidatedService: Sendable, Hashable {
    public var name: ServiceName
    /// Manifest file, for diagnostics of later passes.
    public var file: String?
    public var type: ServiceType
    /// `spec.clusterIPs` (else `spec.clusterIP`), in spec order, at most one per family.
    public var clusterIPs: [IPAddress]
    public var ports: [Port]
    public var externalIPs: [IPAddress]
    /// `status.loadBalancer.ingress[].ip` whose `ipMode` is `VIP` or unset.
    public var loadBalancerVIPs: [IPAddress]
    /// `spec.loadBalancerSourceRanges`, trimmed and normalized.
    public var loadBalancerSourceRanges: [CIDR]
    /// Set only for `sessionAffinity: ClientIP`.
    public var affinityTimeoutSeconds: UInt32?
    /// `externalTrafficPolicy: Local` on an externally accessible service (kube-proxy's
    /// `apiservice.ExternalPolicyLocal`).
    public var externalPolicyLocal: Bool
    /// `internalTrafficPolicy: Local`.
    public var internalPolicyLocal: Bool
    /// Set only for LoadBalancer + eTP Local (kube-proxy's `NeedsHealthCheck`).
    public var healthCheckNodePort: UInt16?
    /// The annotation `sluice.dev/load-balancing` (default `random`).
    public var loadBalancing: LoadBalancing = .random

    /// One `spec.ports[]` entry.
    public struct Port: Sendable, Hashable {
        /// Index in `spec.ports`, for diagnostics.
        public var index: Int
        public var name: String
        public var proto: L4Protocol
        public var port: UInt16
        /// Only for NodePort and LoadBalancer services; nil when 0 or absent.
        public var nodePort: UInt16?
        public var targetPort: IntOrString?

        public init(index: Int, name: String, proto: L4Protocol, port: UInt16, nodePort: UInt16? = nil,
                    targetPort: IntOrString? = nil) {
            self.index = index
            self.name = name
            self.proto = proto
            self.port = port
            self.nodePort = nodePort
            self.targetPort = targetPort
        }
    }

    public init(name: ServiceName, file: String? = nil, type: ServiceType = .clusterIP, clusterIPs: [IPAddress],
                ports: [Port], externalIPs: [IPAddress] = [], loadBalancerVIPs: [IPAddress] = [],
                loadBalancerSourceRanges: [CIDR] = [], affinityTimeoutSeconds: UInt32? = nil,
                externalPolicyLocal: Bool = false, internalPolicyLocal: Bool = false, healthCheckNodePort: UInt16? = nil,
                loadBalancing: LoadBalancing = .random) {
        self.loadBalancing = loadBalancing
        self.name = name
        self.file = file
        self.type = type
        self.clusterIPs = clusterIPs
        self.ports = ports
        self.externalIPs = externalIPs
        self.loadBalancerVIPs = loadBalancerVIPs
        self.loadBalancerSourceRanges = loadBalancerSourceRanges
        self.affinityTimeoutSeconds = affinityTimeoutSeconds
        self.externalPolicyLocal = externalPolicyLocal
        self.internalPolicyLocal = internalPolicyLocal
        self.healthCheckNodePort = healthCheckNodePort
    }

    /// kube-proxy's `GetClusterIPByFamily`.
    public func clusterIP(for family: IPFamily) -> IPAddress? { clusterIPs.first { $0.family == family } }

    public var families: Set<IPFamily> { Set(clusterIPs.map(\.family)) }

    /// The field a ClusterIP came from (`spec.clusterIP` for the primary one).
    func clusterIPField(_ ip: IPAddress) -> String {
        let i = clusterIPs.firstIndex(of: ip) ?? 0
        return i == 0 ? "spec.clusterIP" : "spec.clusterIPs[\(i)]"
    }
}

/// What validating one Service gave.
public enum ServiceValidationOutcome: Sendable, Hashable {
    /// To be proxied.
    case valid(ValidatedService)
    /// ExternalName or headless: no rules, reported in the summary.
    case skipped(SkippedService)
    /// Left out; the diagnostics say why.
    case rejected
}
