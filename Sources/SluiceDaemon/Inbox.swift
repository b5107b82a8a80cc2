import Foundation
import SluiceModel

/// What the sources delivered that the sync loop has not taken yet. Lock-protected, so a
/// source delivers from any thread without waiting for a commit in flight: everything that
/// arrives meanwhile is merged here and goes out in the next commit.
///
/// With several sources an object present in more than one is taken from the first source
/// that has it, which needs each source's objects; with one source nothing is kept beyond
/// the pending changes (the engine holds the objects).
final class Inbox: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: ObjectChanges = [:]
    private var sourceObjects: [[ProxyObjectKey: SourcedObject]]
    private var sourceSynced: [Bool]
    private var currentFamilies: [IPFamily] = [.ipv4]
    /// The host's addresses last received, and whether the loop has yet to take them.
    private var hostAddresses: [IPAddress]?
    private var hostAddressesPending = false
    /// Sources waiting for room (`waitForRoom`), by id; `take` lets them all go on.
    private var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter = 0

    init(sources: Int) {
        sourceObjects = sources > 1 ? Array(repeating: [:], count: sources) : []
        sourceSynced = Array(repeating: false, count: max(1, sources))
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Merges a delta; returns true if it is the one that made its source synced.
    func merge(source index: Int, _ delta: SourceDelta) -> Bool {
        locked {
            if sourceObjects.isEmpty {
                for (key, new) in delta.changes { pending[key] = .some(new) }
            } else {
                for (key, new) in delta.changes {
                    sourceObjects[index][key] = new ?? nil
                    pending[key] = .some(sourceObjects.lazy.compactMap { $0[key] }.first)
                }
            }
            guard delta.synced, !sourceSynced[index] else { return false }
            sourceSynced[index] = true
            return true
        }
    }

    /// Records the host's interface addresses; returns false when they are the ones last
    /// received (nothing to do).
    func setHostAddresses(_ addresses: [IPAddress]) -> Bool {
        locked {
            guard addresses != hostAddresses else { return false }
            hostAddresses = addresses
            hostAddressesPending = true
            return true
        }
    }

    /// The host's addresses, if they changed since the last call.
    func takeHostAddresses() -> [IPAddress]? {
        locked {
            defer { hostAddressesPending = false }
            return hostAddressesPending ? hostAddresses : nil
        }
    }

    /// Every source has delivered its initial state.
    var allSynced: Bool { locked { sourceSynced.allSatisfy { $0 } } }

    /// Takes every pending change (and lets sources waiting for room go on).
    func take() -> ObjectChanges {
        let (changes, waiting) = locked {
            defer {
                pending = [:]
                waiters = [:]
            }
            return (pending, waiters)
        }
        for w in waiting.values { w.resume() }
        return changes
    }

    /// Returns once at most `limit` changes are pending (after the next `take`), at once if
    /// every source is synced (unless `afterSync`: pacing relists and backlogs too), or when
    /// the task is cancelled.
    func waitForRoom(below limit: Int, afterSync: Bool = false) async {
        let id = locked {
            nextWaiter += 1
            return nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let wait = locked {
                    guard pending.count > limit, afterSync || !sourceSynced.allSatisfy({ $0 }), !Task.isCancelled else { return false }
                    waiters[id] = c
                    return true
                }
                if !wait { c.resume() }
            }
        } onCancel: {
            let c = locked { waiters.removeValue(forKey: id) }
            c?.resume()
        }
    }

    /// Sources waiting for room (tests).
    var waitingSources: Int { locked { waiters.count } }

    /// The families in use (for the health's "queued" mark, set by the loop).
    var families: [IPFamily] {
        get { locked { currentFamilies } }
        set { locked { currentFamilies = newValue } }
    }
}
