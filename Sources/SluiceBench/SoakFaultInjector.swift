import Foundation
import SluiceKubeFake
import SluiceNetlink

/// Injects the soak's faults (`SoakFault`, in turn) through the fake API server at their
/// change index, and the daemon's token rotations through its token file; counts them.
final class SoakFaultInjector {
    let server: FakeAPIServer
    let tokenFile: String
    let options: SoakOptions
    private(set) var injected: [SoakFault: Int] = [:]
    /// Token generation now in the file.
    private(set) var tokenGeneration = 0
    /// Seconds from each `stall` to the daemon's watches all open again (it noticed them).
    private(set) var stallRecoveries: [Double] = []
    private var pending: [(at: Int, step: Step)] = []
    private var started = 0
    /// Faults due and not started yet.
    private var due = 0
    /// Watches the daemon holds open when nothing is broken (`begin()`).
    private var steadyWatches = 1
    /// The running `stall`: when it began and how many watches were open before.
    private var stall: (since: Double, watches: Int)?

    /// The second half of a fault, some changes after its start.
    enum Step {
        /// `gone`: compaction, then the stalled connections are cut.
        case endStall
        case retireToken(generation: Int)
    }

    /// Writes the first token to `tokenFile`, and makes the server require it.
    init(server: FakeAPIServer, tokenFile: String, options: SoakOptions) throws {
        self.server = server
        self.tokenFile = tokenFile
        self.options = options
        try writeToken(Self.token(0))
        server.setAcceptedTokens([Self.token(0)])
    }

    static func token(_ generation: Int) -> String { "soak-token-\(generation)" }

    /// Runs before change `k`: the pending steps that are due, then the next fault when
    /// one is due (every `faultEvery` changes). A `stall` lasts until the daemon has watched
    /// again, so no later fault ends it for the daemon: faults due meanwhile wait for that.
    func beforeChange(_ k: Int) throws {
        while let p = pending.first, p.at <= k {
            pending.removeFirst()
            try run(p.step)
        }
        noteStallRecovery()
        if options.faultEvery > 0, k > 0, k % options.faultEvery == 0 { due += 1 }
        if due > 0 && !stalling, try startNext(at: k) { due -= 1 }
    }

    /// After the last change: completes what is pending and injects the faults still due
    /// (waiting for each stall to end, at most `convergeTimeout` in all).
    func finish() throws {
        let deadline = CommitMonitor.now() + options.convergeTimeout
        while CommitMonitor.now() < deadline {
            for p in pending { try run(p.step) }
            pending = []
            noteStallRecovery()
            if stall != nil { usleep(10_000); continue }
            guard due > 0 else { return }
            if try startNext(at: Int.max / 2) { due -= 1 } else { usleep(10_000) }
        }
    }

    private var stalling: Bool {
        stall != nil || pending.contains { if case .endStall = $0.step { return true } else { return false } }
    }

    /// Starts the next fault in turn; false (nothing started) when it is a `stall` and the
    /// daemon is not watching everything yet (it would stall nothing).
    private func startNext(at k: Int) throws -> Bool {
        let fault = SoakFault.allCases[started % SoakFault.allCases.count]
        if fault == .stall && server.openWatchCount() < steadyWatches { return false }
        try start(fault, at: k)
        started += 1
        return true
    }

    /// Takes the watches open now as the daemon's steady state (call before the first change).
    func begin() {
        steadyWatches = server.openWatchCount()
    }

    private func start(_ fault: SoakFault, at k: Int) throws {
        injected[fault, default: 0] += 1
        switch fault {
        case .tokenRotation:
            tokenGeneration += 1
            try writeToken(Self.token(tokenGeneration))
            if options.tokenOverlapChanges > 0 {
                server.setAcceptedTokens([Self.token(tokenGeneration - 1), Self.token(tokenGeneration)])
                schedule(.retireToken(generation: tokenGeneration), at: k + options.tokenOverlapChanges)
            } else {
                try run(.retireToken(generation: tokenGeneration))
            }
        case .watchDisconnect:
            server.dropWatchConnections(partialEvent: true)
        case .gone:
            server.stallWatches(newWatchesToo: true)
            schedule(.endStall, at: k + options.stallChanges)
        case .stall:
            stall = (CommitMonitor.now(), server.openWatchCount())
            server.stallWatches(newWatchesToo: false)
        case .serverRestart:
            server.dropAllConnections()
        }
    }

    /// Records the end of the running `stall` once as many watches are open as before it.
    private func noteStallRecovery() {
        guard let (since, watches) = stall, server.openWatchCount() >= max(watches, steadyWatches) else { return }
        stallRecoveries.append(CommitMonitor.now() - since)
        stall = nil
    }

    private func run(_ step: Step) throws {
        switch step {
        case .endStall:
            server.compact()
            server.stopStalling()
            server.dropAllConnections()
        case .retireToken(let generation):
            // A newer rotation retires its own predecessor.
            if generation == tokenGeneration { server.setAcceptedTokens([Self.token(generation)]) }
        }
    }

    private func schedule(_ step: Step, at index: Int) {
        pending.append((index, step))
        pending.sort { $0.at < $1.at }
    }

    /// Replaces the file in one rename, as the kubelet swaps a projected token.
    private func writeToken(_ token: String) throws {
        let tmp = tokenFile + ".tmp"
        try Data((token + "\n").utf8).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, tokenFile) == 0 else { throw BenchError("rename \(tmp) → \(tokenFile): errno \(errno)") }
    }
}
