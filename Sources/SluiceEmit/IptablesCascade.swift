/// The `-m statistic --mode random --probability p` cascade that iptables mode uses to pick
/// an endpoint, generalized to weights.
///
/// Rule `i` (0-based) of a policy chain with `n` endpoints matches with probability
/// `p_i = w_i / Σ_{j≥i} w_j`; the last rule is unconditional. The chance of reaching rule `i`
/// is `Π_{j<i} (1 − p_j) = Σ_{j≥i} w_j / Σ w`, so endpoint `i` is chosen with probability
/// `w_i / Σ w`. With equal weights `p_i = 1/(n−i)`, which is upstream's
/// `computeProbability(n−i)`; since both quotients are correctly rounded from the same real
/// number, the strings are byte-identical to upstream's.
public enum IptablesCascade {
    /// The probability strings for a cascade over `weights` (all must be > 0): one string per
    /// endpoint except the last, which is unconditional. Empty for zero or one endpoint.
    public static func probabilities(weights: [UInt32]) -> [String] {
        guard weights.count > 1 else { return [] }
        var remaining = weights.reduce(UInt64(0)) { $0 + UInt64($1) }
        var out: [String] = []
        out.reserveCapacity(weights.count - 1)
        for w in weights.dropLast() {
            out.append(formatProbability(Double(w) / Double(remaining)))
            remaining -= UInt64(w)
        }
        return out
    }

    /// Formats like Go's and C's `%0.10f`: the exact binary value of `p` rounded half-to-even
    /// to 10 decimal places. `p` must be within 0…1.
    public static func formatProbability(_ p: Double) -> String {
        precondition(p >= 0 && p <= 1, "probability out of range: \(p)")
        let scale: UInt64 = 10_000_000_000
        let scaled = scaledRounded(p, scale: scale)
        let whole = scaled / scale
        let frac = String(scaled % scale)
        return "\(whole)." + String(repeating: "0", count: 10 - frac.count) + frac
    }

    /// `round_half_even(p × scale)` computed exactly: `p = m × 2^e` with integer `m`, so
    /// `p × scale = (m × scale) / 2^(−e)`, a 128-bit integer shifted right.
    static func scaledRounded(_ p: Double, scale: UInt64) -> UInt64 {
        if p == 0 { return 0 }
        let m: UInt64 = p.significandBitPattern | (p.isNormal ? UInt64(1) << 52 : 0)
        let e: Int = p.isNormal ? Int(p.exponent) - 52 : -1074
        let product = m.multipliedFullWidth(by: scale)  // (high, low): < 2^87
        // p ≤ 1 implies e ≤ −52 (1.0 is 2^52 × 2^−52), so the shift is to the right.
        let k = -e
        precondition(k > 0)
        if k >= 128 { return 0 }  // product < 2^87 ≤ 2^(k−1): rounds to 0
        let n = U128(high: product.high, low: product.low)
        var q = n.shiftedRight(k)
        let rem = n.subtracting(q.shiftedLeft(k))
        let half = U128.one.shiftedLeft(k - 1)
        if rem > half || (rem == half && q.low & 1 == 1) {
            q = q.adding(.one)
        }
        return q.low
    }
}

/// Minimal unsigned 128-bit arithmetic for exact decimal formatting.
struct U128: Comparable {
    var high: UInt64
    var low: UInt64

    static let one = U128(high: 0, low: 1)

    func shiftedRight(_ k: Int) -> U128 {
        if k == 0 { return self }
        if k >= 128 { return U128(high: 0, low: 0) }
        if k >= 64 { return U128(high: 0, low: high >> UInt64(k - 64)) }
        return U128(high: high >> UInt64(k), low: (low >> UInt64(k)) | (high << UInt64(64 - k)))
    }

    func shiftedLeft(_ k: Int) -> U128 {
        if k == 0 { return self }
        if k >= 128 { return U128(high: 0, low: 0) }
        if k >= 64 { return U128(high: low << UInt64(k - 64), low: 0) }
        return U128(high: (high << UInt64(k)) | (low >> UInt64(64 - k)), low: low << UInt64(k))
    }

    func adding(_ o: U128) -> U128 {
        let (l, carry) = low.addingReportingOverflow(o.low)
        return U128(high: high &+ o.high &+ (carry ? 1 : 0), low: l)
    }

    func subtracting(_ o: U128) -> U128 {
        let (l, borrow) = low.subtractingReportingOverflow(o.low)
        return U128(high: high &- o.high &- (borrow ? 1 : 0), low: l)
    }

    static func < (a: U128, b: U128) -> Bool { (a.high, a.low) < (b.high, b.low) }
}
