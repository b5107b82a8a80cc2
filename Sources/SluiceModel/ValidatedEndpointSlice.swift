/// An EndpointSlice that passed validation: addresses parsed and normalized, conditions
/// resolved (ready/serving default true, terminating default false), port names and
/// protocols defaulted, weight read. Bad ports and endpoints are dropped individually.
public struct ValidatedEndpointSlice: Sendable, Hashable {
    /// `metadata.name`.
    public var sliceName: String
    /// `metadata.namespace` / label `kubernetes.io/service-name`.
    public var service: ServiceName
    public var file: String?
    /// `addressType` (FQDN slices are never validated).
    public var family: IPFamily
    public var ports: [Port]
    public var endpoints: [Endpoint]
    /// Annotation `sluice.dev/weight` (0…1000, default 1), applied to every endpoint.
    public var weight: UInt32
    /// For a slice derived from Pods (`EndpointSliceController`): the pod behind each
    /// endpoint (`namespace/name`, parallel to `endpoints`); nil for an EndpointSlice given as one.
    public var pods: [String]?

    /// One `ports[]` entry with a usable port number.
    public struct Port: Sendable, Hashable {
        public var name: String
        public var proto: L4Protocol
        public var port: UInt16

        public init(name: String = "", proto: L4Protocol = .tcp, port: UInt16) {
            self.name = name
            self.proto = proto
            self.port = port
        }
    }

    /// One `endpoints[]` entry: only `addresses[0]` is used, as in kube-proxy.
    public struct Endpoint: Sendable, Hashable {
        public var address: IPAddress
        public var ready: Bool
        public var serving: Bool
        public var terminating: Bool
        public var nodeName: String?
        public var zone: String?
        public var zoneHints: [String]
        public var nodeHints: [String]

        public init(address: IPAddress, ready: Bool = true, serving: Bool = true, terminating: Bool = false,
                    nodeName: String? = nil, zone: String? = nil, zoneHints: [String] = [], nodeHints: [String] = []) {
            self.address = address
            self.ready = ready
            self.serving = serving
            self.terminating = terminating
            self.nodeName = nodeName
            self.zone = zone
            self.zoneHints = zoneHints
            self.nodeHints = nodeHints
        }
    }

    public init(sliceName: String, service: ServiceName, file: String? = nil, family: IPFamily, ports: [Port],
                endpoints: [Endpoint], weight: UInt32 = 1, pods: [String]? = nil) {
        self.sliceName = sliceName
        self.service = service
        self.file = file
        self.family = family
        self.ports = ports
        self.endpoints = endpoints
        self.weight = weight
        self.pods = pods
    }
}

/// What validating one EndpointSlice gave.
public enum EndpointSliceValidationOutcome: Sendable, Hashable {
    case valid(ValidatedEndpointSlice)
    /// `addressType: FQDN`: ignored by kube-proxy, no diagnostic.
    case ignored
    case rejected
}
