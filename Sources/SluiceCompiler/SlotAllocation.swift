import SluiceModel

/// How a group of weighted endpoints is spread over the slots of an endpoint map.
///
/// A new connection draws `numgen random mod T` and takes the endpoint stored at that slot,
/// so endpoint *i* is chosen with probability `slots_i / T`.
///
/// - Weights are reduced by their greatest common divisor; equal weights give one slot per
///   endpoint, exactly kube-proxy's uniform `numgen random mod N`.
/// - If the reduced total exceeds `maxSlots`, the weights are scaled to `maxSlots` slots by
///   the largest-remainder method, so every endpoint's probability is within `1/maxSlots`
///   (1e-4 with the default) of `w_i / Σw`.
/// - Weight-0 endpoints get no slot and receive no new connections.
public struct SlotAllocation: Sendable, Hashable {
    /// Endpoints in slot order with the number of consecutive slots each one holds.
    public let slots: [(endpoint: WeightedEndpoint, count: UInt32)]
    /// The modulus `T`.
    public let total: UInt32

    public static func == (a: SlotAllocation, b: SlotAllocation) -> Bool {
        a.total == b.total && a.slots.map(\.endpoint) == b.slots.map(\.endpoint) && a.slots.map(\.count) == b.slots.map(\.count)
    }

    public func hash(into h: inout Hasher) {
        h.combine(total)
        for s in slots { h.combine(s.endpoint); h.combine(s.count) }
    }

    /// Default upper bound on `T` for weighted groups (1e-4 precision).
    public static let defaultMaxSlots: UInt32 = 10_000

    /// Allocates slots; returns nil when no endpoint has a positive weight.
    public init?(_ endpoints: [WeightedEndpoint], maxSlots: UInt32 = SlotAllocation.defaultMaxSlots) {
        let live = endpoints.filter { $0.weight > 0 }
        guard !live.isEmpty else { return nil }
        let g = live.reduce(UInt32(0)) { gcd($0, $1.weight) }
        let reduced = live.map { UInt64($0.weight / g) }
        let sum = reduced.reduce(0, +)
        // Never fewer slots than endpoints, so equal weights are always exact.
        let limit = max(UInt64(maxSlots), UInt64(live.count))
        if sum <= limit {
            slots = zip(live, reduced).map { ($0, UInt32($1)) }
            total = UInt32(sum)
            return
        }
        // Largest remainder: floor shares, then hand out the leftover slots to the largest
        // fractional parts (ties by endpoint order for determinism).
        var counts = reduced.map { $0 * limit / sum }
        var remainders = reduced.enumerated().map { (i, r) in (i, r * limit % sum) }
        let assigned = counts.reduce(0, +)
        remainders.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        for k in 0..<Int(limit - assigned) { counts[remainders[k].0] += 1 }
        slots = zip(live, counts).filter { $0.1 > 0 }.map { ($0, UInt32($1)) }
        total = UInt32(limit)
    }

    /// The endpoint at each slot, `0..<total`.
    public var slotTable: [WeightedEndpoint] {
        var out: [WeightedEndpoint] = []
        out.reserveCapacity(Int(total))
        for s in slots { out += Array(repeating: s.endpoint, count: Int(s.count)) }
        return out
    }

    /// Probability that a new connection picks each endpoint.
    public var probabilities: [(endpoint: WeightedEndpoint, probability: Double)] {
        slots.map { ($0.endpoint, Double($0.count) / Double(total)) }
    }
}

func gcd(_ a: UInt32, _ b: UInt32) -> UInt32 {
    var (x, y) = (a, b)
    while y != 0 { (x, y) = (y, x % y) }
    return x
}
