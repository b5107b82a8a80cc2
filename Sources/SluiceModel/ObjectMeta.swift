/// Kubernetes vocabulary: `metadata` and the pieces of the API machinery shared by all kinds.

/// `metadata` of any object. Unknown fields (`managedFields`, `ownerReferences`, …) are ignored.
public struct ObjectMeta: Sendable, Hashable, Codable {
    public var name: String?
    public var generateName: String?
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int?
    public var creationTimestamp: String?
    /// Set when the object is being deleted (RFC 3339 text, kept as is).
    public var deletionTimestamp: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?

    public init(name: String? = nil, namespace: String? = nil, labels: [String: String]? = nil,
                annotations: [String: String]? = nil, resourceVersion: String? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
        self.resourceVersion = resourceVersion
    }

    public func label(_ key: String) -> String? { labels?[key] }
    public func annotation(_ key: String) -> String? { annotations?[key] }
}

/// Well-known label and annotation keys.
public enum WellKnownKeys {
    /// EndpointSlice label naming the Service it belongs to.
    public static let serviceName = "kubernetes.io/service-name"
    /// Node label read for topology hints.
    public static let topologyZone = "topology.kubernetes.io/zone"
    /// EndpointSlice annotation: Sluice endpoint weight (integer 0…1000, default 1).
    public static let weight = "sluice.dev/weight"
    /// EndpointSlice annotation set by the controller (used for latency metrics).
    public static let lastChangeTriggerTime = "endpoints.kubernetes.io/last-change-trigger-time"
    /// Label that hands a Service to another proxy; kube-proxy's selector excludes it.
    public static let serviceProxyName = "service.kubernetes.io/service-proxy-name"
    /// Label the EndpointSlice controller sets on slices of headless Services.
    public static let headless = "service.kubernetes.io/headless"
}

/// `apiVersion` + `kind`, read first to decide how to decode a document.
public struct TypeMeta: Sendable, Hashable, Codable {
    public var apiVersion: String?
    public var kind: String?

    public init(apiVersion: String? = nil, kind: String? = nil) {
        self.apiVersion = apiVersion
        self.kind = kind
    }
}

/// `intstr.IntOrString`, e.g. a Service port's `targetPort` (`8080` or `http`).
public enum IntOrString: Sendable, Hashable, Codable, CustomStringConvertible {
    case int(Int)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Int.self) {
            self = .int(v)
        } else {
            self = .string(try c.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let v): try c.encode(v)
        case .string(let s): try c.encode(s)
        }
    }

    public var description: String {
        switch self {
        case .int(let v): "\(v)"
        case .string(let s): s
        }
    }
}

extension KeyedDecodingContainer {
    /// Lenient decoding: a missing key or `null` gives `fallback`.
    func decode<T: Decodable>(_ key: Key, default fallback: @autoclosure () -> T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback()
    }
}
