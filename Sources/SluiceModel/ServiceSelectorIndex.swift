/// The Services' pod selections (the planner's only copy: it keeps no Service object), and,
/// once `index()` was called, indexed so that the services selecting a pod are found from the
/// pod's labels: each selector under its smallest pair (a pod it selects carries that pair),
/// then checked whole. Part of `PodEndpointIndex`.
struct ServiceSelectorIndex: Sendable {
    private var selections: [ServiceName: PodSelection] = [:]
    /// Nil until `index()`.
    private var byPair: [PodEndpointIndex.LabelKey: Set<ServiceName>]?

    /// True once the selections are indexed by pair.
    var isIndexed: Bool { byPair != nil }

    /// Indexes every selection by pair (from then on `set` keeps the index up to date).
    mutating func index() {
        byPair = [:]
        for (service, selection) in selections { byPair![Self.indexPair(service, selection), default: []].insert(service) }
    }

    /// A service's selection; nil without a selector.
    func selection(of service: ServiceName) -> PodSelection? { selections[service] }

    /// Sets (nil: removes) a service's selection.
    mutating func set(_ service: ServiceName, _ selection: PodSelection?) {
        if byPair != nil, let old = selections[service] {
            let pair = Self.indexPair(service, old)
            byPair![pair]?.remove(service)
            if byPair![pair]?.isEmpty == true { byPair![pair] = nil }
        }
        selections[service] = selection
        if byPair != nil, let selection { byPair![Self.indexPair(service, selection), default: []].insert(service) }
    }

    /// The services whose selector matches the pod (none before `index()`).
    func services(selecting pod: ValidatedPod) -> Set<ServiceName> {
        guard let byPair else { return [] }
        var out = Set<ServiceName>()
        for (key, value) in pod.labels {
            let pair = PodEndpointIndex.LabelKey(namespace: pod.namespace, key: key, value: value)
            for service in byPair[pair] ?? [] where selections[service].map({ pod.matches($0.selector) }) == true {
                out.insert(service)
            }
        }
        return out
    }

    private static func indexPair(_ service: ServiceName, _ selection: PodSelection) -> PodEndpointIndex.LabelKey {
        let pair = selection.selector.min { $0.key < $1.key }!
        return PodEndpointIndex.LabelKey(namespace: service.namespace, key: pair.key, value: pair.value)
    }
}
