import NIOConcurrencyHelpers
@testable import SluiceDaemon
import SluiceModel
import Testing

/// The inbox paces a source that delivers the first state faster than the sync loop stages
/// it (`SyncLoop.roomForChanges`): the source waits while too much is pending and goes
/// on when the loop takes it; it never waits once every source is synced, nor after it is
/// cancelled.
struct InboxTests {
    func upserts(_ n: Int, from first: Int = 0) -> SourceDelta {
        var d = SourceDelta(synced: false)
        for i in first..<(first + n) {
            let key = ProxyObjectKey(kind: .node, name: "node-\(i)")
            d.upserts[key] = SourcedObject(.node(Node(metadata: ObjectMeta(name: "node-\(i)"))))
        }
        return d
    }

    /// Runs `waitForRoom` in a task; `done` turns true when it returned.
    func waiter(_ inbox: Inbox, below limit: Int, afterSync: Bool = false) -> (Task<Void, Never>, NIOLockedValueBox<Bool>) {
        let done = NIOLockedValueBox(false)
        let task = Task {
            await inbox.waitForRoom(below: limit, afterSync: afterSync)
            done.withLockedValue { $0 = true }
        }
        return (task, done)
    }

    @Test("a source waits while more than the limit is pending and goes on once the loop takes it")
    func waitsUntilTaken() async throws {
        let inbox = Inbox(sources: 1)
        _ = inbox.merge(source: 0, upserts(10))
        let (task, done) = waiter(inbox, below: 5)
        _ = try await waitUntil("the source waits") { inbox.waitingSources == 1 }
        #expect(!done.withLockedValue { $0 })
        #expect(inbox.take().count == 10)
        await task.value
        #expect(done.withLockedValue { $0 } && inbox.waitingSources == 0)
    }

    @Test("no wait at or below the limit, nor once every source is synced")
    func noWaitWhenThereIsRoom() async throws {
        let inbox = Inbox(sources: 2)
        _ = inbox.merge(source: 0, upserts(5))
        let (first, firstDone) = waiter(inbox, below: 5)
        await first.value
        #expect(firstDone.withLockedValue { $0 })
        _ = inbox.merge(source: 0, upserts(20, from: 5))
        var synced = upserts(1, from: 100)
        synced.synced = true
        _ = inbox.merge(source: 0, synced)
        _ = inbox.merge(source: 1, SourceDelta(synced: true))
        let (second, secondDone) = waiter(inbox, below: 5)
        await second.value
        #expect(secondDone.withLockedValue { $0 } && inbox.waitingSources == 0)
    }

    @Test("once synced, a source pacing a relist or a backlog (afterSync) still waits until the loop takes what is pending")
    func waitsAfterSyncWhenAsked() async throws {
        let inbox = Inbox(sources: 1)
        var synced = upserts(1)
        synced.synced = true
        _ = inbox.merge(source: 0, synced)
        _ = inbox.take()
        _ = inbox.merge(source: 0, upserts(10, from: 1))
        let (task, done) = waiter(inbox, below: 5, afterSync: true)
        _ = try await waitUntil("the source waits") { inbox.waitingSources == 1 }
        #expect(!done.withLockedValue { $0 })
        #expect(inbox.take().count == 10)
        await task.value
        #expect(done.withLockedValue { $0 } && inbox.waitingSources == 0)
        // At or below the limit it goes on at once.
        _ = inbox.merge(source: 0, upserts(5, from: 20))
        let (second, secondDone) = waiter(inbox, below: 5, afterSync: true)
        await second.value
        #expect(secondDone.withLockedValue { $0 })
    }

    @Test("a cancelled source stops waiting")
    func cancellationEndsTheWait() async throws {
        let inbox = Inbox(sources: 1)
        _ = inbox.merge(source: 0, upserts(10))
        let (task, done) = waiter(inbox, below: 5)
        _ = try await waitUntil("the source waits") { inbox.waitingSources == 1 }
        task.cancel()
        await task.value
        #expect(done.withLockedValue { $0 } && inbox.waitingSources == 0)
    }
}
