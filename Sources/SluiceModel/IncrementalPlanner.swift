import Foundation

/// The one planner: Kubernetes objects in, per-service-port plans out, kept up to date one
/// change at a time. `ProxyPlanner.plan` is "apply every object to an empty planner"; the
/// daemon applies each batch of watch events to the same planner, so both follow the same
/// rules (validation, the ClusterIP/NodePort conflict rule, slice merging, topology).
///
/// `apply(_:)` re-plans only the services a change touches (a Service, or a service one of
/// whose EndpointSlices changed, or whose selector matches a Pod that changed). Wider work
/// happens only when it must:
/// - the ClusterIP/NodePort conflict check is incremental: a changed service whose claims no
///   other service shares is accepted or dropped on its own; only contended claims re-run
///   `ServiceConflictChecker` over every valid service;
/// - when the node context changes (this Node, ServiceCIDRs, the set of families, the
///   host's addresses), every service is re-planned and the result says `full`; unless only
///   the NodePort addresses changed (`nodePortAddressesChanged`): plans do not depend on
///   them, so none is re-planned.
///
/// Conflict rule (the same here and in `ProxyPlanner.plan`): of the Services claiming one
/// ClusterIP, or one NodePort and protocol, the first in `namespace/name` order wins and the
/// others are left out whole, with an error naming them. Duplicate objects within one
/// source are resolved before they reach the planner (`ProxyPlanner.plan`: the first one
/// loaded; the daemon: the first source that has the key).
///
/// Pods (from manifests): a Service with a selector and no EndpointSlice of its own is planned
/// with the slices `EndpointSliceController` derives from the Pods it selects, as if they were
/// EndpointSlices (`<service>-pods-ipv4`, …). A service's own slices win: once any
/// EndpointSlice names it (even one rejected whole), its pods are not used (`endpointSlices(for:)`).
///
/// Plans are held here once (`planned`); the compilers get old and new plan of each
/// changed service port and keep none.
public struct IncrementalPlanner: Sendable {
    public let options: NodeOptions
    /// The host's interface addresses (`setHostAddresses`); nil: the Node's and `--node-ip`.
    public private(set) var hostAddresses: [IPAddress]?

    /// Nodes and ServiceCIDRs as received. Services are kept in the form `ReceivedService`
    /// says (a valid one only validated, in `services`; the others in `otherServices`) and
    /// validated again from it when the ServiceCIDRs change; EndpointSlices are kept only
    /// validated, in `slices`.
    public private(set) var objects: [ProxyObjectKey: SourcedObject] = [:]
    public private(set) var serviceCIDRs: [CIDR] = []
    public private(set) var node: Node?
    /// Services valid for the current ServiceCIDRs, each marked when it also passed the
    /// conflict check. A dense store, not a dictionary: an entry is ~130 bytes, and a
    /// dictionary's empty buckets (most of them, at 100k services) would each hold one.
    private var services = DenseStore<ServiceEntry>()
    /// Every other Service received: rejected, skipped, another proxy's, or valid but
    /// outside the current ServiceCIDRs.
    private var otherServices: [ServiceName: ReceivedService] = [:]
    private var acceptedCount = 0
    /// ExternalName and headless services.
    public private(set) var skipped: [ServiceName: SkippedService] = [:]
    /// Services to proxy (validated and conflict-free).
    public var accepted: AcceptedServices { AcceptedServices(services, count: acceptedCount) }
    private var claims = ClaimIndex()
    private var acceptedFamilies: [IPFamily: Int] = [:]
    private var slices: [ServiceName: ServiceSlices] = [:]
    /// The service each valid slice belongs to, by its name only: a slice's service is in
    /// the slice's namespace, and a `ServiceName` value would double the bucket (≈ 4 MB of
    /// 262144 buckets at 100k slices).
    private var sliceOwner: [ProxyObjectKey: String] = [:]
    /// The placements (node, zone, hints) of the slices' endpoints, and their names, one copy each.
    private var names = NameInterner()
    /// Pods, selectors and Node zones, for services planned from their pods.
    private var pods = PodEndpointIndex()
    public private(set) var nodeContext: NodeContext?
    /// Plans per service, ordered by family.
    public private(set) var planned: [ServiceName: ServicePlans] = [:]
    /// healthCheckNodePort services: port and local ready endpoints.
    public private(set) var healthChecks: [ServiceName: HealthCheckTarget] = [:]
    /// Service ports with a Local policy and no local endpoint, per policy (`internal`, `external`).
    public private(set) var noLocalEndpoints: [String: Int] = ["internal": 0, "external": 0]
    private var noLocalByService: [ServiceName: NoLocalCount] = [:]
    /// What `stage` recorded but did not plan yet: the next `apply` plans it.
    private var deferred = Deferred()
    /// Services staged without endpoints and not planned yet: the next `apply` plans
    /// those still in it (a part that brings their slices plans them and takes them out).
    private var awaitingEndpoints = Set<ServiceName>()

    private struct Deferred {
        var dirty = Set<ServiceName>()
        var contextCheck = false
        /// `setHostAddresses` changed them: the context is resolved again (this Node as known).
        var hostAddresses = false
    }

    /// False: no Pod will come (the API server source: kube-proxy plans from EndpointSlices
    /// only), so the Services' selectors are not kept (≈ 23 MB at 100k services) and a Pod
    /// that comes anyway is reported and left out.
    public let plansFromPods: Bool

    public init(options: NodeOptions, hostAddresses: [IPAddress]? = nil, plansFromPods: Bool = true) {
        self.options = options
        self.hostAddresses = hostAddresses
        self.plansFromPods = plansFromPods
    }

    /// What one `apply` changed.
    public struct Changes: Sendable {
        /// True when the node context changed: every plan is new (read `planned`).
        public var full = false
        /// True when the node context changed in its NodePort addresses only (both before and
        /// after a list of IPs, not `all`): no plan changed; the compilers take the new
        /// context (`nodeContext`) and update the `nodeport-ips` set.
        public var nodePortAddressesChanged = false
        /// Per family, the changed service ports with their old and new plan (when not `full`).
        public var ports: [IPFamily: [ServicePortName: PlanChange]] = [:]
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

    /// False when this node is being deleted or is tainted `ToBeDeletedByClusterAutoscaler`
    /// (kube-proxy's `nodeEligible`, which fails `/healthz` so load balancers drain the node).
    public var nodeEligible: Bool {
        guard let node else { return true }
        if node.metadata.deletionTimestamp != nil { return false }
        return !(node.spec.taints ?? []).contains { $0.key == "ToBeDeletedByClusterAutoscaler" }
    }

    /// Every valid EndpointSlice, in key order.
    public var validSlices: [ValidatedEndpointSlice] {
        slices.values.flatMap(\.entries).sorted { $0.key < $1.key }.map(\.slice)
    }

    /// The slices a service is planned with: its own valid EndpointSlices; when it has none
    /// (and no EndpointSlice naming it was rejected whole), those `EndpointSliceController`
    /// derives from the Pods its selector matches.
    public func endpointSlices(for service: ServiceName) -> [ValidatedEndpointSlice] {
        if let own = slices[service] { return own.entries.map(\.slice) }
        guard !pods.hasNoPods, !pods.hasRejectedSlice(service), let accepted = accepted[service] else { return [] }
        return pods.derivedSlices(for: accepted)
    }

    /// The pod behind each endpoint address of the services planned from their pods (for
    /// `explain`); empty when no Pods were given.
    public var endpointPods: [ServiceName: [IPAddress: String]] {
        guard !pods.hasNoPods else { return [:] }
        var out: [ServiceName: [IPAddress: String]] = [:]
        for name in accepted.keys where slices[name] == nil {
            for slice in endpointSlices(for: name) {
                for (endpoint, pod) in zip(slice.endpoints, slice.pods ?? []) { out[name, default: [:]][endpoint.address] = pod }
            }
        }
        return out
    }

    /// Every plan of one family, in name order (`ServicePortName` orders by service first).
    /// Sorts the service names, not the plans: at 100k services, sorting copies of every plan
    /// by their full names took a quarter of a second of a cold start with the kernel idle.
    public func servicePorts(_ family: IPFamily) -> [ServicePortPlan] {
        var names = Array(planned.keys)
        names.sort()
        var out: [ServicePortPlan] = []
        out.reserveCapacity(names.count)
        for name in names {
            guard let plans = planned[name]?[family] else { continue }
            if plans.count == 1 { out.append(plans[0]) } else { out += plans.sorted { $0.name < $1.name } }
        }
        return out
    }

    /// Replaces the host's interface addresses (nil: use the Node's and `--node-ip`), which
    /// CIDR entries of `--nodeport-addresses` select from. Takes effect at the next `apply`
    /// or `stage`: usually only the NodePort addresses change (`nodePortAddressesChanged`).
    public mutating func setHostAddresses(_ addresses: [IPAddress]?) {
        guard addresses != hostAddresses else { return }
        hostAddresses = addresses
        deferred.hostAddresses = true
    }

    /// Applies a batch of changes (in key order; the keys are sorted, not the objects).
    public mutating func apply(_ changes: ObjectChanges) -> Changes {
        apply(Self.sorted(changes), planning: true)
    }

    /// Applies a batch of changes as part of a first state that is still arriving: objects
    /// are validated and stored (so the caller can drop them) and the conflict check runs;
    /// the services they touch are planned now if this node's Node is known, else by the
    /// next `apply` (or `stage` once it is). The daemon stages the parts of its first lists
    /// as they arrive, so the first sync neither holds every decoded object at once nor
    /// plans every service at its end. Returns the same `Changes` as `apply` (`full` when the
    /// node context was resolved or changed).
    public mutating func stage(_ changes: ObjectChanges) -> Changes {
        if slices.isEmpty && changes.keys.contains(where: { $0.kind == .endpointSlice }) { reserveForEndpointSlices() }
        return apply(Self.sorted(changes), planning: false)
    }

    /// Before the first EndpointSlices are staged (the Services usually came first): room
    /// for a slice and a plan per accepted service, so these tables are sized once instead
    /// of doubling, each time rehashing every key, as the slices arrive. None ends larger
    /// than it would once every accepted service has its slice.
    private mutating func reserveForEndpointSlices() {
        slices.reserveCapacity(acceptedCount)
        sliceOwner.reserveCapacity(acceptedCount)
        if planned.isEmpty { planned.reserveCapacity(acceptedCount) }
    }

    private static func sorted(_ changes: ObjectChanges) -> some Sequence<(key: ProxyObjectKey, value: SourcedObject?)> {
        var keys = Array(changes.keys)
        keys.sort()
        return keys.lazy.map { (key: $0, value: changes[$0]!) }
    }

    /// Applies a batch of changes in the order given.
    public mutating func apply(ordered changes: [(key: ProxyObjectKey, value: SourcedObject?)]) -> Changes {
        apply(changes.lazy, planning: true)
    }

    /// Applies a batch of changes; diagnostics come in pipeline order (ServiceCIDRs,
    /// Services in the order given, conflicts, EndpointSlices and Pods in the order given, node).
    private mutating func apply<S: Sequence<(key: ProxyObjectKey, value: SourcedObject?)>>(_ changes: S, planning: Bool) -> Changes {
        var out = Changes()
        var step = Step(contextChanged: nodeContext == nil)
        for (key, new) in changes { record(key, new, &step, &out) }
        if step.cidrsChanged { reloadServiceCIDRs(&out) }
        step.dirty.formUnion(deferred.dirty)
        step.contextChanged = step.contextChanged || deferred.contextCheck
        let hostAddressesChanged = deferred.hostAddresses
        deferred = Deferred()
        // Staging looks the Node up only when a batch touches it (not for every part).
        if step.contextChanged && (planning || step.nodeTouched) { node = findNode() }
        var revalidate = step.services
        if step.cidrsChanged {
            let listed = Set(revalidate)
            revalidate += allServiceNames().subtracting(listed).sorted()
        }
        let familiesBefore = Set(acceptedFamilies.keys)
        if !revalidate.isEmpty {
            let previous = revalidateServices(revalidate, received: step.received, &out)
            step.dirty.formUnion(resolveConflicts(Set(revalidate), previous: previous, &out))
        }
        out.diagnostics += step.sliceDiagnostics + step.podDiagnostics
        // Staging plans once this Node is known (the node context is then as final as it
        // will be, short of a change, which re-plans everything); before, it defers.
        guard planning || node != nil else {
            deferred.dirty.formUnion(step.dirty)
            deferred.contextCheck = deferred.contextCheck || step.contextChanged || familiesBefore != Set(acceptedFamilies.keys)
                || hostAddressesChanged
            return out
        }
        if step.contextChanged || hostAddressesChanged || familiesBefore != Set(acceptedFamilies.keys) {
            let (context, d) = NodeContext.resolve(options: options, node: node, serviceCIDRs: serviceCIDRs,
                                                   serviceFamilies: Set(acceptedFamilies.keys), hostAddresses: hostAddresses)
            if context != nodeContext {
                out.diagnostics += d
                if adopt(context, &out) { return out }
            }
        }
        guard let context = nodeContext else { return out }
        for name in step.dirty {
            // Staging leaves a new service with no endpoints yet to the next `apply`: its
            // EndpointSlices usually follow in a later part, and it is planned once.
            if !planning && pods.hasNoPods && slices[name] == nil && planned[name] == nil {
                awaitingEndpoints.insert(name)
                continue
            }
            replan(name, context: context, &out)
        }
        if planning && !awaitingEndpoints.isEmpty {
            // The dirty ones were just planned (and left the set); the rest are planned now.
            let waiting = awaitingEndpoints
            awaitingEndpoints = []
            for name in waiting { replan(name, context: context, &out) }
        }
        return out
    }

    /// Takes a new node context. When only its NodePort addresses differ no plan depends
    /// on them: the context is swapped (`nodePortAddressesChanged`). Otherwise every service
    /// is re-planned (`full`) and true is returned.
    private mutating func adopt(_ context: NodeContext, _ out: inout Changes) -> Bool {
        if let old = nodeContext, old.differsOnlyInNodePortAddresses(from: context) {
            nodeContext = context
            out.nodePortAddressesChanged = true
            return false
        }
        replanAll(context)
        out.full = true
        out.replanned = Set(accepted.keys)
        return true
    }

    /// What the first pass over a batch found.
    private struct Step {
        /// Changed services, in the order they came (each once).
        var services: [ServiceName] = []
        /// Their new forms (nil: deleted), validated by `revalidateServices`.
        var received: [ServiceName: ReceivedService?] = [:]
        var sliceDiagnostics: [Diagnostic] = []
        var podDiagnostics: [Diagnostic] = []
        var dirty = Set<ServiceName>()
        var contextChanged: Bool
        var cidrsChanged = false
        /// This node's Node object changed.
        var nodeTouched = false
    }

    private mutating func record(_ key: ProxyObjectKey, _ new: SourcedObject?, _ step: inout Step, _ out: inout Changes) {
        if key.kind == .endpointSlice { return recordSlice(key, new, &step, &out) }
        if key.kind == .pod { return recordPod(key, new, &step, &out) }
        if key.kind == .service { return recordService(key, new, &step, &out) }
        if objects[key] == new { return }
        objects[key] = new
        switch key.kind {
        case .service, .endpointSlice, .pod:
            break
        case .node:
            if key.name.lowercased() == options.nodeName {
                step.contextChanged = true
                step.nodeTouched = true
            }
            let zone: String? = if case .node(let n)? = new?.object { n.zone } else { nil }
            step.dirty.formUnion(pods.setZone(node: key.name, zone: zone))
        case .serviceCIDR:
            step.cidrsChanged = true
            step.contextChanged = true
        }
    }

    /// A Service is compared in the form it is kept in (`ReceivedService`) and by its pod
    /// selection: one delivered again unchanged, or changed in nothing the proxy uses, changes
    /// nothing. The new form waits in `step` for `revalidateServices`.
    private mutating func recordService(_ key: ProxyObjectKey, _ new: SourcedObject?, _ step: inout Step, _ out: inout Changes) {
        let name = ServiceName(namespace: key.namespace, name: key.name)
        let form = new.map(receivedForm)
        let old = if let pending = step.received[name] { pending } else { receivedForm(of: name) }
        let selection = plansFromPods ? Self.podSelection(new) : nil
        let selectionChanged = selection != pods.selection(of: name)
        if form == old && !selectionChanged { return }
        out.serviceChanges += 1
        step.services.append(name)
        step.received[name] = .some(form)
        // A selector change re-plans the service even when its validated form is the same.
        if selectionChanged {
            pods.setSelection(name, selection)
            step.dirty.insert(name)
        }
    }

    /// The form a received Service is kept in.
    private func receivedForm(_ sourced: SourcedObject) -> ReceivedService {
        guard case .service(let svc) = sourced.object,
              ProxyPlanner.matchesProxySelector(svc.metadata, serviceProxyName: options.serviceProxyName) else { return .ignored }
        return validator.receive(svc, file: sourced.file)
    }

    /// The form a Service is kept in (nil: none was received).
    private func receivedForm(of name: ServiceName) -> ReceivedService? {
        if let entry = services[name] { return .valid(entry.service, entry.notes) }
        return otherServices[name]
    }

    /// A slice is compared in its validated form: an update that changes nothing the proxy
    /// uses (or an invalid slice seen again) dirties nothing. A slice rejected whole still
    /// names its service (which then does not use its pods).
    private mutating func recordSlice(_ key: ProxyObjectKey, _ new: SourcedObject?, _ step: inout Step, _ out: inout Changes) {
        let owner = sliceOwner[key].map { ServiceName(namespace: key.namespace, name: $0) }
        let old = owner.flatMap { slices[$0]?[key] }
        var valid: ValidatedEndpointSlice?
        var rejectedFor: ServiceName?
        if let new, case .endpointSlice(let slice) = new.object,
           ProxyPlanner.matchesProxySelector(slice.metadata, serviceProxyName: options.serviceProxyName) {
            let (outcome, d) = EndpointSliceValidator().validate(slice, file: new.file) {
                names.placement(nodeName: $0, zone: $1, zoneHints: $2, nodeHints: $3)
            }
            step.sliceDiagnostics += d
            if case .valid(let v) = outcome { valid = v } else { rejectedFor = slice.serviceName }
            if valid != old, let t = slice.metadata.annotation(WellKnownKeys.lastChangeTriggerTime), let date = parseRFC3339(t) {
                out.triggerTimes.append(date)
            }
        }
        step.dirty.formUnion(pods.setRejectedSlice(key, service: rejectedFor))
        if valid == old { return }
        out.endpointSliceChanges += 1
        if let owner {
            slices[owner]?[key] = nil
            if slices[owner]?.entries.isEmpty == true { slices[owner] = nil }
            sliceOwner[key] = nil
            step.dirty.insert(owner)
        }
        guard let v = valid else { return }
        slices[v.service, default: ServiceSlices()][key] = v
        assert(v.service.namespace == key.namespace, "a slice's service is in its namespace")
        sliceOwner[key] = v.service.name
        step.dirty.insert(v.service)
    }

    /// A pod is compared in its validated form; a change re-plans the services whose
    /// selector matched it before or matches it now. An invalid pod is reported and left out.
    private mutating func recordPod(_ key: ProxyObjectKey, _ new: SourcedObject?, _ step: inout Step, _ out: inout Changes) {
        var valid: ValidatedPod?
        if let new, case .pod(let pod) = new.object {
            guard plansFromPods else {
                step.podDiagnostics.append(Diagnostic(file: new.file, kind: "Pod", namespace: key.namespace, name: key.name,
                                                      message: "pods are not read from this source (endpoints come from EndpointSlices); pod left out"))
                return
            }
            let (v, d) = PodValidator().validate(pod, file: new.file)
            step.podDiagnostics += d
            valid = v
        }
        if valid != nil && !pods.indexesSelectors { pods.indexSelectors() }
        step.dirty.formUnion(pods.setPod(key, valid))
    }

    private static func podSelection(_ object: SourcedObject?) -> PodSelection? {
        if case .service(let svc)? = object?.object { svc.podSelection } else { nil }
    }

    private mutating func reloadServiceCIDRs(_ out: inout Changes) {
        var cidrs = Set<CIDR>()
        for (_, o) in objects.filter({ $0.key.kind == .serviceCIDR }).sorted(by: { $0.key < $1.key }) {
            guard case .serviceCIDR(let sc) = o.object else { continue }
            let (c, d) = sc.validatedCIDRs(file: o.file)
            cidrs.formUnion(c)
            out.diagnostics += d
        }
        serviceCIDRs = cidrs.sorted()
    }

    private func findNode() -> Node? {
        objects.first { $0.key.kind == .node && $0.key.name.lowercased() == options.nodeName }
            .flatMap { if case .node(let n) = $0.value.object { return n } else { return nil } }
    }

    private func allServiceNames() -> Set<ServiceName> {
        Set(services.keys).union(otherServices.keys)
    }

    /// The Service validator for the current ServiceCIDRs.
    private var validator: ServiceValidator {
        ServiceValidator(nodePortRange: options.nodePortRange, serviceCIDRs: serviceCIDRs,
                         externalIPsDisabledBy: options.externalIPsDisabledBy)
    }

    /// Validates the named Services again: their new forms in `received` (nil: deleted), the
    /// others from the form they are kept in. Claims follow the validated versions, which are
    /// not accepted until `resolveConflicts` says so. Returns the entries from before.
    private mutating func revalidateServices(_ names: [ServiceName], received: [ServiceName: ReceivedService?],
                                             _ out: inout Changes) -> [ServiceName: ServiceEntry] {
        let validator = validator
        var previous: [ServiceName: ServiceEntry] = [:]
        for name in names {
            let form = if let new = received[name] { new } else { receivedForm(of: name) }
            if let old = services.removeValue(forKey: name) {
                claims.remove(old.service)
                if old.accepted { acceptedCount -= 1 }
                previous[name] = old
            }
            skipped[name] = nil
            otherServices[name] = nil
            if let form { keep(name, form, validator, &out) }
        }
        return previous
    }

    /// Validates a Service's form for the current ServiceCIDRs and keeps it where the outcome
    /// says: a valid one in `services` (its claims counted), any other in `otherServices`.
    private mutating func keep(_ name: ServiceName, _ form: ReceivedService, _ validator: ServiceValidator,
                               _ out: inout Changes) {
        let (outcome, d) = validator.validate(form) ?? (.rejected, [])
        out.diagnostics += d
        // Only a Service valid without the ServiceCIDR check can be valid with it.
        if case .valid(let v) = outcome, case .valid(_, let notes) = form {
            assert(v.name == name, "a Service's key names it")
            services.update(ServiceEntry(service: v, accepted: false, notes: notes))
            claims.add(v)
            return
        }
        if case .skipped(let s) = outcome { skipped[name] = s }
        otherServices[name] = form
    }

    /// Marks the accepted services after the named services were revalidated; returns the
    /// services whose acceptance or definition changed. O(changed services) unless one of
    /// their claims (old or new) is shared, then O(services).
    private mutating func resolveConflicts(_ changed: Set<ServiceName>, previous: [ServiceName: ServiceEntry],
                                           _ out: inout Changes) -> Set<ServiceName> {
        /// The accepted version before this batch.
        func wasAccepted(_ name: ServiceName) -> ValidatedService? {
            let entry = changed.contains(name) ? previous[name] : services[name]
            return entry.flatMap { $0.accepted ? $0.service : nil }
        }
        let contended = changed.contains { name in
            claims.isContended(new: services[name]?.service, old: [previous[name]?.service])
        }
        var newAccepted: [ServiceName: ValidatedService] = [:]
        var scope = changed
        if contended {
            let (list, conflicts) = ServiceConflictChecker().check(services.elements.map(\.service))
            for s in list { newAccepted[s.name] = s }
            scope = Set(accepted.keys).union(previous.lazy.filter(\.value.accepted).map(\.key)).union(newAccepted.keys)
            // Report conflicts of the services that changed (not every sync).
            out.diagnostics += conflicts.filter { d in
                guard let ns = d.namespace, let n = d.name else { return true }
                return changed.contains(ServiceName(namespace: ns, name: n))
            }
        } else {
            for name in changed { newAccepted[name] = services[name]?.service }
        }
        var dirty = Set<ServiceName>()
        for name in scope {
            let old = wasAccepted(name), new = newAccepted[name]
            if old != new {
                dirty.insert(name)
                if let old { for f in old.families { acceptedFamilies[f, default: 0] -= 1 } }
                if let new { for f in new.families { acceptedFamilies[f, default: 0] += 1 } }
            }
            setAccepted(name, new != nil)
        }
        acceptedFamilies = acceptedFamilies.filter { $0.value > 0 }
        return dirty
    }

    private mutating func setAccepted(_ name: ServiceName, _ accepted: Bool) {
        var changed = false
        services.modify(name) { entry in
            changed = entry.accepted != accepted
            entry.accepted = accepted
        }
        if changed { acceptedCount += accepted ? 1 : -1 }
    }

    /// Re-plans everything for a new node context.
    private mutating func replanAll(_ context: NodeContext) {
        nodeContext = context
        awaitingEndpoints = []
        planned = [:]
        healthChecks = [:]
        noLocalByService = [:]
        noLocalEndpoints = ["internal": 0, "external": 0]
        planned.reserveCapacity(accepted.count)
        for service in accepted.values {
            let p = plan(service, context: context)
            if !p.isEmpty { planned[service.name] = p }
            track(service.name, service, p)
        }
    }

    /// Re-plans one service; records its changed ports and conntrack targets.
    private mutating func replan(_ name: ServiceName, context: NodeContext, _ out: inout Changes) {
        if !awaitingEndpoints.isEmpty { awaitingEndpoints.remove(name) }
        let old = planned[name] ?? ServicePlans()
        let service = accepted[name]
        let new = plan(service, context: context)
        if old == new { return }
        out.replanned.insert(name)
        for family in IPFamily.allCases {
            let oldPorts = old[family] ?? [], newPorts = new[family] ?? []
            if oldPorts.isEmpty && newPorts.isEmpty { continue }
            if oldPorts.isEmpty {
                // A first plan (staging plans every service so): each port is new, no pairing by name.
                for p in newPorts { out.ports[family, default: [:]][p.name] = PlanChange(new: p) }
                continue
            }
            var byName: [ServicePortName: PlanChange] = [:]
            for p in oldPorts { byName[p.name, default: PlanChange()].old = p }
            for p in newPorts { byName[p.name, default: PlanChange()].new = p }
            for (port, change) in byName where change.old != change.new { out.ports[family, default: [:]][port] = change }
        }
        out.conntrackTargets += ConntrackTarget.targets(old: old, new: new)
        planned[name] = new.isEmpty ? nil : new
        track(name, service, new)
    }

    /// The plans of an accepted service (none: not accepted).
    private func plan(_ service: ValidatedService?, context: NodeContext) -> ServicePlans {
        guard let service else { return ServicePlans() }
        return context.planServicePorts(service, slices: endpointSlices(for: service.name))
    }

    /// Keeps the health-check targets and no-local-endpoint counts in step with one service's plan.
    /// `service`: the accepted service (nil: not accepted), looked up once by the caller.
    private mutating func track(_ name: ServiceName, _ service: ValidatedService?, _ plan: ServicePlans) {
        let ports = plan.all
        if let service, let port = service.healthCheckNodePort, let first = ports.first {
            healthChecks[name] = HealthCheckTarget(port: port, localEndpoints: first.localReadyEndpointCount)
        } else if !healthChecks.isEmpty {
            healthChecks[name] = nil
        }
        // Most clusters have no service without local endpoints: no lookup then.
        let old = noLocalByService.isEmpty ? NoLocalCount() : noLocalByService[name] ?? NoLocalCount()
        var new = NoLocalCount()
        for p in ports where p.localEndpoints.isEmpty {
            if p.internalPolicyLocal { new.internalPolicy += 1 }
            if p.externalPolicyLocal && p.usesLocalEndpoints { new.externalPolicy += 1 }
        }
        // Usually nothing changes (no Local policy): no table is touched then.
        guard new != old else { return }
        noLocalEndpoints["internal", default: 0] += new.internalPolicy - old.internalPolicy
        noLocalEndpoints["external", default: 0] += new.externalPolicy - old.externalPolicy
        noLocalByService[name] = new == NoLocalCount() ? nil : new
    }
}

/// A service port's plan before and after a change (nil: absent).
public struct PlanChange: Sendable, Hashable {
    public var old: ServicePortPlan?
    public var new: ServicePortPlan?

    public init(old: ServicePortPlan? = nil, new: ServicePortPlan? = nil) {
        self.old = old
        self.new = new
    }
}

/// Which validated services claim each ClusterIP and NodePort: lets the planner tell a
/// change that cannot conflict (every claim unique) from one that needs the full check.
struct ClaimIndex: Sendable {
    enum Claim: Hashable, Sendable {
        case clusterIP(IPAddress)
        case nodePort(UInt16, L4Protocol)
    }

    private var holders: [Claim: Int] = [:]

    static func claims(_ s: ValidatedService) -> [Claim] {
        s.clusterIPs.map { .clusterIP($0) } + s.ports.compactMap { p in p.nodePort.map { .nodePort($0, p.proto) } }
    }

    mutating func add(_ s: ValidatedService) {
        for c in Self.claims(s) { holders[c, default: 0] += 1 }
    }

    mutating func remove(_ s: ValidatedService) {
        for c in Self.claims(s) {
            let n = (holders[c] ?? 1) - 1
            holders[c] = n > 0 ? n : nil
        }
    }

    /// True if a service other than `new` holds a claim of `new` or of its earlier versions
    /// `old` (then a service that lost to it may now win, or it may lose).
    func isContended(new: ValidatedService?, old: [ValidatedService?]) -> Bool {
        var own: [Claim: Int] = [:]
        if let new { for c in Self.claims(new) { own[c, default: 0] += 1 } }
        let all = Set(own.keys).union(old.compactMap { $0 }.flatMap(Self.claims))
        return all.contains { (holders[$0] ?? 0) > (own[$0] ?? 0) }
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

/// One service's valid EndpointSlices, in key order: a small sorted array (a service has one
/// or a few), not a dictionary per service.
struct ServiceSlices: Sendable {
    private(set) var entries: [(key: ProxyObjectKey, slice: ValidatedEndpointSlice)] = []

    subscript(key: ProxyObjectKey) -> ValidatedEndpointSlice? {
        get { entries.first { $0.key == key }?.slice }
        set {
            if let i = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[i].slice = newValue } else { entries.remove(at: i) }
            } else if let newValue {
                entries.insert((key, newValue), at: entries.firstIndex { key < $0.key } ?? entries.endIndex)
            }
        }
    }
}
