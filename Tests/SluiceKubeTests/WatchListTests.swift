import Foundation
import NIOConcurrencyHelpers
import SluiceKube
import SluiceKubeFake
import SluiceModel
import Testing

/// Lists by watch (`ReflectorOptions.useWatchList`, client-go's WatchListClient) against the
/// fake server with and without its WatchList gate.
@Suite("Reflector: lists by watch (sendInitialEvents)", .timeLimit(.minutes(3)))
struct WatchListTests {
    func watchListOptions(pageSize: Int = 500, watchTimeout: ClosedRange<Int> = 60...60,
                          grace: Duration = .seconds(5)) -> ReflectorOptions {
        var o = testOptions(pageSize: pageSize, watchTimeout: watchTimeout, grace: grace)
        o.useWatchList = true
        return o
    }

    @Test("the first list streams in parts of pageSize over one watch, ends at the initial-events-end bookmark, and the same watch goes on")
    func streamedFirstList() async throws {
        try await withFake({ $0.watchList = true }) { server in
            for i in 0..<7 { try server.create(service("svc-\(i)", clusterIP: "10.96.0.\(10 + i)")) }
            try server.create(service("headless", labels: [WellKnownKeys.headless: ""]))
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: watchListOptions(pageSize: 3))
            try await h.waitSynced()
            try await h.waitConverged(with: server)

            // Parts of 3, 3 and the last 1 (with .synced), in key order; the headless service is not selected.
            let log = h.eventLog
            #expect(log.count == 3)
            var names: [String?] = []
            for (i, e) in log.enumerated() {
                switch e {
                case .listed(let part) where i < 2:
                    #expect(part.count == 3)
                    names += part.map(\.metadata.name)
                case .synced(let rest) where i == 2:
                    #expect(rest.count == 1)
                    names += rest.map(\.metadata.name)
                default: Issue.record("unexpected event \(i): \(e)")
                }
            }
            #expect(names == (0..<7).map { "svc-\($0)" })

            // One request: the watch-list, with client-go's query; no list at all.
            let reqs = server.requests
            #expect(reqs.count == 1)
            #expect(reqs.first?.rawQuery ==
                    "allowWatchBookmarks=true&\(kubeProxySelectorQuery)&resourceVersion=&resourceVersionMatch=NotOlderThan&sendInitialEvents=true&timeoutSeconds=60&watch=true")
            let stats = h.reflector.statistics
            #expect(stats.watchLists == 1 && stats.lists == 1 && stats.listPages == 0 && !stats.watchListRefused)
            #expect(h.reflector.lastSyncResourceVersion == server.resourceVersion)

            // Later changes arrive as deltas on the same connection.
            try server.update(service("svc-1", port: 81))
            try server.delete(Service.self, name: "svc-2")
            try await h.waitConverged(with: server)
            #expect(server.requests.count == 1)
            let tail = h.eventLog.dropFirst(3)
            #expect(tail.count == 2)
            if case .updated(let old, let new)? = tail.first {
                #expect(old.spec.ports?.first?.port == 80 && new.spec.ports?.first?.port == 81)
            } else { Issue.record("expected .updated, got \(String(describing: tail.first))") }
            expectNoDuplicateDeliveries(h.eventLog)
            await h.stop()
            try await client.shutdown()
        }
    }

    @Test("a long list (events decoded on every core) arrives whole, in key order, each object once, with its content")
    func longStreamedList() async throws {
        try await withFake({ $0.watchList = true }) { server in
            let names = (0..<600).map { String(format: "svc-%04d", $0) }
            server.batch { for (i, n) in names.enumerated() { _ = try? server.create(service(n, port: 1000 + i)) } }
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: watchListOptions(pageSize: 100))
            try await h.waitSynced()
            try await h.waitConverged(with: server)
            var listed: [Service] = []
            for e in h.eventLog {
                switch e {
                case .listed(let part), .synced(let part): listed += part
                default: Issue.record("unexpected event \(e)")
                }
            }
            #expect(listed.map(\.metadata.name) == names)
            #expect(listed.map { $0.spec.ports?.first?.port } == names.indices.map { 1000 + $0 })
            await h.stop()
            try await client.shutdown()
        }
    }

    @Test("a first watch-list cut after some parts, with an object deleted before the retry: the retry is gathered whole and the vanished object is deleted")
    func cutFirstListDeletesWhatVanished() async throws {
        try await withFake({ $0.watchList = true }) { server in
            for i in 0..<6 { try server.create(service("svc-\(i)")) }
            // Cut after 4 events; then 503 for everything until svc-1 is gone, so the retry sees it gone.
            server.cutNextWatchLists(afterEvents: 4, thenUnavailable: true)
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: watchListOptions(pageSize: 2))
            // Two parts (svc-0…svc-3) are handed out before the cut.
            try await eventually { h.eventLog.count >= 2 && server.requests.contains { $0.status == 503 } }
            try server.delete(Service.self, name: "svc-1")
            server.clearFailures()
            try await h.waitSynced()
            try await h.waitConverged(with: server)
            #expect(h.consumerState.withLockedValue { $0.keys.map(\.name) }.sorted() == ["svc-0", "svc-2", "svc-3", "svc-4", "svc-5"])
            #expect(h.eventLog.contains { if case .deleted(let o) = $0 { o.metadata.name == "svc-1" } else { false } })
            let stats = h.reflector.statistics
            #expect(stats.lists == 1 && stats.relists == 0)
            await h.stop()
            try await client.shutdown()
        }
    }

    @Test("a server without the WatchList gate answers 422: one paged list instead, and no watch-list again")
    func refusedFallsBackToList() async throws {
        try await withFake { server in
            for n in ["a", "b", "c"] { try server.create(service(n)) }
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: watchListOptions(watchTimeout: 1...1, grace: .milliseconds(300)))
            try await h.waitSynced()
            try await h.waitConverged(with: server)
            guard case .synced(let all)? = h.eventLog.first else { Issue.record("first event is not .synced"); return }
            #expect(all.map(\.metadata.name) == ["a", "b", "c"])
            let reqs = server.requests
            #expect(reqs.first?.query["sendInitialEvents"] == "true" && reqs.first?.status == 422)
            #expect(reqs.dropFirst().first.map { !$0.isWatch && $0.status == 200 } == true)
            #expect(h.reflector.statistics.watchListRefused)

            // A relist (the watch's RV compacted away) lists again, without asking for a watch-list.
            server.clearRequests()
            server.stallWatches(newWatchesToo: true)
            try server.create(service("d"))
            server.compact()
            server.stopStalling()
            try await h.waitConverged(with: server)
            try await eventually { h.reflector.statistics.relists == 1 }
            #expect(!server.requests.contains { $0.query["sendInitialEvents"] != nil })
            await h.stop()
            try await client.shutdown()
        }
    }

    @Test("a relist by watch-list emits only the differences, as a paged relist does")
    func relistByWatchListEmitsDifferences() async throws {
        try await withFake({ $0.watchList = true }) { server in
            for n in ["a", "b", "c"] { try server.create(service(n)) }
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: watchListOptions(watchTimeout: 1...1, grace: .milliseconds(300)))
            try await h.waitSynced()
            try await eventually { server.openWatchCount() == 1 }
            let syncedRV = try #require(h.reflector.lastSyncResourceVersion)

            try changeBehindStalledWatch(server)
            try await h.waitConverged(with: server)
            try await eventually { h.reflector.statistics.relists == 1 }

            // The relist was a watch-list from the last RV seen.
            #expect(server.requests.contains { $0.query["sendInitialEvents"] == "true" && $0.query["resourceVersion"] == syncedRV })
            #expect(h.reflector.statistics.watchLists == 2)
            let tail = h.eventLog.dropFirst()
            #expect(tail.count == 3)
            #expect(tail.contains { if case .deleted(let o) = $0 { o.metadata.name == "b" } else { false } })
            #expect(tail.contains { if case .added(let o) = $0 { o.metadata.name == "d" } else { false } })
            #expect(tail.contains { if case .updated(_, let o) = $0 { o.metadata.name == "a" && o.spec.ports?.first?.port == 8443 } else { false } })
            await h.stop()
            try await client.shutdown()
        }
    }

    @Test("a relist hands its changes out as they arrive and waits for a slow consumer between buffers: it is never delivered whole at its end")
    func relistStreamsChangesAndWaitsForItsConsumer() async throws {
        let count = 3000
        try await withFake({ $0.watchList = true }) { server in
            for i in 0..<count { try server.create(service("svc-\(i)")) }
            let gate = PaceGate()
            var options = watchListOptions(watchTimeout: 1...1, grace: .milliseconds(300))
            options.pacing = { await gate.pace() }
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: options)
            try await h.waitSynced()
            try await eventually { server.openWatchCount() == 1 }

            // Every Service changes behind a stalled watch, then the history is compacted:
            // the daemon relists (410) and every object of the relist is a change.
            server.stallWatches(newWatchesToo: true)
            try server.batch { for i in 0..<count { try server.update(service("svc-\(i)", port: 8080)) } }
            server.compact()
            let updates: @Sendable () -> Int = { h.eventLog.filter { if case .updated = $0 { true } else { false } }.count }
            // The gate holds the reflector at its first wait after a relisted change went out
            // (the cache holds what went out).
            gate.holdOnce { h.reflector.snapshot().values.contains { $0.spec.ports?.first?.port == 8080 } }
            server.stopStalling()
            try await eventually(.seconds(60), "the reflector waits for its consumer in the middle of the relist") { gate.holding }

            // Held in the middle of the list: changes went out before its end, not all of them.
            let received = h.reflector.statistics.watchEvents
            #expect(h.reflector.statistics.relists == 0)
            try await eventually(.seconds(20), "the consumer has every event emitted so far") { updates() > 0 }
            #expect(updates() < count)
            // Waiting, it reads nothing more.
            #expect(h.reflector.statistics.watchEvents == received)

            gate.release()
            try await h.waitConverged(with: server)
            try await eventually { h.reflector.statistics.relists == 1 }
            #expect(updates() == count)
            await h.stop()
            try await client.shutdown()
        }
    }

    @Test("a watch-list cut before its bookmark falls back to a paged list; nothing is half-synced")
    func cutBeforeBookmarkFallsBack() async throws {
        try await withFake({ $0.watchList = true }) { server in
            for n in ["a", "b"] { try server.create(service(n)) }
            // The first watch-list stalls: the client's deadline ends it before any bookmark.
            server.stallWatches(newWatchesToo: true)
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: watchListOptions(watchTimeout: 1...1, grace: .milliseconds(300)))
            try await eventually { server.requests.contains { $0.query["sendInitialEvents"] == "true" } }
            server.stopStalling()
            try await h.waitSynced()
            try await h.waitConverged(with: server)
            #expect(server.requests.contains { !$0.isWatch && $0.status == 200 })
            #expect(!h.reflector.statistics.watchListRefused)
            guard case .synced(let all)? = h.eventLog.first else { Issue.record("first event is not .synced"); return }
            #expect(all.map(\.metadata.name) == ["a", "b"])
            await h.stop()
            try await client.shutdown()
        }
    }
}

/// A consumer's pacing that holds the reflector once, at the first wait where `condition`
/// holds, until `release()`.
final class PaceGate: Sendable {
    private struct State {
        var condition: (@Sendable () -> Bool)?
        var held: CheckedContinuation<Void, Never>?
        var released = false
    }
    private let state = NIOLockedValueBox(State())

    /// Holds the next wait at which `condition` is true (once).
    func holdOnce(when condition: @escaping @Sendable () -> Bool) {
        state.withLockedValue { $0.condition = condition }
    }

    /// Whether a wait is held now.
    var holding: Bool { state.withLockedValue { $0.held != nil } }

    /// The reflector's wait.
    func pace() async {
        guard let condition = state.withLockedValue({ $0.released ? nil : $0.condition }), condition() else { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLockedValue { s in
                guard !s.released, s.held == nil else { return true }
                s.held = c
                return false
            }
            if resumeNow { c.resume() }
        }
    }

    /// Lets the held wait go on; no wait is held after this.
    func release() {
        let c = state.withLockedValue { s in
            s.released = true
            defer { s.held = nil }
            return s.held
        }
        c?.resume()
    }
}
