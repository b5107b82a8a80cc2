/// Kubernetes vocabulary: a v1 `Pod`, reduced to what deriving a selector Service's endpoints
/// reads (as the EndpointSlice controller does; see `EndpointSliceController`):
/// `metadata` (name, namespace, every label, `deletionTimestamp`), `spec.nodeName`, the
/// containers' ports, `status.podIP`/`status.podIPs` and the `Ready` condition. Everything
/// else (`spec.volumes`, other conditions, container statuses, …) is skipped while decoding.
/// Decoding is lenient: every field may be absent.
public struct Pod: Sendable, Hashable, Codable {
    public var apiVersion: String?
    public var kind: String?
    /// Keeps every label (Service selectors match them), not only `WellKnownKeys.labels`.
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: Status

    public init(metadata: ObjectMeta, spec: Spec = Spec(), status: Status = Status()) {
        self.apiVersion = "v1"
        self.kind = "Pod"
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try c.decodeIfPresent(String.self, forKey: .apiVersion)
        kind = try c.decodeIfPresent(String.self, forKey: .kind)
        metadata = try c.decodeIfPresent(MetadataWithAllLabels.self, forKey: .metadata)?.metadata ?? ObjectMeta()
        spec = try c.decode(.spec, default: Spec())
        status = try c.decode(.status, default: Status())
    }

    /// `metadata` decoded with every label.
    private struct MetadataWithAllLabels: Decodable {
        var metadata: ObjectMeta
        init(from decoder: any Decoder) throws { metadata = try ObjectMeta(from: decoder, keepingAllLabels: true) }
    }

    /// `spec`.
    public struct Spec: Sendable, Hashable, Codable {
        /// The node the pod was scheduled to.
        public var nodeName: String?
        public var containers: [Container]?

        public init(nodeName: String? = nil, containers: [Container]? = nil) {
            self.nodeName = nodeName
            self.containers = containers
        }
    }

    /// `spec.containers[]`: only the ports (named `targetPort`s resolve against them).
    public struct Container: Sendable, Hashable, Codable {
        public var ports: [ContainerPort]?

        public init(ports: [ContainerPort]? = nil) { self.ports = ports }
    }

    /// `spec.containers[].ports[]`. `protocol` defaults to `TCP`.
    public struct ContainerPort: Sendable, Hashable, Codable {
        public var name: String?
        public var containerPort: Int?
        public var `protocol`: String?

        public init(name: String? = nil, containerPort: Int?, protocol: String? = nil) {
            self.name = name
            self.containerPort = containerPort
            self.protocol = `protocol`
        }
    }

    /// `status`: the pod's addresses and its `Ready` condition (other conditions are dropped
    /// while decoding).
    public struct Status: Sendable, Hashable, Codable {
        public var podIP: String?
        /// One address per family (the API server makes `podIPs[0]` equal `podIP`).
        public var podIPs: [PodIP]?
        /// Only conditions of type `Ready`.
        public var conditions: [Condition]?

        public init(podIP: String? = nil, podIPs: [PodIP]? = nil, conditions: [Condition]? = nil) {
            self.podIP = podIP
            self.podIPs = podIPs
            self.conditions = conditions
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            podIP = try c.decodeIfPresent(String.self, forKey: .podIP)
            podIPs = try c.decodeIfPresent([PodIP].self, forKey: .podIPs)
            conditions = try c.decodeIfPresent([Condition].self, forKey: .conditions)?.filter { $0.type == "Ready" }
        }
    }

    /// `status.podIPs[]`.
    public struct PodIP: Sendable, Hashable, Codable {
        public var ip: String?

        public init(ip: String?) { self.ip = ip }
    }

    /// `status.conditions[]`: `type` (`Ready`, …) and `status` (`True`, `False`, `Unknown`).
    public struct Condition: Sendable, Hashable, Codable {
        public var type: String?
        public var status: String?

        public init(type: String?, status: String?) {
            self.type = type
            self.status = status
        }
    }

    /// The `Ready` condition is `True` (`podutil.IsPodReady`).
    public var isReady: Bool {
        status.conditions?.contains { $0.type == "Ready" && $0.status == "True" } ?? false
    }
}
