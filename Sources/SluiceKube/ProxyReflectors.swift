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

    public init(client: KubeAPIClient, nodeName: String, serviceProxyName: String? = nil,
                watchServiceCIDRs: Bool = true, options: ReflectorOptions = ReflectorOptions()) {
        services = Reflector(client: client, resource: .services(serviceProxyName: serviceProxyName), options: options)
        endpointSlices = Reflector(client: client, resource: .endpointSlices(serviceProxyName: serviceProxyName), options: options)
        node = Reflector(client: client, resource: .node(named: nodeName), options: options)
        serviceCIDRs = watchServiceCIDRs ? Reflector(client: client, resource: .serviceCIDRs(), options: options) : nil
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
