/// Kubernetes vocabulary: a v1 `Node`, reduced to what a node proxy reads: labels (zone),
/// `spec.podCIDRs`, taints, `status.addresses`.
public struct Node: Sendable, Hashable, Codable {
    public var apiVersion: String?
    public var kind: String?
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: Status

    public init(metadata: ObjectMeta, spec: Spec = Spec(), status: Status = Status()) {
        self.apiVersion = "v1"
        self.kind = "Node"
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

    /// The `topology.kubernetes.io/zone` label.
    public var zone: String? { metadata.label(WellKnownKeys.topologyZone) }

    /// `spec.podCIDRs`, falling back to `spec.podCIDR`.
    public var podCIDRStrings: [String] {
        if let cidrs = spec.podCIDRs, !cidrs.isEmpty { return cidrs }
        return spec.podCIDR.map { [$0] } ?? []
    }

    /// `spec`.
    public struct Spec: Sendable, Hashable, Codable {
        public var podCIDR: String?
        public var podCIDRs: [String]?
        public var taints: [Taint]?

        public init(podCIDR: String? = nil, podCIDRs: [String]? = nil, taints: [Taint]? = nil) {
            self.podCIDR = podCIDR
            self.podCIDRs = podCIDRs
            self.taints = taints
        }
    }

    /// `spec.taints[]` (e.g. `ToBeDeletedByClusterAutoscaler` marks a draining node).
    public struct Taint: Sendable, Hashable, Codable {
        public var key: String?
        public var value: String?
        public var effect: String?

        public init(key: String?, value: String? = nil, effect: String? = nil) {
            self.key = key
            self.value = value
            self.effect = effect
        }
    }

    /// `status`.
    public struct Status: Sendable, Hashable, Codable {
        public var addresses: [Address]?

        public init(addresses: [Address]? = nil) { self.addresses = addresses }
    }

    /// `status.addresses[]`: `type` is `InternalIP`, `ExternalIP`, `Hostname`, …
    public struct Address: Sendable, Hashable, Codable {
        public var type: String?
        public var address: String?

        public init(type: String?, address: String?) {
            self.type = type
            self.address = address
        }
    }
}
