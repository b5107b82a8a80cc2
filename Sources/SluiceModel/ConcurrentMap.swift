import Dispatch

extension Array where Element: Sendable {
    /// `transform` applied to every element on up to `workers` threads
    /// (`DispatchQueue.concurrentPerform`); the results in the elements' order. Worker `w`
    /// takes every `workers`-th element and gets its index, for per-worker state (a decoder).
    /// With one worker, or one element, it runs on the caller's thread.
    public func concurrentMap<Result>(workers: Int, _ transform: @Sendable (_ worker: Int, Element) -> Result) -> [Result] {
        let workers = Swift.max(1, Swift.min(workers, count))
        if workers == 1 { return map { transform(0, $0) } }
        let slots = DisjointSlots<Result>(count)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for i in stride(from: w, to: count, by: workers) { slots.set(i, transform(w, self[i])) }
        }
        return slots.values
    }
}

/// Slots written concurrently at distinct indices (each by one worker), read once all are
/// written. Backed by raw memory, so that writers never touch a shared Swift array.
private final class DisjointSlots<Value>: @unchecked Sendable {
    private let buffer: UnsafeMutableBufferPointer<Value?>

    init(_ count: Int) {
        buffer = .allocate(capacity: count)
        buffer.initialize(repeating: nil)
    }

    deinit {
        buffer.deinitialize()
        buffer.deallocate()
    }

    func set(_ index: Int, _ value: Value) { buffer[index] = value }

    var values: [Value] { buffer.map { $0! } }
}
