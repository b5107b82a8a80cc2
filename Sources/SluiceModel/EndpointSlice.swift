/// Kubernetes vocabulary: a discovery.k8s.io/v1 `EndpointSlice`. Lenient decoding:
/// `"endpoints": null` and `"ports": null` (how the API server serves empty slices) are fine.
public struct EndpointSlice: Sendable, Hashable, Codable {
    public var apiVersion: String?
    public var kind: String?
    public var metadata: ObjectMeta
    /// `IPv4`, `IPv6` or `FQDN`.
    public var addressType: String?
    public var endpoints: [Endpoint]?
    public var ports: [Port]?

    public init(metadata: ObjectMeta, addressType: String?, endpoints: [Endpoint]?, ports: [Port]?) {
        self.apiVersion = "discovery.k8s.io/v1"
        self.kind = "EndpointSlice"
        self.metadata = metadata
        self.addressType = addressType
        self.endpoints = endpoints
        self.ports = ports
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try c.decodeIfPresent(String.self, forKey: .apiVersion)
        kind = try c.decodeIfPresent(String.self, forKey: .kind)
        metadata = try c.decode(.metadata, default: ObjectMeta())
        addressType = try c.decodeIfPresent(String.self, forKey: .addressType)
        endpoints = try c.decodeIfPresent([Endpoint].self, forKey: .endpoints)
        ports = try c.decodeIfPresent([Port].self, forKey: .ports)
    }

    /// The Service this slice belongs to: `metadata.namespace` / label `kubernetes.io/service-name`.
    public var serviceName: ServiceName? {
        guard let svc = metadata.label(WellKnownKeys.serviceName), !svc.isEmpty else { return nil }
        return ServiceName(namespace: metadata.namespace ?? "default", name: svc)
    }

    /// `endpoints[]`. `targetRef`, `hostname` and `deprecatedTopology` are not read.
    public struct Endpoint: Sendable, Hashable, Codable {
        /// 1…100 addresses; kube-proxy uses only the first.
        public var addresses: [String]?
        public var conditions: Conditions?
        public var nodeName: String?
        public var zone: String?
        public var hints: Hints?

        public init(addresses: [String], conditions: Conditions? = nil, nodeName: String? = nil,
                    zone: String? = nil, hints: Hints? = nil) {
            self.addresses = addresses
            self.conditions = conditions
            self.nodeName = nodeName
            self.zone = zone
            self.hints = hints
        }
    }

    /// `endpoints[].conditions` (each may be absent: ready/serving default true, terminating false).
    public struct Conditions: Sendable, Hashable, Codable {
        public var ready: Bool?
        public var serving: Bool?
        public var terminating: Bool?

        public init(ready: Bool? = nil, serving: Bool? = nil, terminating: Bool? = nil) {
            self.ready = ready
            self.serving = serving
            self.terminating = terminating
        }
    }

    /// `endpoints[].hints`.
    public struct Hints: Sendable, Hashable, Codable {
        public var forZones: [ForZone]?
        public var forNodes: [ForNode]?

        public init(forZones: [String]? = nil, forNodes: [String]? = nil) {
            self.forZones = forZones?.map { ForZone(name: $0) }
            self.forNodes = forNodes?.map { ForNode(name: $0) }
        }
    }

    /// `hints.forZones[]`.
    public struct ForZone: Sendable, Hashable, Codable {
        public var name: String?
        public init(name: String?) { self.name = name }
    }

    /// `hints.forNodes[]`.
    public struct ForNode: Sendable, Hashable, Codable {
        public var name: String?
        public init(name: String?) { self.name = name }
    }

    /// `ports[]`: `name` defaults to `""`, `protocol` to `TCP`; a missing `port` means "all
    /// ports", which kube-proxy ignores.
    public struct Port: Sendable, Hashable, Codable {
        public var name: String?
        public var `protocol`: String?
        public var port: Int?

        public init(name: String? = nil, protocol: String? = nil, port: Int?) {
            self.name = name
            self.protocol = `protocol`
            self.port = port
        }
    }
}
