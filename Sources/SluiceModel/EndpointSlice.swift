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

extension EndpointSlice {
    /// Reads an EndpointSlice as `init(from:)` does through `JSONDecoder` (see `JSONReader`).
    public init(json r: inout JSONReader) throws {
        var (apiVersion, kind, addressType): (String?, String?, String?) = (nil, nil, nil)
        var metadata = ObjectMeta()
        var endpoints: [Endpoint]? = nil
        var ports: [Port]? = nil
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "apiVersion": try seen.mark(0, r); apiVersion = try r.readOptionalString()
            case "kind": try seen.mark(1, r); kind = try r.readOptionalString()
            case "metadata": try seen.mark(2, r); metadata = try r.readOptional { try ObjectMeta(json: &$0) } ?? ObjectMeta()
            case "addressType": try seen.mark(3, r); addressType = try r.readOptionalString()
            case "endpoints": try seen.mark(4, r); endpoints = try r.readOptionalArray { try Endpoint(json: &$0) }
            case "ports": try seen.mark(5, r); ports = try r.readOptionalArray { try Port(json: &$0) }
            default: try r.skipValue()
            }
        }
        self.init(metadata: metadata, addressType: addressType, endpoints: endpoints, ports: ports)
        self.apiVersion = apiVersion
        self.kind = kind
    }
}

extension EndpointSlice.Endpoint {
    init(json r: inout JSONReader) throws {
        self.init(addresses: [])
        addresses = nil
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "addresses": try seen.mark(0, r); addresses = try r.readOptionalStrings()
            case "conditions": try seen.mark(1, r); conditions = try r.readOptional { try EndpointSlice.Conditions(json: &$0) }
            case "nodeName": try seen.mark(2, r); nodeName = try r.readOptionalString()
            case "zone": try seen.mark(3, r); zone = try r.readOptionalString()
            case "hints": try seen.mark(4, r); hints = try r.readOptional { try EndpointSlice.Hints(json: &$0) }
            default: try r.skipValue()
            }
        }
    }
}

extension EndpointSlice.Conditions {
    init(json r: inout JSONReader) throws {
        self.init()
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "ready": try seen.mark(0, r); ready = try r.readOptionalBool()
            case "serving": try seen.mark(1, r); serving = try r.readOptionalBool()
            case "terminating": try seen.mark(2, r); terminating = try r.readOptionalBool()
            default: try r.skipValue()
            }
        }
    }
}

extension EndpointSlice.Hints {
    init(json r: inout JSONReader) throws {
        self.init()
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "forZones":
                try seen.mark(0, r)
                forZones = try r.readOptionalArray { EndpointSlice.ForZone(name: try Self.name(&$0)) }
            case "forNodes":
                try seen.mark(1, r)
                forNodes = try r.readOptionalArray { EndpointSlice.ForNode(name: try Self.name(&$0)) }
            default: try r.skipValue()
            }
        }
    }

    /// `{"name": …}` of a zone or node hint.
    private static func name(_ r: inout JSONReader) throws -> String? {
        var name: String? = nil
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "name": try seen.mark(0, r); name = try r.readOptionalString()
            default: try r.skipValue()
            }
        }
        return name
    }
}

extension EndpointSlice.Port {
    init(json r: inout JSONReader) throws {
        self.init(port: nil)
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "name": try seen.mark(0, r); name = try r.readOptionalString()
            case "protocol": try seen.mark(1, r); self.protocol = try r.readOptionalString()
            case "port": try seen.mark(2, r); port = try r.readOptionalInt()
            default: try r.skipValue()
            }
        }
    }
}
