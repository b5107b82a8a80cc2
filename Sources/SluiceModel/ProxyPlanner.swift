/// What `ProxyPlanner.plan` produces.
public struct PlanResult: Sendable, Hashable {
    /// The compiler's input.
    public var plan: ProxyPlan
    /// Everything left out or suspicious, in pipeline order. Never fatal.
    public var diagnostics: [Diagnostic]
    /// The node context the plan was made for.
    public var nodeContext: NodeContext
    /// The services that were planned (validated, conflict-free), sorted by name.
    public var services: [ValidatedService]

    public var errors: [Diagnostic] { diagnostics.filter(\.isError) }
    public var warnings: [Diagnostic] { diagnostics.filter { !$0.isError } }
}

/// Objects + NodeOptions → `ProxyPlan`, with kube-proxy's semantics:
///
/// 1. ServiceCIDRs and this node's Node object (by node name) are read.
/// 2. Each Service is validated on its own (`ServiceValidator`); ExternalName and headless
///    services are reported as skipped.
/// 3. The cross-service pass (`ServiceConflictChecker`) rejects later claimants of a
///    ClusterIP or NodePort.
/// 4. EndpointSlices are validated (`EndpointSliceValidator`) and grouped per service.
/// 5. The node context is resolved (`NodeContext.resolve`) and every service is planned per
///    family (`ServicePortPlanner`).
///
/// Objects outside kube-proxy's label selector (`matchesProxySelector`) are dropped silently,
/// as the API server would never send them. Duplicate objects (same kind and
/// namespace/name) keep the first one loaded.
public struct ProxyPlanner: Sendable {
    public var options: NodeOptions
    /// Host interface addresses for CIDR entries of `nodePortAddresses` (nil: use the
    /// Node's addresses and `--node-ip`).
    public var hostAddresses: [IPAddress]?

    public init(options: NodeOptions, hostAddresses: [IPAddress]? = nil) {
        self.options = options
        self.hostAddresses = hostAddresses
    }

    /// kube-proxy's label selector (applied server-side to Services and EndpointSlices):
    /// `!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name`; with a
    /// proxy name, `!service.kubernetes.io/headless,service.kubernetes.io/service-proxy-name=NAME`.
    public static func matchesProxySelector(_ metadata: ObjectMeta, serviceProxyName: String? = nil) -> Bool {
        guard metadata.label(WellKnownKeys.headless) == nil else { return false }
        return metadata.label(WellKnownKeys.serviceProxyName) == serviceProxyName
    }

    public func plan(_ objects: ClusterObjects) -> PlanResult {
        var diagnostics: [Diagnostic] = []
        var objects = objects
        let proxyName = options.serviceProxyName
        objects.services.removeAll { !Self.matchesProxySelector($0.object.metadata, serviceProxyName: proxyName) }
        objects.endpointSlices.removeAll { !Self.matchesProxySelector($0.object.metadata, serviceProxyName: proxyName) }
        let serviceCIDRs = collectServiceCIDRs(objects.serviceCIDRs, &diagnostics)
        let node = findNode(objects.nodes, &diagnostics)

        let validator = ServiceValidator(nodePortRange: options.nodePortRange, serviceCIDRs: serviceCIDRs)
        var valid: [ValidatedService] = []
        var skipped: [SkippedService] = []
        for sourced in dedupe(objects.services, kind: "Service", key: { $0.serviceName }, &diagnostics) {
            let (outcome, d) = validator.validate(sourced.object, file: sourced.file)
            diagnostics += d
            switch outcome {
            case .valid(let s): valid.append(s)
            case .skipped(let s): skipped.append(s)
            case .rejected: break
            }
        }
        let (services, conflicts) = ServiceConflictChecker().check(valid)
        diagnostics += conflicts

        let knownServices = Set(objects.services.map(\.object.serviceName))
        let slicesByService = collectSlices(objects.endpointSlices, knownServices: knownServices, &diagnostics)

        let (context, nodeDiagnostics) = NodeContext.resolve(
            options: options, node: node?.object, serviceCIDRs: serviceCIDRs,
            serviceFamilies: Set(services.flatMap(\.families)), hostAddresses: hostAddresses)
        diagnostics += nodeDiagnostics

        var portsByFamily: [IPFamily: [ServicePortPlan]] = [:]
        for service in services {
            for (family, ports) in context.planServicePorts(service, slices: slicesByService[service.name] ?? []) {
                portsByFamily[family, default: []] += ports
            }
        }
        let families = context.families.map { FamilyPlan(context: $0, servicePorts: portsByFamily[$0.family] ?? []) }
        diagnostics += unreachableNodePortWarnings(families)
        return PlanResult(plan: ProxyPlan(families: families, skipped: skipped), diagnostics: diagnostics,
                          nodeContext: context, services: services)
    }

    private func collectServiceCIDRs(_ objects: [Sourced<ServiceCIDR>], _ diagnostics: inout [Diagnostic]) -> [CIDR] {
        var cidrs = Set<CIDR>()
        for sourced in objects {
            let (c, d) = sourced.object.validatedCIDRs(file: sourced.file)
            cidrs.formUnion(c)
            diagnostics += d
        }
        return cidrs.sorted()
    }

    private func findNode(_ nodes: [Sourced<Node>], _ diagnostics: inout [Diagnostic]) -> Sourced<Node>? {
        if let node = nodes.first(where: { $0.object.metadata.name?.lowercased() == options.nodeName }) { return node }
        if !nodes.isEmpty {
            let names = nodes.compactMap(\.object.metadata.name).joined(separator: ", ")
            diagnostics.append(Diagnostic(severity: .warning, kind: "Node", name: options.nodeName,
                                          message: "not among the given Nodes (\(names)); node IPs, pod CIDRs and zone are unknown"))
        }
        return nil
    }

    private func collectSlices(_ objects: [Sourced<EndpointSlice>], knownServices: Set<ServiceName>,
                               _ diagnostics: inout [Diagnostic]) -> [ServiceName: [ValidatedEndpointSlice]] {
        let validator = EndpointSliceValidator()
        var out: [ServiceName: [ValidatedEndpointSlice]] = [:]
        let unique = dedupe(objects, kind: "EndpointSlice",
                            key: { ServiceName(namespace: $0.metadata.namespace ?? "default", name: $0.metadata.name ?? "") },
                            &diagnostics)
        for sourced in unique {
            let (outcome, d) = validator.validate(sourced.object, file: sourced.file)
            diagnostics += d
            guard case .valid(let slice) = outcome else { continue }
            if !knownServices.contains(slice.service) {
                diagnostics.append(DiagnosticContext(file: slice.file, kind: "EndpointSlice", namespace: slice.service.namespace,
                                                     name: slice.sliceName)
                    .warning("metadata.labels[\"\(WellKnownKeys.serviceName)\"]", "no Service \(slice.service); slice unused"))
            }
            out[slice.service, default: []].append(slice)
        }
        return out
    }

    /// Keeps the first object per key; later ones get a warning naming where the first came from.
    private func dedupe<T>(_ objects: [Sourced<T>], kind: String, key: (T) -> ServiceName,
                           _ diagnostics: inout [Diagnostic]) -> [Sourced<T>] {
        var seen: [ServiceName: String?] = [:]
        var out: [Sourced<T>] = []
        for sourced in objects {
            let k = key(sourced.object)
            if let firstFile = seen[k] {
                diagnostics.append(Diagnostic(severity: .warning, file: sourced.file, kind: kind, namespace: k.namespace, name: k.name,
                                              message: "duplicate object (first one\(firstFile.map { " in \($0)" } ?? "") is used); ignored"))
                continue
            }
            seen[k] = .some(sourced.file)
            out.append(sourced)
        }
        return out
    }

    /// NodePort services in a family whose nodePortAddresses resolved to nothing.
    private func unreachableNodePortWarnings(_ families: [FamilyPlan]) -> [Diagnostic] {
        families.compactMap { plan in
            guard plan.context.nodePortAddresses == .ips([]), plan.servicePorts.contains(where: { $0.nodePort != nil }) else { return nil }
            return Diagnostic(severity: .warning, kind: "Node", name: plan.context.nodeName, field: "status.addresses",
                              message: "no \(plan.context.family.rawValue) node IP matches nodePortAddresses; \(plan.context.family.rawValue) NodePorts are not reachable")
        }
    }
}
