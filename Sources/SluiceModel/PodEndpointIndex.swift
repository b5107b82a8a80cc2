/// What deriving a selector Service's endpoints from Pods needs, kept up to date one change
/// at a time for `IncrementalPlanner`: the valid Pods indexed by namespace and label, the
/// Services' selectors (`ServiceSelectorIndex`), the Nodes' zones, and the EndpointSlices
/// that name a service but were rejected whole (they still count as the service's own, so
/// its pods are not used). Every update returns the services whose derived slices may have
/// changed, found through the indexes: work follows the pods and services touched, not the
/// cluster's size.
///
/// Every Service's selection is kept (the planner keeps no Service object), but indexed by
/// label only from the first pod on (`indexSelectors`): a node fed by the API server, which
/// sends no pods, builds no index.
struct PodEndpointIndex: Sendable {
    /// One label (or selector pair) in one namespace.
    struct LabelKey: Hashable, Sendable {
        var namespace: String
        var key: String
        var value: String
    }

    private var pods: [ProxyObjectKey: ValidatedPod] = [:]
    private var podsByLabel: [LabelKey: Set<String>] = [:]
    private var selectors = ServiceSelectorIndex()
    private var zones: [String: String] = [:]
    private var rejectedSlices: [ProxyObjectKey: ServiceName] = [:]
    private var rejectedSliceCount: [ServiceName: Int] = [:]

    /// True when there is no valid pod (nothing is derived).
    var hasNoPods: Bool { pods.isEmpty }

    /// True once the selectors are indexed.
    var indexesSelectors: Bool { selectors.isIndexed }

    /// Indexes every service's selection (before the first pod is set).
    mutating func indexSelectors() {
        selectors.index()
    }

    /// Sets (nil: removes) a pod; returns the services that selected it before or select it
    /// now. Call `indexSelectors` first.
    mutating func setPod(_ key: ProxyObjectKey, _ pod: ValidatedPod?) -> Set<ServiceName> {
        let old = pods[key]
        if old == pod { return [] }
        var affected = Set<ServiceName>()
        if let old {
            affected.formUnion(services(selecting: old))
            for pair in labelKeys(old) { Self.remove(old.name, from: &podsByLabel, at: pair) }
        }
        pods[key] = pod
        if let pod {
            for pair in labelKeys(pod) { podsByLabel[pair, default: []].insert(pod.name) }
            affected.formUnion(services(selecting: pod))
        }
        return affected
    }

    /// A service's selection; nil without a selector.
    func selection(of service: ServiceName) -> PodSelection? { selectors.selection(of: service) }

    /// Sets (nil: removes) a service's selection.
    mutating func setSelection(_ service: ServiceName, _ selection: PodSelection?) {
        selectors.set(service, selection)
    }

    /// Sets (nil: removes) a node's zone; returns the services that select pods on that node.
    mutating func setZone(node: String, zone: String?) -> Set<ServiceName> {
        if zones[node] == zone { return [] }
        zones[node] = zone
        var affected = Set<ServiceName>()
        for pod in pods.values where pod.nodeName == node { affected.formUnion(services(selecting: pod)) }
        return affected
    }

    /// Records whether the EndpointSlice `key`, which names `service`, was rejected whole
    /// (nil: it was not, or it is gone); returns the services whose count of rejected
    /// slices went from or to zero.
    mutating func setRejectedSlice(_ key: ProxyObjectKey, service: ServiceName?) -> Set<ServiceName> {
        let old = rejectedSlices[key]
        if old == service { return [] }
        var affected = Set<ServiceName>()
        if let old {
            let n = (rejectedSliceCount[old] ?? 1) - 1
            rejectedSliceCount[old] = n > 0 ? n : nil
            if n == 0 { affected.insert(old) }
        }
        rejectedSlices[key] = service
        if let service {
            rejectedSliceCount[service, default: 0] += 1
            if rejectedSliceCount[service] == 1 { affected.insert(service) }
        }
        return affected
    }

    /// True if an EndpointSlice naming the service was rejected whole.
    func hasRejectedSlice(_ service: ServiceName) -> Bool { rejectedSliceCount[service] != nil }

    /// The slices derived from the pods `service`'s selector matches; empty without a selector.
    func derivedSlices(for service: ValidatedService) -> [ValidatedEndpointSlice] {
        guard let selection = selectors.selection(of: service.name) else { return [] }
        let selected = pods(selectedBy: selection, in: service.name.namespace)
        return EndpointSliceController.slices(for: service, selection: selection, pods: selected) { zones[$0] }
    }

    /// The pods of a namespace that carry every pair of the selector: the smallest label set
    /// among the pairs, filtered by the rest.
    func pods(selectedBy selection: PodSelection, in namespace: String) -> [ValidatedPod] {
        let sets = selection.selector.map { podsByLabel[LabelKey(namespace: namespace, key: $0.key, value: $0.value)] ?? [] }
        guard let smallest = sets.min(by: { $0.count < $1.count }) else { return [] }
        return smallest.compactMap { name in
            pods[ProxyObjectKey(kind: .pod, namespace: namespace, name: name)].flatMap { $0.matches(selection.selector) ? $0 : nil }
        }
    }

    /// The services whose selector matches the pod.
    private func services(selecting pod: ValidatedPod) -> Set<ServiceName> {
        selectors.services(selecting: pod)
    }

    /// Removes a pod name from an index entry, and the entry once it is empty.
    private static func remove(_ name: String, from index: inout [LabelKey: Set<String>], at key: LabelKey) {
        index[key]?.remove(name)
        if index[key]?.isEmpty == true { index[key] = nil }
    }

    private func labelKeys(_ pod: ValidatedPod) -> [LabelKey] {
        pod.labels.map { LabelKey(namespace: pod.namespace, key: $0.key, value: $0.value) }
    }
}
