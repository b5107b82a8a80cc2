/// client-go's reflector backoff (`NewExponentialBackoffManager(800ms, 30s, 2m, 2.0, 1.0)`):
/// each wait is the current step plus up to `jitter` × step at random; the step doubles up
/// to `max`; after `resetAfter` without a backoff it starts again at `initial`.
public struct Backoff: Sendable {
    public struct Policy: Sendable {
        public var initial: Duration
        public var max: Duration
        public var factor: Double
        public var jitter: Double
        public var resetAfter: Duration

        public init(initial: Duration = .milliseconds(800), max: Duration = .seconds(30), factor: Double = 2.0,
                    jitter: Double = 1.0, resetAfter: Duration = .seconds(120)) {
            self.initial = initial
            self.max = max
            self.factor = factor
            self.jitter = jitter
            self.resetAfter = resetAfter
        }
    }

    public let policy: Policy
    private var step: Duration
    private var last: ContinuousClock.Instant?

    public init(_ policy: Policy = Policy()) {
        self.policy = policy
        self.step = policy.initial
    }

    /// The next wait.
    public mutating func next() -> Duration {
        let now = ContinuousClock.now
        if let last, now - last > policy.resetAfter { step = policy.initial }
        last = now
        let base = step
        step = min(step * policy.factor, policy.max)
        let jittered = base + base * Double.random(in: 0..<1) * policy.jitter
        return min(jittered, policy.max)
    }

    public mutating func reset() {
        step = policy.initial
        last = nil
    }
}
