/// A Service that passed validation, and whether it also won the ClusterIP/NodePort
/// conflict check (`accepted`). The planner keeps one of these per valid Service: one map,
/// not a map of validated Services beside a second map of the accepted ones.
struct ServiceEntry: Sendable, Hashable, DenselyKeyed {
    var service: ValidatedService
    var accepted: Bool
    /// What validating it again (for new ServiceCIDRs) needs besides `service`.
    var notes: ServiceValidationNotes

    var denseKey: ServiceName { service.name }
}

/// The Services to proxy (validated and conflict-free): a read-only view of the planner's
/// valid Services that keeps the accepted ones. `count` is O(1); `keys` and `values` walk
/// every valid Service.
public struct AcceptedServices: Sendable {
    private let entries: DenseStore<ServiceEntry>
    public let count: Int

    init(_ entries: DenseStore<ServiceEntry>, count: Int) {
        self.entries = entries
        self.count = count
    }

    public var isEmpty: Bool { count == 0 }

    public subscript(name: ServiceName) -> ValidatedService? {
        guard let e = entries[name], e.accepted else { return nil }
        return e.service
    }

    /// The accepted Services' names, in no particular order.
    public var keys: some Sequence<ServiceName> {
        entries.elements.lazy.filter(\.accepted).map(\.service.name)
    }

    /// The accepted Services, in no particular order.
    public var values: some Sequence<ValidatedService> {
        entries.elements.lazy.filter(\.accepted).map(\.service)
    }
}
