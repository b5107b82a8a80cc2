import Foundation

/// A fault the soak injects through the fake API server.
public enum SoakFault: String, Codable, Sendable, CaseIterable {
    /// A new token is written to the daemon's token file; the server accepts the old and the
    /// new one for the overlap, then only the new one (a projected service-account token).
    case tokenRotation
    /// Every open watch is cut in the middle of an event.
    case watchDisconnect
    /// Watches stall, changes go on, history is compacted, then every connection is cut:
    /// the daemon resumes from a resourceVersion that is gone (410) and lists again.
    case gone
    /// Open watches go silent for good (the server neither sends nor closes): the daemon
    /// must notice by itself (`watchProgressTimeout`) and watch again.
    case stall
    /// Every connection, idle ones included, is closed (an API server restart).
    case serverRestart
}

/// The soak: a fixed number of endpoint changes at a steady rate through the API watch,
/// with the faults injected in turn every `faultEvery` changes. Counted in changes, not
/// seconds, so a CI run injects the same faults however fast the machine is.
public struct SoakOptions: Codable, Sendable {
    /// Endpoint changes to write.
    public var changes: Int
    /// Offered changes per second.
    public var rate: Double
    /// Changes between two faults (0: no faults).
    public var faultEvery: Int
    /// Changes written while the watches stall before the compaction (`gone`).
    public var stallChanges: Int
    /// Changes during which the old token stays accepted after a rotation (0: cut at once,
    /// so the daemon's next request gets 401 and re-reads its token file).
    public var tokenOverlapChanges: Int
    /// Seconds between two bookmarks the server sends on every open watch (kube-apiserver:
    /// about a minute), scaled down with the daemon's progress timeout.
    public var bookmarkSeconds: Double = 1
    /// The daemon's `--watch-progress-timeout` (its default: 150 s against a minute of bookmarks).
    public var watchProgressTimeout: Double = 5
    /// Seconds between two samples of the daemon's RSS and open files.
    public var sampleSeconds: Double
    /// Budget for the daemon to commit every change and for the kernel to equal the compile.
    public var convergeTimeout: Double

    public init(changes: Int, rate: Double, faultEvery: Int, stallChanges: Int, tokenOverlapChanges: Int,
                sampleSeconds: Double = 10, convergeTimeout: Double = 600) {
        self.changes = changes
        self.rate = rate
        self.faultEvery = faultEvery
        self.stallChanges = stallChanges
        self.tokenOverlapChanges = tokenOverlapChanges
        self.sampleSeconds = sampleSeconds
        self.convergeTimeout = convergeTimeout
    }

    /// `seconds` at `rate`, a fault every `faultInterval` s, stalls of `stallSeconds`, the
    /// old token accepted for `tokenOverlapSeconds` after a rotation.
    public init(seconds: Double, rate: Double, faultInterval: Double, stallSeconds: Double, tokenOverlapSeconds: Double,
                convergeTimeout: Double) {
        self.init(changes: Int(seconds * rate), rate: rate, faultEvery: Int(faultInterval * rate),
                  stallChanges: max(1, Int(stallSeconds * rate)), tokenOverlapChanges: Int(tokenOverlapSeconds * rate),
                  sampleSeconds: max(1, min(10, seconds / 30)), convergeTimeout: convergeTimeout)
    }

    /// Seconds the producer needs at the offered rate.
    public var seconds: Double { Double(changes) / rate }
}
