import Foundation
import SluiceCompiler
import SluiceIR
import SluiceModel

/// The daemon's per-service state: every object from the sources, the validated Services and
/// EndpointSlices, the plan of every service, and one `IncrementalCompiler` per family.
///
/// `apply(_:)` takes a batch of object changes and re-plans only the services they touch
/// (a Service, or a service one of whose EndpointSlices changed), so the resulting
/// transaction is O(change). Two passes are wider, by necessity:
/// - when a Service changes, the ClusterIP/NodePort conflict check runs over all valid
///   services (a hash pass, no planning), and services whose acceptance flips are re-planned;
/// - when the node context changes (this Node, ServiceCIDRs, the set of families), every
///   service is re-planned and the compilers get `setContext`: the caller applies the
///   whole table (`desiredRuleset`) as a diff instead of a transaction.
///
/// Pure apart from the clock read for metrics; the kernel is the caller's business.
public struct ProxyState: Sendable {
    public let options: NodeOptions
    public let hostAddresses: [IPAddress]?

    public private(set) var objects: [ProxyObjectKey: SourcedObject] = [:]
    public private(set) var serviceCIDRs: [CIDR] = []
    public private(set) var node: Node?
    /// Services that passed validation (before the conflict check).
    private var validated: [ServiceName: ValidatedService] = [:]
    /// Services to proxy (validated and conflict-free).
    public private(set) var accepted: [ServiceName: ValidatedService] = [:]
    private var slices: [ServiceName: [ProxyObjectKey: ValidatedEndpointSlice]] = [:]
    private var sliceOwner: [ProxyObjectKey: ServiceName] = [:]
    public private(set) var nodeContext: NodeContext?
    /// Plans per service and family.
    public private(set) var planned: [ServiceName: [IPFamily: [ServicePortPlan]]] = [:]
    public private(set) var compilers: [IPFamily: IncrementalCompiler] = [:]
    /// healthCheckNodePort services: port and local ready endpoints.
    public private(set) var healthChecks: [ServiceName: HealthCheckTarget] = [:]
    /// Service ports with a Local policy and no local endpoint, per policy (`internal`, `external`).
    public private(set) var noLocalEndpoints: [String: Int] = ["internal": 0, "external": 0]
    private var noLocalByService: [ServiceName: NoLocalCount] = [:]

    public init(options: NodeOptions, hostAddresses: [IPAddress]? = nil) {
        self.options = options
        self.hostAddresses = hostAddresses
    }

    /// What one `apply` produced.
    public struct Outcome: Sendable {
        /// True when the node context changed: apply `desiredRuleset` as a full diff.
        public var full = false
        /// The O(change) transaction (both families), when `full` is false.
        public var transaction = Transaction([])
        public var diagnostics: [Diagnostic] = []
        public var serviceChanges = 0
        public var endpointSliceChanges = 0
        /// Services re-planned.
        public var replanned: Set<ServiceName> = []
        /// `endpoints.kubernetes.io/last-change-trigger-time` of changed slices.
        public var triggerTimes: [Date] = []
        /// UDP service ports whose endpoints changed: their conntrack entries to endpoints
        /// no longer in use must go (kube-proxy's conntrack cleanup).
        public var conntrackTargets: [ConntrackTarget] = []
    }

    /// The whole desired ruleset (O(table)): for the first sync, context changes and drift repair.
    public var desiredRuleset: Ruleset {
        Ruleset(tables: compilers.keys.sorted().map { compilers[$0]!.table })
    }

    /// False when this node is being deleted or is tainted `ToBeDeletedByClusterAutoscaler`
    /// (kube-proxy's `nodeEligible`, which fails `/healthz` so load balancers drain the node).
    public var nodeEligible: Bool {
        guard let node else { return true }
        if node.metadata.deletionTimestamp != nil { return false }
        return !(node.spec.taints ?? []).contains { $0.key == "ToBeDeletedByClusterAutoscaler" }
    }

    public mutating func apply(_ changes: [ProxyObjectKey: SourcedObject?]) -> Outcome {
        var out = Outcome()
        var serviceObjectsChanged = Set<ServiceName>()
        var sliceDirty = Set<ServiceName>()
        var contextInputsChanged = nodeContext == nil
        var cidrsChanged = false
        let sliceValidator = EndpointSliceValidator()

        for (key, new) in changes.sorted(by: { $0.key < $1.key }) {
            let old = objects[key]
            if old == new { continue }
            objects[key] = new
            switch key.kind {
            case .service:
                out.serviceChanges += 1
                serviceObjectsChanged.insert(ServiceName(namespace: key.namespace, name: key.name))
            case .endpointSlice:
                out.endpointSliceChanges += 1
                if let owner = sliceOwner.removeValue(forKey: key) {
                    slices[owner]?[key] = nil
                    if slices[owner]?.isEmpty == true { slices[owner] = nil }
                    sliceDirty.insert(owner)
                }
                guard let new, case .endpointSlice(let slice) = new.object,
                      ProxyPlanner.matchesProxySelector(slice.metadata, serviceProxyName: options.serviceProxyName) else { continue }
                let (outcome, d) = sliceValidator.validate(slice, file: new.file)
                out.diagnostics += d
                guard case .valid(let v) = outcome else { continue }
                slices[v.service, default: [:]][key] = v
                sliceOwner[key] = v.service
                sliceDirty.insert(v.service)
                if let t = slice.metadata.annotation(WellKnownKeys.lastChangeTriggerTime), let date = parseRFC3339(t) {
                    out.triggerTimes.append(date)
                }
            case .node:
                if key.name.lowercased() == options.nodeName { contextInputsChanged = true }
            case .serviceCIDR:
                cidrsChanged = true
                contextInputsChanged = true
            }
        }

        if cidrsChanged {
            var cidrs = Set<CIDR>()
            for (key, o) in objects where key.kind == .serviceCIDR {
                guard case .serviceCIDR(let sc) = o.object else { continue }
                let (c, d) = sc.validatedCIDRs(file: o.file)
                cidrs.formUnion(c)
                out.diagnostics += d
            }
            serviceCIDRs = cidrs.sorted()
        }
        if contextInputsChanged {
            node = objects.first { $0.key.kind == .node && $0.key.name.lowercased() == options.nodeName }
                .flatMap { if case .node(let n) = $0.value.object { return n } else { return nil } }
        }

        // Validate changed Services (all of them when the ServiceCIDRs changed).
        let revalidate = cidrsChanged
            ? Set(objects.keys.filter { $0.kind == .service }.map { ServiceName(namespace: $0.namespace, name: $0.name) })
                .union(validated.keys).union(serviceObjectsChanged)
            : serviceObjectsChanged
        if !revalidate.isEmpty {
            let validator = ServiceValidator(nodePortRange: options.nodePortRange, serviceCIDRs: serviceCIDRs)
            for name in revalidate {
                let key = ProxyObjectKey(kind: .service, namespace: name.namespace, name: name.name)
                validated[name] = nil
                guard let sourced = objects[key], case .service(let svc) = sourced.object,
                      ProxyPlanner.matchesProxySelector(svc.metadata, serviceProxyName: options.serviceProxyName) else { continue }
                let (outcome, d) = validator.validate(svc, file: sourced.file)
                out.diagnostics += d
                if case .valid(let v) = outcome { validated[name] = v }
            }
        }

        var dirty = sliceDirty
        var familiesChanged = false
        if !revalidate.isEmpty {
            let (acceptedList, conflicts) = ServiceConflictChecker().check(Array(validated.values))
            var newAccepted: [ServiceName: ValidatedService] = [:]
            for s in acceptedList { newAccepted[s.name] = s }
            for name in Set(accepted.keys).union(newAccepted.keys) where accepted[name] != newAccepted[name] {
                dirty.insert(name)
            }
            // Report conflicts of the services that changed (not every sync).
            out.diagnostics += conflicts.filter { d in
                guard let ns = d.namespace, let n = d.name else { return true }
                return revalidate.contains(ServiceName(namespace: ns, name: n))
            }
            let familiesBefore = Set(accepted.values.flatMap(\.families))
            accepted = newAccepted
            familiesChanged = familiesBefore != Set(accepted.values.flatMap(\.families))
        }

        if contextInputsChanged || familiesChanged {
            let (context, d) = NodeContext.resolve(options: options, node: node, serviceCIDRs: serviceCIDRs,
                                                   serviceFamilies: Set(accepted.values.flatMap(\.families)),
                                                   hostAddresses: hostAddresses)
            if context != nodeContext {
                out.diagnostics += d
                setContext(context)
                out.full = true
                out.replanned = Set(accepted.keys)
                return out
            }
        }

        // O(change): re-plan the dirty services and let the compilers turn that into elements.
        guard let context = nodeContext else { return out }
        var changesByFamily: [IPFamily: [ServicePortName: ServicePortPlan?]] = [:]
        for name in dirty {
            let old = planned[name] ?? [:]
            let new = plan(name, context: context)
            if old == new { continue }
            out.replanned.insert(name)
            for family in Set(old.keys).union(new.keys) {
                let newPorts = new[family] ?? []
                let newNames = Set(newPorts.map(\.name))
                for p in old[family] ?? [] where !newNames.contains(p.name) { changesByFamily[family, default: [:]][p.name] = .some(nil) }
                let oldByName = Dictionary((old[family] ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
                for p in newPorts where oldByName[p.name] != p { changesByFamily[family, default: [:]][p.name] = p }
            }
            out.conntrackTargets += conntrackTargets(old: old, new: new)
            planned[name] = new.isEmpty ? nil : new
            track(name, new)
        }
        var ops: [SluiceIR.Operation] = []
        for family in changesByFamily.keys.sorted() {
            guard var compiler = compilers[family] else { continue }
            let tx = compiler.update(changesByFamily[family]!)
            out.diagnostics += compiler.lastConflicts.map { Diagnostic(severity: .warning, message: $0) }
            compilers[family] = compiler
            ops += tx.operations
        }
        out.transaction = Transaction(ops)
        return out
    }

    /// Re-plans everything for a new node context.
    private mutating func setContext(_ context: NodeContext) {
        nodeContext = context
        planned = [:]
        healthChecks = [:]
        noLocalByService = [:]
        noLocalEndpoints = ["internal": 0, "external": 0]
        var byFamily: [IPFamily: [ServicePortPlan]] = [:]
        for name in accepted.keys.sorted() {
            let p = plan(name, context: context)
            if !p.isEmpty { planned[name] = p }
            track(name, p)
            for (f, ports) in p { byFamily[f, default: []] += ports }
        }
        // The caller applies `desiredRuleset` as a full diff, so no transaction is needed here:
        // a fresh compiler per family, loaded with every plan.
        var newCompilers: [IPFamily: IncrementalCompiler] = [:]
        for fc in context.families {
            var c = IncrementalCompiler(context: fc)
            c.load(byFamily[fc.family] ?? [])
            newCompilers[fc.family] = c
        }
        compilers = newCompilers
    }

    private func plan(_ name: ServiceName, context: NodeContext) -> [IPFamily: [ServicePortPlan]] {
        guard let service = accepted[name] else { return [:] }
        let serviceSlices = (slices[name] ?? [:]).sorted { $0.key < $1.key }.map(\.value)
        return context.planServicePorts(service, slices: serviceSlices)
    }

    /// UDP service ports of one service whose endpoint set changed (or that went away).
    private func conntrackTargets(old: [IPFamily: [ServicePortPlan]], new: [IPFamily: [ServicePortPlan]]) -> [ConntrackTarget] {
        var out: [ConntrackTarget] = []
        for family in Set(old.keys).union(new.keys) {
            let newByName = Dictionary((new[family] ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for o in old[family] ?? [] where o.name.proto == .udp {
                let n = newByName[o.name]
                let endpoints = Set(((n?.clusterEndpoints ?? []) + (n?.localEndpoints ?? [])).map { EndpointAddress(ip: $0.ip, port: $0.port) })
                let before = Set((o.clusterEndpoints + o.localEndpoints).map { EndpointAddress(ip: $0.ip, port: $0.port) })
                let gainedFirst = before.isEmpty && !endpoints.isEmpty
                guard !before.subtracting(endpoints).isEmpty || gainedFirst else { continue }
                var frontends = ([o.clusterIP] + o.externalIPs + o.loadBalancerIPs).map { EndpointAddress(ip: $0, port: o.port) }
                if let n { frontends += ([n.clusterIP] + n.externalIPs + n.loadBalancerIPs).map { EndpointAddress(ip: $0, port: n.port) } }
                out.append(ConntrackTarget(family: family, frontends: Set(frontends), nodePorts: Set([o.nodePort, n?.nodePort].compactMap { $0 }),
                                           endpoints: endpoints, hasEndpoints: !endpoints.isEmpty))
            }
            // A UDP port that is new in this plan and has endpoints: entries made while it
            // had none (not DNATed) must go too.
            let oldNames = Set((old[family] ?? []).map(\.name))
            for n in new[family] ?? [] where n.name.proto == .udp && !oldNames.contains(n.name) && !(n.clusterEndpoints + n.localEndpoints).isEmpty {
                let endpoints = Set((n.clusterEndpoints + n.localEndpoints).map { EndpointAddress(ip: $0.ip, port: $0.port) })
                out.append(ConntrackTarget(family: family, frontends: Set(([n.clusterIP] + n.externalIPs + n.loadBalancerIPs).map { EndpointAddress(ip: $0, port: n.port) }),
                                           nodePorts: Set([n.nodePort].compactMap { $0 }), endpoints: endpoints, hasEndpoints: true))
            }
        }
        return out
    }

    /// Keeps the health-check targets and no-local-endpoint counts in step with one service's plan.
    private mutating func track(_ name: ServiceName, _ plan: [IPFamily: [ServicePortPlan]]) {
        let ports = plan.keys.sorted().flatMap { plan[$0]! }
        if let service = accepted[name], let port = service.healthCheckNodePort, let first = ports.first {
            healthChecks[name] = HealthCheckTarget(port: port, localEndpoints: first.localReadyEndpointCount)
        } else {
            healthChecks[name] = nil
        }
        let old = noLocalByService[name] ?? NoLocalCount()
        var new = NoLocalCount()
        for p in ports where p.localEndpoints.isEmpty {
            if p.internalPolicyLocal { new.internalPolicy += 1 }
            if p.externalPolicyLocal && p.usesLocalEndpoints { new.externalPolicy += 1 }
        }
        noLocalEndpoints["internal", default: 0] += new.internalPolicy - old.internalPolicy
        noLocalEndpoints["external", default: 0] += new.externalPolicy - old.externalPolicy
        noLocalByService[name] = new == NoLocalCount() ? nil : new
    }
}

/// An IP and port.
public struct EndpointAddress: Sendable, Hashable {
    public var ip: IPAddress
    public var port: UInt16
}

/// What the conntrack cleanup of one UDP service port needs.
public struct ConntrackTarget: Sendable, Hashable {
    public var family: IPFamily
    /// Service addresses (ClusterIP, external IPs, LB IPs) with the service port.
    public var frontends: Set<EndpointAddress>
    public var nodePorts: Set<UInt16>
    /// Endpoints in use now.
    public var endpoints: Set<EndpointAddress>
    public var hasEndpoints: Bool

    /// True when a flow to this service is stale: DNATed to an endpoint no longer in use,
    /// or not DNATed (made while the service had no endpoints) now that it has some.
    public func isStale(origDst: EndpointAddress, replySrc: EndpointAddress, dnated: Bool) -> Bool {
        guard frontends.contains(origDst) || (dnated && nodePorts.contains(origDst.port)) else { return false }
        return dnated ? !endpoints.contains(replySrc) : hasEndpoints
    }
}

struct NoLocalCount: Sendable, Hashable {
    var internalPolicy = 0
    var externalPolicy = 0
}

/// A healthCheckNodePort server's target.
public struct HealthCheckTarget: Sendable, Hashable {
    public var port: UInt16
    public var localEndpoints: Int

    public init(port: UInt16, localEndpoints: Int) {
        self.port = port
        self.localEndpoints = localEndpoints
    }
}

/// RFC 3339 with or without fractional seconds.
func parseRFC3339(_ text: String) -> Date? {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let d = f.date(from: text) { return d }
    f.formatOptions = [.withInternetDateTime]
    return f.date(from: text)
}
