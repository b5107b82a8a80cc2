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
    ///
    /// 32 bytes: the address, the three conditions, and the endpoint's `Placement` (node,
    /// zone, hints), which endpoints share. The planner holds every validated endpoint for
    /// its slice's life: a million of them at 100k services × 10 endpoints.
    public struct Endpoint: Sendable, Hashable {
        public var address: IPAddress
        public var ready: Bool
        public var serving: Bool
        public var terminating: Bool
        /// nil: no node, no zone, no hints.
        public var placement: Placement?

        /// `nodeName`.
        public var nodeName: String? {
            get { placement?.nodeName }
            set { placement = Placement.make(nodeName: newValue, zone: zone, zoneHints: zoneHints, nodeHints: nodeHints) }
        }
        /// `zone`.
        public var zone: String? {
            get { placement?.zone }
            set { placement = Placement.make(nodeName: nodeName, zone: newValue, zoneHints: zoneHints, nodeHints: nodeHints) }
        }
        /// `hints.forZones[].name`.
        public var zoneHints: [String] {
            get { placement?.zoneHints ?? [] }
            set { placement = Placement.make(nodeName: nodeName, zone: zone, zoneHints: newValue, nodeHints: nodeHints) }
        }
        /// `hints.forNodes[].name`.
        public var nodeHints: [String] {
            get { placement?.nodeHints ?? [] }
            set { placement = Placement.make(nodeName: nodeName, zone: zone, zoneHints: zoneHints, nodeHints: newValue) }
        }

        public init(address: IPAddress, ready: Bool = true, serving: Bool = true, terminating: Bool = false,
                    nodeName: String? = nil, zone: String? = nil, zoneHints: [String] = [], nodeHints: [String] = []) {
            self.init(address: address, ready: ready, serving: serving, terminating: terminating,
                      placement: Placement.make(nodeName: nodeName, zone: zone, zoneHints: zoneHints, nodeHints: nodeHints))
        }

        public init(address: IPAddress, ready: Bool, serving: Bool, terminating: Bool, placement: Placement?) {
            self.address = address
            self.ready = ready
            self.serving = serving
            self.terminating = terminating
            self.placement = placement
        }
    }

    /// Where an endpoint runs and the topology hints it carries: `nodeName`, `zone`,
    /// `hints.forZones`, `hints.forNodes`. Immutable and compared by value; endpoints with
    /// equal placements share one instance where the planner validates them
    /// (`NameInterner.placement`), so there are about as many as nodes, not endpoints.
    public final class Placement: Sendable, Hashable, CustomStringConvertible {
        public let nodeName: String?
        public let zone: String?
        public let zoneHints: [String]
        public let nodeHints: [String]

        init(nodeName: String?, zone: String?, zoneHints: [String], nodeHints: [String]) {
            self.nodeName = nodeName
            self.zone = zone
            self.zoneHints = zoneHints
            self.nodeHints = nodeHints
        }

        /// A placement with these fields; nil when all are empty (the endpoint then has none).
        public static func make(nodeName: String?, zone: String?, zoneHints: [String], nodeHints: [String]) -> Placement? {
            if nodeName == nil && zone == nil && zoneHints.isEmpty && nodeHints.isEmpty { return nil }
            return Placement(nodeName: nodeName, zone: zone, zoneHints: zoneHints, nodeHints: nodeHints)
        }

        /// Whether it has exactly these fields.
        func holds(nodeName: String?, zone: String?, zoneHints: [String], nodeHints: [String]) -> Bool {
            self.nodeName == nodeName && self.zone == zone && self.zoneHints == zoneHints && self.nodeHints == nodeHints
        }

        public static func == (a: Placement, b: Placement) -> Bool {
            a === b || b.holds(nodeName: a.nodeName, zone: a.zone, zoneHints: a.zoneHints, nodeHints: a.nodeHints)
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(nodeName)
            hasher.combine(zone)
            hasher.combine(zoneHints)
            hasher.combine(nodeHints)
        }

        public var description: String {
            "node \(nodeName ?? "-") zone \(zone ?? "-") hints \(zoneHints)/\(nodeHints)"
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
