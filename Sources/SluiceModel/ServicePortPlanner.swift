/// Plans ONE service in one family, independently of every other service: the unit a
/// long-running daemon re-runs when a Service or one of its EndpointSlices changes.
public enum ServicePortPlanner {
    /// One `ServicePortPlan` per service port, or none when the service has no ClusterIP of
    /// `context.family`. `slices` are the service's EndpointSlices (any family; others are
    /// skipped). `zone` is this node's `topology.kubernetes.io/zone` label.
    public static func plan(service: ValidatedService, slices: [ValidatedEndpointSlice], context: FamilyContext,
                            zone: String?) -> [ServicePortPlan] {
        let family = context.family
        guard let clusterIP = service.clusterIP(for: family) else { return [] }
        let endpointsMap = EndpointsMap(slices: slices, family: family, nodeName: context.nodeName)
        let localReady = endpointsMap.localReadyEndpointCount
        let externalIPs = service.externalIPs.filter { $0.family == family }
        let vips = service.loadBalancerVIPs.filter { $0.family == family }
        let ranges = service.loadBalancerSourceRanges.filter { $0.family == family }
        return service.ports.map { port in
            var plan = ServicePortPlan(
                name: ServicePortName(service: service.name, port: port.name, proto: port.proto),
                family: family, clusterIP: clusterIP, port: port.port, nodePort: port.nodePort,
                externalIPs: externalIPs, loadBalancerIPs: vips, loadBalancerSourceRanges: ranges,
                affinityTimeoutSeconds: service.affinityTimeoutSeconds,
                externalPolicyLocal: service.externalPolicyLocal, internalPolicyLocal: service.internalPolicyLocal,
                healthCheckNodePort: service.healthCheckNodePort, hasAnyEndpoints: false,
                localReadyEndpointCount: localReady, loadBalancing: service.loadBalancing)
            let categorized = CategorizedEndpoints(
                endpoints: endpointsMap.endpoints(name: port.name, proto: port.proto),
                usesClusterEndpoints: plan.usesClusterEndpoints, usesLocalEndpoints: plan.usesLocalEndpoints,
                nodeName: context.nodeName, zone: zone)
            plan.clusterEndpoints = categorized.clusterEndpoints.map(WeightedEndpoint.init)
            plan.localEndpoints = categorized.localEndpoints.map(WeightedEndpoint.init)
            plan.hasAnyEndpoints = categorized.hasAnyEndpoints
            return plan
        }
    }
}

extension WeightedEndpoint {
    /// The endpoint's address and port with its slice weight.
    public init(_ endpoint: Endpoint) {
        self.init(ip: endpoint.ip, port: endpoint.port, weight: endpoint.weight)
    }
}

extension Array where Element == WeightedEndpoint {
    /// Sum of weights; 0 means the group takes no new connections (see `ServicePortPlan`).
    public var totalWeight: UInt64 { reduce(0) { $0 + UInt64($1.weight) } }
}

extension NodeContext {
    /// Plans one service for every family of this node (see `ServicePortPlanner`).
    public func planServicePorts(_ service: ValidatedService, slices: [ValidatedEndpointSlice]) -> ServicePlans {
        var out = ServicePlans()
        for context in families {
            let ports = ServicePortPlanner.plan(service: service, slices: slices, context: context, zone: zone)
            if !ports.isEmpty { out.append(context.family, ports) }
        }
        return out
    }
}
