/// Kubernetes vocabulary: a v1 `Service` as the API server serves it (or as a manifest
/// writes it), reduced to the fields a node proxy reads: anything else (`loadBalancerIP`,
/// `appProtocol`, …) is skipped while decoding. `selector` and `publishNotReadyAddresses`
/// are read for manifests that give Pods instead of EndpointSlices (`EndpointSliceController`). Decoding is lenient: unknown
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

    /// What selects the service's pods; nil without a selector (an empty one selects nothing
    /// here: the API server drops it, and the controller manages no slices then).
    public var podSelection: PodSelection? {
        guard let selector = spec.selector, !selector.isEmpty else { return nil }
        return PodSelection(selector: selector, publishNotReadyAddresses: spec.publishNotReadyAddresses ?? false,
                            trafficDistribution: spec.trafficDistribution.flatMap(TrafficDistribution.init(rawValue:)))
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
        /// The pods' labels that select the service's endpoints (all pairs must match).
        public var selector: [String: String]?
        /// Every pod with an address counts as ready (endpoints of pods that are not).
        public var publishNotReadyAddresses: Bool?

        public init(type: String? = nil, clusterIP: String? = nil, clusterIPs: [String]? = nil,
                    ipFamilies: [String]? = nil, ports: [Port]? = nil, externalIPs: [String]? = nil,
                    loadBalancerSourceRanges: [String]? = nil, sessionAffinity: String? = nil,
                    sessionAffinityConfig: SessionAffinityConfig? = nil, externalTrafficPolicy: String? = nil,
                    internalTrafficPolicy: String? = nil, healthCheckNodePort: Int? = nil,
                    externalName: String? = nil, trafficDistribution: String? = nil,
                    selector: [String: String]? = nil, publishNotReadyAddresses: Bool? = nil) {
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
            self.selector = selector
            self.publishNotReadyAddresses = publishNotReadyAddresses
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

/// A Service's `spec.selector`, `spec.publishNotReadyAddresses` and `spec.trafficDistribution`:
/// which pods are its endpoints when it has no EndpointSlice of its own, and the hints their
/// slices carry.
public struct PodSelection: Sendable, Hashable {
    public var selector: [String: String]
    public var publishNotReadyAddresses: Bool
    /// A known `spec.trafficDistribution` (an unknown value gives no hints, as the
    /// EndpointSlice controller ignores it).
    public var trafficDistribution: TrafficDistribution?

    public init(selector: [String: String], publishNotReadyAddresses: Bool = false, trafficDistribution: TrafficDistribution? = nil) {
        self.selector = selector
        self.publishNotReadyAddresses = publishNotReadyAddresses
        self.trafficDistribution = trafficDistribution
    }
}

/// `spec.trafficDistribution`: the hints the EndpointSlice controller writes (KEP-4444,
/// KEP-3015), which kube-proxy and Sluice then follow (`CategorizedEndpoints`).
public enum TrafficDistribution: String, Sendable, Hashable {
    /// Zone hints: each endpoint's own zone.
    case preferClose = "PreferClose"
    /// The same as `PreferClose` under its newer name.
    case preferSameZone = "PreferSameZone"
    /// Node hints (each endpoint's own node) plus zone hints, for the zone fallback.
    case preferSameNode = "PreferSameNode"

    /// The controller's hints for an endpoint on `node` in `zone` (none when that is unknown:
    /// one endpoint without hints makes kube-proxy ignore topology for the service).
    func hints(node: String?, zone: String?) -> (zones: [String], nodes: [String]) {
        let zones = zone.map { [$0] } ?? []
        switch self {
        case .preferClose, .preferSameZone: return (zones, [])
        case .preferSameNode: return (zones, node.map { [$0] } ?? [])
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

extension Service {
    /// Reads a Service as `init(from:)` does through `JSONDecoder` (see `JSONReader`).
    public init(json r: inout JSONReader) throws {
        var (apiVersion, kind): (String?, String?) = (nil, nil)
        var (metadata, spec, status) = (ObjectMeta(), Spec(), Status())
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "apiVersion": try seen.mark(0, r); apiVersion = try r.readOptionalString()
            case "kind": try seen.mark(1, r); kind = try r.readOptionalString()
            case "metadata": try seen.mark(2, r); metadata = try r.readOptional { try ObjectMeta(json: &$0) } ?? ObjectMeta()
            case "spec": try seen.mark(3, r); spec = try r.readOptional { try Spec(json: &$0) } ?? Spec()
            case "status": try seen.mark(4, r); status = try r.readOptional { try Status(json: &$0) } ?? Status()
            default: try r.skipValue()
            }
        }
        self.init(metadata: metadata, spec: spec, status: status)
        self.apiVersion = apiVersion
        self.kind = kind
    }
}

extension Service.Spec {
    init(json r: inout JSONReader) throws {
        self.init()
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "type": try seen.mark(0, r); type = try r.readOptionalString()
            case "clusterIP": try seen.mark(1, r); clusterIP = try r.readOptionalString()
            case "clusterIPs": try seen.mark(2, r); clusterIPs = try r.readOptionalStrings()
            case "ipFamilies": try seen.mark(3, r); ipFamilies = try r.readOptionalStrings()
            case "ports": try seen.mark(4, r); ports = try r.readOptionalArray { try Service.Port(json: &$0) }
            case "externalIPs": try seen.mark(5, r); externalIPs = try r.readOptionalStrings()
            case "loadBalancerSourceRanges": try seen.mark(6, r); loadBalancerSourceRanges = try r.readOptionalStrings()
            case "sessionAffinity": try seen.mark(7, r); sessionAffinity = try r.readOptionalString()
            case "sessionAffinityConfig":
                try seen.mark(8, r)
                sessionAffinityConfig = try r.readOptional { try Service.SessionAffinityConfig(json: &$0) }
            case "externalTrafficPolicy": try seen.mark(9, r); externalTrafficPolicy = try r.readOptionalString()
            case "internalTrafficPolicy": try seen.mark(10, r); internalTrafficPolicy = try r.readOptionalString()
            case "healthCheckNodePort": try seen.mark(11, r); healthCheckNodePort = try r.readOptionalInt()
            case "externalName": try seen.mark(12, r); externalName = try r.readOptionalString()
            case "trafficDistribution": try seen.mark(13, r); trafficDistribution = try r.readOptionalString()
            case "selector": try seen.mark(14, r); selector = try r.readOptionalStringMap()
            case "publishNotReadyAddresses": try seen.mark(15, r); publishNotReadyAddresses = try r.readOptionalBool()
            default: try r.skipValue()
            }
        }
    }
}

extension Service.Port {
    init(json r: inout JSONReader) throws {
        self.init(port: nil)
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "name": try seen.mark(0, r); name = try r.readOptionalString()
            case "protocol": try seen.mark(1, r); self.protocol = try r.readOptionalString()
            case "port": try seen.mark(2, r); port = try r.readOptionalInt()
            case "targetPort": try seen.mark(3, r); targetPort = try r.readOptional { try IntOrString(json: &$0) }
            case "nodePort": try seen.mark(4, r); nodePort = try r.readOptionalInt()
            default: try r.skipValue()
            }
        }
    }
}

extension Service.SessionAffinityConfig {
    init(json r: inout JSONReader) throws {
        self.init()
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "clientIP": try seen.mark(0, r); clientIP = try r.readOptional { try Service.ClientIPConfig(json: &$0) }
            default: try r.skipValue()
            }
        }
    }
}

extension Service.ClientIPConfig {
    init(json r: inout JSONReader) throws {
        self.init()
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "timeoutSeconds": try seen.mark(0, r); timeoutSeconds = try r.readOptionalInt()
            default: try r.skipValue()
            }
        }
    }
}

extension Service.Status {
    init(json r: inout JSONReader) throws {
        self.init()
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "loadBalancer": try seen.mark(0, r); loadBalancer = try r.readOptional { try Service.LoadBalancerStatus(json: &$0) }
            default: try r.skipValue()
            }
        }
    }
}

extension Service.LoadBalancerStatus {
    init(json r: inout JSONReader) throws {
        self.init()
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "ingress": try seen.mark(0, r); ingress = try r.readOptionalArray { try Service.LoadBalancerIngress(json: &$0) }
            default: try r.skipValue()
            }
        }
    }
}

extension Service.LoadBalancerIngress {
    init(json r: inout JSONReader) throws {
        self.init()
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "ip": try seen.mark(0, r); ip = try r.readOptionalString()
            case "hostname": try seen.mark(1, r); hostname = try r.readOptionalString()
            case "ipMode": try seen.mark(2, r); ipMode = try r.readOptionalString()
            default: try r.skipValue()
            }
        }
    }
}

extension IntOrString {
    /// An integer written as one, or a string; anything else is outside the plain shape.
    init(json r: inout JSONReader) throws {
        do {
            var probe = r
            self = .int(try probe.readInt())
            r = probe
        } catch {
            self = .string(try r.readString())
        }
    }
}
