extension Duration {
    /// This duration in seconds, as a `Double` (what metrics, logs and reports print).
    public var inSeconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
