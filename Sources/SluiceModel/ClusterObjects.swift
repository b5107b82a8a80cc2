/// An API object together with the manifest file it was read from (nil when it came from
/// the API server), so that diagnostics can name the file.
public struct Sourced<Object: Sendable & Hashable>: Sendable, Hashable {
    public var object: Object
    public var file: String?

    public init(_ object: Object, file: String? = nil) {
        self.object = object
        self.file = file
    }
}

/// The Kubernetes objects a node proxy consumes: Services, EndpointSlices, Nodes,
/// ServiceCIDRs and (from manifests) Pods, in load order.
public struct ClusterObjects: Sendable, Hashable {
    public var services: [Sourced<Service>]
    public var endpointSlices: [Sourced<EndpointSlice>]
    public var nodes: [Sourced<Node>]
    public var serviceCIDRs: [Sourced<ServiceCIDR>]
    /// Endpoints of selector Services that have no EndpointSlice (`EndpointSliceController`).
    public var pods: [Sourced<Pod>]

    public init(services: [Sourced<Service>] = [], endpointSlices: [Sourced<EndpointSlice>] = [],
                nodes: [Sourced<Node>] = [], serviceCIDRs: [Sourced<ServiceCIDR>] = [], pods: [Sourced<Pod>] = []) {
        self.services = services
        self.endpointSlices = endpointSlices
        self.nodes = nodes
        self.serviceCIDRs = serviceCIDRs
        self.pods = pods
    }

    /// Convenience for tests and callers that have bare objects.
    public init(services: [Service], endpointSlices: [EndpointSlice] = [], nodes: [Node] = [],
                serviceCIDRs: [ServiceCIDR] = [], pods: [Pod] = [], file: String? = nil) {
        self.init(services: services.map { Sourced($0, file: file) },
                  endpointSlices: endpointSlices.map { Sourced($0, file: file) },
                  nodes: nodes.map { Sourced($0, file: file) },
                  serviceCIDRs: serviceCIDRs.map { Sourced($0, file: file) },
                  pods: pods.map { Sourced($0, file: file) })
    }

    public var isEmpty: Bool {
        services.isEmpty && endpointSlices.isEmpty && nodes.isEmpty && serviceCIDRs.isEmpty && pods.isEmpty
    }

    public var count: Int { services.count + endpointSlices.count + nodes.count + serviceCIDRs.count + pods.count }

    public mutating func append(contentsOf other: ClusterObjects) {
        services += other.services
        endpointSlices += other.endpointSlices
        nodes += other.nodes
        serviceCIDRs += other.serviceCIDRs
        pods += other.pods
    }

    /// The Node named `name` (the first one if several are given).
    public func node(named name: String) -> Sourced<Node>? {
        nodes.first { $0.object.metadata.name?.lowercased() == name }
    }
}
