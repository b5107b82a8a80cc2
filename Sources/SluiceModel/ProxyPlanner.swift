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
    /// For services planned from their Pods: the pod (`namespace/name`) behind each endpoint address.
    public var endpointPods: [ServiceName: [IPAddress: String]] = [:]

    public var errors: [Diagnostic] { diagnostics.filter(\.isError) }
    public var warnings: [Diagnostic] { diagnostics.filter { !$0.isError } }
}

/// Objects + NodeOptions → `ProxyPlan`: every object applied to an empty
/// `IncrementalPlanner`, the same planner the daemon keeps up to date, so the batch plan and
/// the daemon's follow the same rules:
///
/// 1. ServiceCIDRs and this node's Node object (by node name) are read.
/// 2. Each Service is validated on its own (`ServiceValidator`); ExternalName and headless
///    services are reported as skipped.
/// 3. The cross-service pass (`ServiceConflictChecker`) rejects later claimants of a
///    ClusterIP or NodePort.
/// 4. EndpointSlices are validated (`EndpointSliceValidator`) and grouped per service;
///    Pods are validated (`PodValidator`), and a selector Service without EndpointSlices gets
///    the slices `EndpointSliceController` derives from its Pods.
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
        let services = dedupe(objects.services, kind: "Service", key: { $0.serviceName }, &diagnostics)
        let slices = dedupe(objects.endpointSlices, kind: "EndpointSlice",
                            key: { ServiceName(namespace: $0.metadata.namespace ?? "default", name: $0.metadata.name ?? "") },
                            &diagnostics)
        let pods = dedupe(objects.pods, kind: "Pod",
                          key: { ServiceName(namespace: $0.metadata.namespace ?? "default", name: $0.metadata.name ?? "") },
                          &diagnostics)
        diagnostics += missingNodeWarning(objects.nodes)
        var changes: [(key: ProxyObjectKey, value: SourcedObject?)] = []
        var seen = Set<ProxyObjectKey>()
        func add(_ o: ProxyObject, _ file: String?) {
            if seen.insert(o.key).inserted { changes.append((o.key, SourcedObject(o, file: file))) }
        }
        for c in objects.serviceCIDRs { add(.serviceCIDR(c.object), c.file) }
        for n in objects.nodes { add(.node(n.object), n.file) }
        for s in services { add(.service(s.object), s.file) }
        for s in slices { add(.endpointSlice(s.object), s.file) }
        for p in pods { add(.pod(p.object), p.file) }
        var planner = IncrementalPlanner(options: options, hostAddresses: hostAddresses)
        let applied = planner.apply(ordered: changes)
        diagnostics += applied.diagnostics
        let proxyName = options.serviceProxyName
        let known = Set(services.filter { Self.matchesProxySelector($0.object.metadata, serviceProxyName: proxyName) }
            .map(\.object.serviceName))
        diagnostics += unusedSliceWarnings(planner, knownServices: known)
        let context = planner.nodeContext!
        let families = context.families.map { FamilyPlan(context: $0, servicePorts: planner.servicePorts($0.family)) }
        diagnostics += unreachableNodePortWarnings(families)
        return PlanResult(plan: ProxyPlan(families: families, skipped: Array(planner.skipped.values)), diagnostics: diagnostics,
                          nodeContext: context, services: planner.accepted.values.sorted { $0.name < $1.name },
                          endpointPods: planner.endpointPods)
    }

    /// Valid slices whose Service is not among the objects.
    private func unusedSliceWarnings(_ planner: IncrementalPlanner, knownServices: Set<ServiceName>) -> [Diagnostic] {
        planner.validSlices.filter { !knownServices.contains($0.service) }.map { slice in
            DiagnosticContext(file: slice.file, kind: "EndpointSlice", namespace: slice.service.namespace, name: slice.sliceName)
                .warning("metadata.labels[\"\(WellKnownKeys.serviceName)\"]", "no Service \(slice.service); slice unused")
        }
    }

    /// A warning when Nodes are given but none is this node (the planner then has no Node).
    private func missingNodeWarning(_ nodes: [Sourced<Node>]) -> [Diagnostic] {
        guard !nodes.isEmpty, !nodes.contains(where: { $0.object.metadata.name?.lowercased() == options.nodeName }) else { return [] }
        let names = nodes.compactMap(\.object.metadata.name).joined(separator: ", ")
        return [Diagnostic(severity: .warning, kind: "Node", name: options.nodeName,
                           message: "not among the given Nodes (\(names)); node IPs, pod CIDRs and zone are unknown")]
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
