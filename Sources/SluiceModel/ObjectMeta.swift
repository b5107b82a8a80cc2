/// Kubernetes vocabulary: `metadata` and the pieces of the API machinery shared by all kinds.

/// `metadata` of any object, reduced to what the proxy reads. Everything else (`managedFields`,
/// `ownerReferences`, `uid`, …) is skipped while decoding, and so are labels and annotations the
/// proxy does not read (`WellKnownKeys.labels`, `WellKnownKeys.annotations`): a cached object
/// holds no `kubectl.kubernetes.io/last-applied-configuration` copy of itself, and a change of
/// a foreign label is no change.
public struct ObjectMeta: Sendable, Hashable, Codable {
    public var name: String?
    public var namespace: String?
    public var resourceVersion: String?
    /// Set when the object is being deleted (RFC 3339 text, kept as is).
    public var deletionTimestamp: String?
    /// The labels among `WellKnownKeys.labels` (every label for a Pod, whose labels Service
    /// selectors match); nil when none.
    public var labels: [String: String]?
    /// The annotations among `WellKnownKeys.annotations`; nil when none.
    public var annotations: [String: String]?

    public init(name: String? = nil, namespace: String? = nil, labels: [String: String]? = nil,
                annotations: [String: String]? = nil, resourceVersion: String? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
        self.resourceVersion = resourceVersion
    }

    public init(from decoder: any Decoder) throws {
        try self.init(from: decoder, keepingAllLabels: false)
    }

    /// Decodes `metadata`; with `keepingAllLabels` every label is kept (a Pod's, which
    /// Service selectors match), else only `WellKnownKeys.labels`.
    public init(from decoder: any Decoder, keepingAllLabels: Bool) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        namespace = try c.decodeIfPresent(String.self, forKey: .namespace)
        resourceVersion = try c.decodeIfPresent(String.self, forKey: .resourceVersion)
        deletionTimestamp = try c.decodeIfPresent(String.self, forKey: .deletionTimestamp)
        if keepingAllLabels {
            labels = try c.decodeIfPresent([String: String].self, forKey: .labels).flatMap { $0.isEmpty ? nil : $0 }
        } else {
            labels = try c.decodeIfPresent(KeptEntries<KeptLabel>.self, forKey: .labels)?.entries
        }
        annotations = try c.decodeIfPresent(KeptEntries<KeptAnnotation>.self, forKey: .annotations)?.entries
    }

    public func label(_ key: String) -> String? { labels?[key] }
    public func annotation(_ key: String) -> String? { annotations?[key] }
}

/// The labels the proxy reads (`WellKnownKeys.labels`).
enum KeptLabel: String, CodingKey, CaseIterable {
    case serviceName = "kubernetes.io/service-name"
    case topologyZone = "topology.kubernetes.io/zone"
    case serviceProxyName = "service.kubernetes.io/service-proxy-name"
    case headless = "service.kubernetes.io/headless"
}

/// The annotations the proxy reads (`WellKnownKeys.annotations`).
enum KeptAnnotation: String, CodingKey, CaseIterable {
    case weight = "sluice.dev/weight"
    case loadBalancing = "sluice.dev/load-balancing"
    case lastChangeTriggerTime = "endpoints.kubernetes.io/last-change-trigger-time"
}

/// A string map of which only the keys `Key` names are decoded; other entries are skipped
/// unread (their values may even be malformed). Empty gives nil.
/// Over YAML (`NodeDecoder`) the keys are matched as bytes, without a String per key.
struct KeptEntries<Key: CodingKey & RawRepresentable<String> & CaseIterable>: Decodable {
    var entries: [String: String]?

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        var out: [String: String] = [:]
        for key in (decoder as? NodeDecoder)?.caseKeys(Key.self) ?? c.allKeys {
            if let value = try c.decodeIfPresent(String.self, forKey: key) { out[key.rawValue] = value }
        }
        entries = out.isEmpty ? nil : out
    }
}

/// Well-known label and annotation keys.
public enum WellKnownKeys {
    /// EndpointSlice label naming the Service it belongs to.
    public static let serviceName = "kubernetes.io/service-name"
    /// Node label read for topology hints.
    public static let topologyZone = "topology.kubernetes.io/zone"
    /// EndpointSlice annotation: Sluice endpoint weight (integer 0…1000, default 1).
    public static let weight = "sluice.dev/weight"
    /// Service annotation: how new connections pick an endpoint (`LoadBalancing`).
    public static let loadBalancing = "sluice.dev/load-balancing"
    /// EndpointSlice annotation set by the controller (used for latency metrics).
    public static let lastChangeTriggerTime = "endpoints.kubernetes.io/last-change-trigger-time"
    /// Label that hands a Service to another proxy; kube-proxy's selector excludes it.
    public static let serviceProxyName = "service.kubernetes.io/service-proxy-name"
    /// Label the EndpointSlice controller sets on slices of headless Services.
    public static let headless = "service.kubernetes.io/headless"

    /// The labels decoding keeps; any other label is dropped.
    public static let labels: Set<String> = Set(KeptLabel.allCases.map(\.rawValue))
    /// The annotations decoding keeps; any other annotation is dropped.
    public static let annotations: Set<String> = Set(KeptAnnotation.allCases.map(\.rawValue))
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

extension ObjectMeta {
    /// Reads `metadata` as `init(from:)` does through `JSONDecoder` (see `JSONReader`).
    public init(json r: inout JSONReader) throws {
        self.init()
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "name": try seen.mark(0, r); name = try r.readOptionalString()
            case "namespace": try seen.mark(1, r); namespace = try r.readOptionalString()
            case "resourceVersion": try seen.mark(2, r); resourceVersion = try r.readOptionalString()
            case "deletionTimestamp": try seen.mark(3, r); deletionTimestamp = try r.readOptionalString()
            case "labels": try seen.mark(4, r); labels = try Self.keptEntries(&r, KeptLabel.self)
            case "annotations": try seen.mark(5, r); annotations = try Self.keptEntries(&r, KeptAnnotation.self)
            default: try r.skipValue()
            }
        }
    }

    /// `KeptEntries`: the entries `Key` names, other values skipped unread; empty gives nil.
    private static func keptEntries<Key: CaseIterable & RawRepresentable<String>>(
        _ r: inout JSONReader, _ keys: Key.Type
    ) throws -> [String: String]? {
        guard try !r.readNull() else { return nil }
        var out: [String: String] = [:]
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            for (n, kept) in Key.allCases.enumerated() where key.equals(kept.rawValue) {
                try seen.mark(n, r)
                if let value = try r.readOptionalString() { out[kept.rawValue] = value }
                return
            }
            try r.skipValue()
        }
        return out.isEmpty ? nil : out
    }
}
