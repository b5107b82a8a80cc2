/// One service's port plans in every family: a single array ordered by family (IPv4 first),
/// not a dictionary per service. Nearly every service has one family, and the planner keeps
/// one of these per service (100k at scale), so a one-entry `[IPFamily: [ServicePortPlan]]`
/// cost a dictionary allocation each for nothing.
public struct ServicePlans: Sendable, Hashable {
    /// Every plan, ordered by family; each plan's `family` says which it belongs to.
    public private(set) var all: [ServicePortPlan] = []

    public init() {}

    /// Appends one family's plans; families must come in order (`NodeContext.families` is).
    mutating func append(_ family: IPFamily, _ plans: [ServicePortPlan]) {
        precondition(all.last.map { $0.family < family } ?? true, "families out of order")
        all += plans
    }

    public var isEmpty: Bool { all.isEmpty }

    /// The families that have plans, in order.
    public var families: [IPFamily] {
        IPFamily.allCases.filter { f in all.contains { $0.family == f } }
    }

    /// One family's plans; nil when it has none (as a dictionary lookup would say). A
    /// single-family service returns its array as is, without copying.
    public subscript(family: IPFamily) -> [ServicePortPlan]? {
        guard let first = all.first else { return nil }
        if first.family == family && all.last!.family == family { return all }
        let some = all.filter { $0.family == family }
        return some.isEmpty ? nil : some
    }
}
