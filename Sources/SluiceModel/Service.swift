/// Kubernetes vocabulary: a v1 `Service` as the API server serves it (or as a manifest
/// writes it), reduced to the fields a node proxy reads: anything else (`selector`,
/// `loadBalancerIP`, `appProtocol`, …) is skipped while decoding. Decoding is lenient: unknown
/// fields are ignored and every field may be absent. Values are kept as written; `ServiceValidator` checks and parses them.
public struct Service: Sendable, Hashable, Codable {
    public var apiVersion: String?
    public var kind: String?
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: Status

    public init(metadata: ObjectMeta, spec: Spec, status: Status = Status()) {
        self.apiVersion = "v1"
        self.kind = "Service"
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try c.decodeIfPresent(String.self, forKey: .apiVersion)
        kind = try c.decodeIfPresent(String.self, forKey: .kind)
        metadata = try c.decode(.metadata, default: ObjectMeta())
        spec = try c.decode(.spec, default: Spec())
        status = try c.decode(.status, default: Status())
    }

    /// `namespace/name`; a missing namespace means `default`, as `kubectl apply` would.
    public var serviceName: ServiceName {
        ServiceName(namespace: metadata.namespace ?? "default", name: metadata.name ?? "")
    }

    /// `spec`.
    public struct Spec: Sendable, Hashable, Codable {
        /// `ClusterIP` (default), `NodePort`, `LoadBalancer`, `ExternalName`.
        public var type: String?
        public var clusterIP: String?
        public var clusterIPs: [String]?
        public var ipFamilies: [String]?
        public var ports: [Port]?
        public var externalIPs: [String]?
        public var loadBalancerSourceRanges: [String]?
        /// `None` (default) or `ClientIP`.
        public var sessionAffinity: String?
        public var sessionAffinityConfig: SessionAffinityConfig?
        /// `Cluster` (default) or `Local`.
        public var externalTrafficPolicy: String?
        /// `Cluster` (default) or `Local`.
        public var internalTrafficPolicy: String?
        public var healthCheckNodePort: Int?
        public var externalName: String?
        /// `PreferClose`, `PreferSameZone`, `PreferSameNode` (consumed via EndpointSlice hints).
        public var trafficDistribution: String?

        public init(type: String? = nil, clusterIP: String? = nil, clusterIPs: [String]? = nil,
                    ipFamilies: [String]? = nil, ports: [Port]? = nil, externalIPs: [String]? = nil,
                    loadBalancerSourceRanges: [String]? = nil, sessionAffinity: String? = nil,
                    sessionAffinityConfig: SessionAffinityConfig? = nil, externalTrafficPolicy: String? = nil,
                    internalTrafficPolicy: String? = nil, healthCheckNodePort: Int? = nil,
                    externalName: String? = nil, trafficDistribution: String? = nil) {
            self.type = type
            self.clusterIP = clusterIP
            self.clusterIPs = clusterIPs
            self.ipFamilies = ipFamilies
            self.ports = ports
            self.externalIPs = externalIPs
            self.loadBalancerSourceRanges = loadBalancerSourceRanges
            self.sessionAffinity = sessionAffinity
            self.sessionAffinityConfig = sessionAffinityConfig
            self.externalTrafficPolicy = externalTrafficPolicy
            self.internalTrafficPolicy = internalTrafficPolicy
            self.healthCheckNodePort = healthCheckNodePort
            self.externalName = externalName
            self.trafficDistribution = trafficDistribution
        }
    }

    /// `spec.ports[]`. Numbers are `Int` so that out-of-range values can be reported.
    public struct Port: Sendable, Hashable, Codable {
        public var name: String?
        /// `TCP` (default), `UDP`, `SCTP`.
        public var `protocol`: String?
        public var port: Int?
        public var targetPort: IntOrString?
        public var nodePort: Int?

        public init(name: String? = nil, protocol: String? = nil, port: Int?, targetPort: IntOrString? = nil,
                    nodePort: Int? = nil) {
            self.name = name
            self.protocol = `protocol`
            self.port = port
            self.targetPort = targetPort
            self.nodePort = nodePort
        }
    }

    /// `spec.sessionAffinityConfig`.
    public struct SessionAffinityConfig: Sendable, Hashable, Codable {
        public var clientIP: ClientIPConfig?

        public init(clientIP: ClientIPConfig? = nil) { self.clientIP = clientIP }
    }

    /// `spec.sessionAffinityConfig.clientIP`.
    public struct ClientIPConfig: Sendable, Hashable, Codable {
        /// 1…86400; the API server defaults it to 10800 (3 h).
        public var timeoutSeconds: Int?

        public init(timeoutSeconds: Int? = nil) { self.timeoutSeconds = timeoutSeconds }
    }

    /// `status`.
    public struct Status: Sendable, Hashable, Codable {
        public var loadBalancer: LoadBalancerStatus?

        public init(loadBalancer: LoadBalancerStatus? = nil) { self.loadBalancer = loadBalancer }
    }

    /// `status.loadBalancer`.
    public struct LoadBalancerStatus: Sendable, Hashable, Codable {
        public var ingress: [LoadBalancerIngress]?

        public init(ingress: [LoadBalancerIngress]? = nil) { self.ingress = ingress }
    }

    /// `status.loadBalancer.ingress[]`.
    public struct LoadBalancerIngress: Sendable, Hashable, Codable {
        public var ip: String?
        public var hostname: String?
        /// `VIP` (or unset): the proxy programs the IP. `Proxy`: the load balancer proxies, skip it.
        public var ipMode: String?

        public init(ip: String? = nil, hostname: String? = nil, ipMode: String? = nil) {
            self.ip = ip
            self.hostname = hostname
            self.ipMode = ipMode
        }
    }
}

/// `spec.type` values.
public enum ServiceType: String, Sendable, Hashable, Codable, CaseIterable {
    case clusterIP = "ClusterIP"
    case nodePort = "NodePort"
    case loadBalancer = "LoadBalancer"
    case externalName = "ExternalName"
}
