import SluiceModel

/// The reflectors kube-proxy runs, on one client: Services and EndpointSlices with kube-proxy's
/// label selector (or `--service-proxy-name`), the proxy's own Node, and ServiceCIDRs (a 404
/// from an older server counts as "none").
///
/// ```swift
/// let client = try KubeAPIClient(configuration: .forKubeProxy(kubeconfig: path, master: nil))
/// let reflectors = ProxyReflectors(client: client, nodeName: "node-a")
/// try await withThrowingTaskGroup(of: Void.self) { group in
///     group.addTask { await reflectors.run() }
///     group.addTask { for await change in reflectors.services.events { … } }
///     group.addTask { for await change in reflectors.endpointSlices.events { … } }
///     …
/// }
/// ```
public struct ProxyReflectors: Sendable {
    public let services: Reflector<Service>
    public let endpointSlices: Reflector<EndpointSlice>
    public let node: Reflector<Node>
    public let serviceCIDRs: Reflector<ServiceCIDR>?

    /// Synchronous consumers, one per resource (`Reflector`'s `onEvent`); without, each
    /// reflector's `events` stream carries its changes.
    public struct Handlers: Sendable {
        public var services: @Sendable (ReflectorEvent<Service>) -> Void
        public var endpointSlices: @Sendable (ReflectorEvent<EndpointSlice>) -> Void
        public var node: @Sendable (ReflectorEvent<Node>) -> Void
        public var serviceCIDRs: @Sendable (ReflectorEvent<ServiceCIDR>) -> Void

        public init(services: @escaping @Sendable (ReflectorEvent<Service>) -> Void,
                    endpointSlices: @escaping @Sendable (ReflectorEvent<EndpointSlice>) -> Void,
                    node: @escaping @Sendable (ReflectorEvent<Node>) -> Void,
                    serviceCIDRs: @escaping @Sendable (ReflectorEvent<ServiceCIDR>) -> Void) {
            self.services = services
            self.endpointSlices = endpointSlices
            self.node = node
            self.serviceCIDRs = serviceCIDRs
        }
    }

    public init(client: KubeAPIClient, nodeName: String, serviceProxyName: String? = nil,
                watchServiceCIDRs: Bool = true, options: ReflectorOptions = ReflectorOptions(), handlers: Handlers? = nil) {
        services = Reflector(client: client, resource: .services(serviceProxyName: serviceProxyName), options: options,
                             onEvent: handlers?.services)
        endpointSlices = Reflector(client: client, resource: .endpointSlices(serviceProxyName: serviceProxyName), options: options,
                                   onEvent: handlers?.endpointSlices)
        node = Reflector(client: client, resource: .node(named: nodeName), options: options, onEvent: handlers?.node)
        serviceCIDRs = watchServiceCIDRs
            ? Reflector(client: client, resource: .serviceCIDRs(), options: options, onEvent: handlers?.serviceCIDRs) : nil
    }

    /// Each reflector's counters, by resource (`services`, `endpointslices`, `node`,
    /// `servicecidrs`), with whether it has applied its first list.
    public var statistics: [(resource: String, statistics: ReflectorStatistics, synced: Bool)] {
        var out = [("services", services.statistics, services.hasSynced),
                   ("endpointslices", endpointSlices.statistics, endpointSlices.hasSynced),
                   ("node", node.statistics, node.hasSynced)]
        if let serviceCIDRs { out.append(("servicecidrs", serviceCIDRs.statistics, serviceCIDRs.hasSynced)) }
        return out
    }

    /// All reflectors have applied their first list.
    public var hasSynced: Bool {
        services.hasSynced && endpointSlices.hasSynced && node.hasSynced && (serviceCIDRs?.hasSynced ?? true)
    }

    /// Runs every reflector until the calling task is cancelled; each one's `events` then finishes.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await services.run() }
            group.addTask { await endpointSlices.run() }
            group.addTask { await node.run() }
            if let serviceCIDRs { group.addTask { await serviceCIDRs.run() } }
        }
    }
}
