import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SluiceModel

/// A change delivered by a `Reflector`.
public enum ReflectorEvent<Object: KubeObject>: Sendable {
    /// Part of the first list, while it streams in (watch-list only): the first list is
    /// every `.listed` part and then `.synced`.
    case listed([Object])
    /// The first complete list, sorted by key, or its last part after `.listed` parts;
    /// sent once. Every later change is a delta.
    case synced([Object])
    case added(Object)
    case updated(old: Object, new: Object)
    /// The object's last known state.
    case deleted(Object)
}

/// Tunables; the defaults are client-go's.
public struct ReflectorOptions: Sendable {
    /// The pager's page size (`limit`).
    public var pageSize: Int = 500
    /// `timeoutSeconds` of each watch is drawn from this range (client-go: 5 min × [1, 2)).
    public var watchTimeoutSeconds: ClosedRange<Int> = 300...599
    /// The client gives up on a watch this long after `timeoutSeconds` (a stalled server).
    public var watchDeadlineGrace: Duration = .seconds(5)
    /// A watch that brings nothing (no event, no bookmark, no byte) for this long is given up
    /// and re-opened from the last RV, once the server has shown that it sends bookmarks
    /// between events (kube-apiserver's watch cache sends one about every minute to a watch
    /// that allows them; a bookmark more than `periodicBookmarkMargin` before the watch's
    /// `timeoutSeconds` shows it). Without, a stalled watch (the server neither sends nor
    /// closes) is noticed only at its deadline, `timeoutSeconds` + grace (305–604 s).
    /// nil: only the deadline (client-go).
    public var watchProgressTimeout: Duration? = nil
    /// A bookmark this long before the watch's `timeoutSeconds` is a periodic one (a server
    /// sends one just before the timeout as well: 2 s before it, kube-apiserver).
    public var periodicBookmarkMargin: Duration = .seconds(10)
    public var backoff: Backoff.Policy = Backoff.Policy()
    /// How often to list again a resource the server answered 404 for (ServiceCIDRs).
    public var notFoundRecheckInterval: Duration = .seconds(60)
    /// A watch that ends sooner than this without any event is an error (client-go "very short watch").
    public var minWatchDuration: Duration = .seconds(1)
    /// Time allowed for each list request's response head.
    public var requestTimeout: Duration = .seconds(60)
    /// Whether the cache keeps each object whole. Without, it keeps Services and
    /// EndpointSlices as their resourceVersion (`ReflectorCache`; a relist compares
    /// resourceVersions), so a node proxy holds the objects once, in its engine, not twice;
    /// `.updated(old:)` and relist `.deleted` events then carry a placeholder with only
    /// name, namespace and resourceVersion.
    public var cachesContent: Bool = true
    /// List by watch (client-go's `WatchListClient`, KEP-3157): one watch with
    /// `sendInitialEvents=true` streams the list as ADDED events, ends it with a bookmark
    /// annotated `k8s.io/initial-events-end`, and goes on as the watch. The first list is
    /// delivered in parts of `pageSize` objects (`.listed`) as it arrives. A server that
    /// refuses it (the WatchList gate off: 422) gets paged lists from then on; any other
    /// failure falls back to one paged list, as client-go does.
    public var useWatchList: Bool = false
    /// Awaited between a watch's stream buffers and between a paged list's pages, so that a
    /// consumer slower than decoding bounds how much is decoded ahead of it: the reader
    /// stops pulling the response body while it waits, and AsyncHTTPClient's body stream
    /// then stops reading the socket (the daemon waits while its sync loop has more than
    /// `SyncLoop.changeBacklog` objects still to take). A watch is not given up as silent while it
    /// waits. nil: no waiting.
    public var pacing: (@Sendable () async -> Void)?

    public init() {}
}

/// Counters for logs, metrics and tests.
public struct ReflectorStatistics: Sendable, Hashable {
    /// Complete lists (each may take several pages).
    public var lists = 0
    public var listPages = 0
    public var listFailures = 0
    /// Lists after the first one.
    public var relists = 0
    public var watchesOpened = 0
    public var watchFailures = 0
    public var watchEvents = 0
    public var bookmarks = 0
    /// Whether a bookmark came in the middle of a watch (`ReflectorOptions.watchProgressTimeout` is armed).
    public var periodicBookmarks = false
    /// Watches given up because they brought nothing for `watchProgressTimeout`.
    public var watchStalls = 0
    /// Checks that found a watch silent for longer than `watchProgressTimeout` and kept it,
    /// because no periodic bookmark was seen yet (the timeout is not armed).
    public var silencesTolerated = 0
    /// The last list, watch event or bookmark RV.
    public var resourceVersion: String?
    /// Whether the next list asks for `resourceVersion=""` (the last RV is gone).
    public var resourceVersionUnavailable = false
    /// Lists served as a watch (`useWatchList`), and whether the server refused them.
    public var watchLists = 0
    public var watchListRefused = false
    public var lastError: String?
}

/// client-go's reflector for one resource: paged list, then watch from the list's RV, applying
/// every event and remembering every RV (bookmarks included); re-watch on a normal end; relist
/// on 410 (first with the last RV, then with "" if that is gone too); exponential backoff with
/// `Retry-After`. A relist's differences are emitted as it arrives (new and changed objects)
/// and at its end (what it lacks is deleted), so the cache then equals the list.
///
/// Run it with `await reflector.run()` in a task (it returns when the task is cancelled and
/// then finishes `events`), and consume `events` from one task; or give `onEvent`, which
/// gets every event synchronously, in order, on the thread that decoded it (no task hop
/// between the wire and the consumer; it must not block), and `events` stays empty.
public final class Reflector<Object: KubeObject>: Sendable {
    public let resource: KubeResource<Object>
    public let options: ReflectorOptions
    /// The changes, in order (unless `onEvent` takes them). Single consumer.
    public let events: AsyncStream<ReflectorEvent<Object>>
    private let continuation: AsyncStream<ReflectorEvent<Object>>.Continuation
    private let onEvent: (@Sendable (ReflectorEvent<Object>) -> Void)?
    private let client: KubeAPIClient
    private let logger: Logger

    private struct Shared {
        var cache: ReflectorCache<Object>
        var synced = false
        var stats = ReflectorStatistics()
    }
    private let shared: NIOLockedValueBox<Shared>

    public init(client: KubeAPIClient, resource: KubeResource<Object>, options: ReflectorOptions = ReflectorOptions(),
                logger: Logger? = nil, onEvent: (@Sendable (ReflectorEvent<Object>) -> Void)? = nil) {
        self.client = client
        self.onEvent = onEvent
        shared = NIOLockedValueBox(Shared(cache: ReflectorCache(keepsContent: options.cachesContent)))
        self.resource = resource
        self.options = options
        var l = logger ?? client.logger
        l[metadataKey: "resource"] = "\(resource.path)"
        self.logger = l
        (events, continuation) = AsyncStream<ReflectorEvent<Object>>.makeStream()
    }

    /// Hands one event to `onEvent` or `events` (called under `shared`'s lock, so that
    /// events leave in cache order).
    private func emit(_ event: ReflectorEvent<Object>) {
        if let onEvent { onEvent(event) } else { continuation.yield(event) }
    }

    /// True once the first list has been applied (kube-proxy's `HasSynced`).
    public var hasSynced: Bool { shared.withLockedValue { $0.synced } }

    /// The cache: what the reflector believes the server holds.
    public func snapshot() -> [ObjectKey: Object] { shared.withLockedValue { $0.cache.snapshot } }

    public var statistics: ReflectorStatistics { shared.withLockedValue { $0.stats } }

    public var lastSyncResourceVersion: String? { shared.withLockedValue { $0.stats.resourceVersion } }

    // MARK: - The loop

    private enum WatchOutcome {
        case ended(events: Int)
        case expired(APIStatus)
    }

    /// Lists and watches until the calling task is cancelled.
    public func run() async {
        defer { continuation.finish() }
        var backoff = Backoff(options.backoff)
        var fallBackToList = false
        relist: while !Task.isCancelled {
            // LIST, unless the first watch below streams it.
            var listByWatch = options.useWatchList && !fallBackToList && !statistics.watchListRefused
            fallBackToList = false
            if !listByWatch {
                do {
                    let found = try await listAndReplace()
                    if !found {
                        try await Task.sleep(for: options.notFoundRecheckInterval)
                        continue relist
                    }
                } catch is CancellationError {
                    return
                } catch {
                    let e = recordFailure(error, list: true)
                    guard await sleep(delay(for: e, &backoff)) else { return }
                    continue relist
                }
            }

            // WATCH
            while !Task.isCancelled {
                let started = ContinuousClock.now
                do {
                    let outcome = try await watchOnce(listing: listByWatch)
                    listByWatch = false
                    switch outcome {
                    case .ended(let count):
                        if count == 0 && ContinuousClock.now - started < options.minWatchDuration {
                            logger.info("very short watch; relisting after backoff")
                            guard await sleep(backoff.next()) else { return }
                            continue relist
                        }
                        continue   // re-watch from the last RV at once
                    case .expired(let status):
                        logger.info("watch expired; relisting from the last RV", metadata: ["message": "\(status.message ?? "")"])
                        guard await sleep(backoff.next()) else { return }
                        continue relist
                    }
                } catch is CancellationError {
                    return
                } catch {
                    if listByWatch {
                        // client-go: "making progress is better than deadlocking": a paged list.
                        let e = recordFailure(error, list: true)
                        if e.refusesWatchList { shared.withLockedValue { $0.stats.watchListRefused = true } }
                        logger.info("watch-list failed; falling back to a paged list", metadata: ["error": "\(e)"])
                        fallBackToList = true
                        continue relist
                    }
                    let e = recordFailure(error, list: false)
                    if e.isExpired {
                        guard await sleep(backoff.next()) else { return }
                        continue relist
                    }
                    guard await sleep(delay(for: e, &backoff)) else { return }
                    // client-go (`isWatchErrorRetriable`) retries the watch on connection errors
                    // and 429; any other error ends ListAndWatch, i.e. relists with the last RV.
                    switch e {
                    case .transport: continue
                    case .status(let code, _, _) where code == 429: continue
                    default: continue relist
                    }
                }
            }
        }
    }

    /// Counts and logs a failed list or watch; a 401 drops the cached token so the next
    /// request re-reads it (rotation).
    private func recordFailure(_ error: any Error, list: Bool) -> KubeAPIError {
        let e = classify(error)
        shared.withLockedValue {
            if list { $0.stats.listFailures += 1 } else { $0.stats.watchFailures += 1 }
            $0.stats.lastError = e.description
            // client-go: an expired or too-large RV on list makes the next list use "".
            if list && (e.isExpired || e.isTooLargeResourceVersion) { $0.stats.resourceVersionUnavailable = true }
        }
        if e.httpCode == 401 { _ = client.configuration.tokenSource?.invalidate() }
        logger.warning(list ? "list failed" : "watch failed", metadata: ["error": "\(e)"])
        return e
    }

    private func classify(_ error: any Error) -> KubeAPIError {
        if let e = error as? KubeAPIError { return e }
        return .transport(String(describing: error))
    }

    private func delay(for error: KubeAPIError, _ backoff: inout Backoff) -> Duration {
        let b = backoff.next()
        if let ra = error.retryAfter { return max(ra, .zero) }
        return b
    }

    /// Sleeps; false when cancelled.
    private func sleep(_ d: Duration) async -> Bool {
        do { try await Task.sleep(for: d); return true } catch { return false }
    }

    // MARK: - List

    /// Lists (all pages) and replaces the cache. Returns false for a 404 on a resource that may be absent.
    private func listAndReplace() async throws -> Bool {
        let (firstSync, unavailable, lastRV) = shared.withLockedValue { ($0.stats.lists == 0, $0.stats.resourceVersionUnavailable, $0.stats.resourceVersion) }
        // relistResourceVersion(): "" if unavailable, "0" on the first list, else the last RV.
        var rv: String = unavailable ? "" : (lastRV ?? "0")
        var items = startList()
        var continueToken: String? = nil
        var listRV: String? = nil
        while true {
            let page: KubeAPIClient.ListPage<Object>
            do {
                page = try await client.listPage(resource, resourceVersion: continueToken == nil ? rv : nil,
                                                 limit: options.pageSize, continueToken: continueToken,
                                                 timeout: options.requestTimeout)
            } catch let e as KubeAPIError where e.httpCode == 404 && resource.notFoundMeansEmpty && continueToken == nil {
                logger.info("resource not served (404); treating as empty", metadata: ["error": "\(e)"])
                apply(list: startList(), resourceVersion: nil, first: firstSync)
                return false
            } catch let e as KubeAPIError where e.isExpired && continueToken != nil {
                // Continue token expired: the pager restarts the list from scratch.
                logger.info("continue token expired; restarting the list")
                items = startList()
                continueToken = nil
                rv = ""
                continue
            }
            shared.withLockedValue { $0.stats.listPages += 1 }
            take(page.items, into: &items)
            if let pace = options.pacing { await pace() }
            if listRV == nil || continueToken == nil { listRV = page.metadata.resourceVersion }
            if let c = page.metadata.continue, !c.isEmpty {
                continueToken = c
            } else {
                break
            }
        }
        apply(list: items, resourceVersion: listRV ?? "", first: firstSync)
        return true
    }

    /// Brings the cache to a list, emitting `.synced` the first time and deltas afterwards.
    /// O(keys) in memory beyond the cache: a relist's unchanged objects were dropped and its
    /// new and changed ones handed out as they arrived (`take`), so what is left here is
    /// what the list lacks (deletions).
    private func apply(list: ListedObjects<Object>, resourceVersion: String?, first: Bool) {
        let listedKeys = list.changed.keys.sorted()
        let out: [ReflectorEvent<Object>] = shared.withLockedValue { s in
            var out: [ReflectorEvent<Object>] = []
            // Gone from the server (or, before the first sync, parts an interrupted streamed
            // list handed out that are gone now).
            let gone = s.cache.keys.filter { !list.contains($0) }.sorted()
            for key in gone { out.append(.deleted(s.cache[key]!)) }
            if !s.synced {
                out.append(.synced(listedKeys.map { list.changed[$0]! }))
                s.synced = true
            } else {
                for key in listedKeys {
                    let new = list.changed[key]!
                    switch s.cache.isChanged(new) {
                    case nil: out.append(.added(new))
                    case true?: out.append(.updated(old: s.cache[key]!, new: new))
                    case false?: break
                    }
                }
            }
            for key in gone { s.cache.remove(key) }
            for object in list.changed.values { s.cache.store(object) }
            s.stats.lists += 1
            if !first { s.stats.relists += 1 }
            if let rv = resourceVersion {
                s.stats.resourceVersion = rv
                s.stats.resourceVersionUnavailable = false
            }
            // Yield under the lock so that events stay in cache order.
            for e in out { emit(e) }
            return out
        }
        logger.debug("listed", metadata: ["changes": "\(out.count)", "rv": "\(resourceVersion ?? "")"])
    }

    /// An empty `ListedObjects` for the list about to start: comparing once synced.
    private func startList() -> ListedObjects<Object> {
        ListedObjects(comparing: shared.withLockedValue { $0.synced })
    }

    /// Adds listed objects (a page, or one initial event of a watch-list), compared with
    /// the cache under its lock. Once synced, what differs goes out at once (`handOutChanges`),
    /// so a relist reaches the consumer in parts as it arrives, not as one batch at its end.
    private func take(_ objects: [Object], into list: inout ListedObjects<Object>) {
        shared.withLockedValue { s in
            for o in objects { list.add(o, cache: s.cache) }
            if s.synced { handOutChanges(&list, &s) }
        }
    }

    /// Emits a relist's new and changed objects taken so far as `.added` / `.updated` and
    /// caches them; the list keeps their keys (what is gone is known at its end, `apply`).
    /// Each object is a state the server held after the cached one, so handing it out
    /// before the list ends loses nothing; a list cut midway is compared, when retried,
    /// with the cache that now holds what went out.
    private func handOutChanges(_ list: inout ListedObjects<Object>, _ s: inout Shared) {
        for new in list.takeChanged() {
            switch s.cache.isChanged(new) {
            case nil:
                s.cache.store(new)
                emit(.added(new))
            case true?:
                let old = s.cache[new.key]!
                s.cache.store(new)
                emit(.updated(old: old, new: new))
            case false?:
                break
            }
        }
    }

    // MARK: - Watch

    struct Envelope: Decodable {
        var type: String
        var object: Object?
        var status: APIStatus?
        var bookmarkRV: String?
        /// A bookmark annotated `k8s.io/initial-events-end: "true"` (the end of a watch-list's list).
        var endsInitialEvents = false

        enum CodingKeys: String, CodingKey { case type, object }
        struct Bookmark: Decodable {
            struct Meta: Decodable {
                var resourceVersion: String?
                var annotations: [String: String]?
            }
            var metadata: Meta?
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            switch type {
            case "ERROR": status = try c.decode(APIStatus.self, forKey: .object)
            case "BOOKMARK":
                let meta = try c.decode(Bookmark.self, forKey: .object).metadata
                bookmarkRV = meta?.resourceVersion
                endsInitialEvents = meta?.annotations?["k8s.io/initial-events-end"] == "true"
            default: object = try c.decode(Object.self, forKey: .object)
            }
        }

        init(type: String, object: Object) {
            self.type = type
            self.object = object
        }

        /// An `ADDED`, `MODIFIED` or `DELETED` event whose `type` comes first, read by the
        /// object's hand-written reader; nil for anything else (left to `init(from:)`).
        static func read(_ bytes: [UInt8]) -> Envelope? {
            JSONReader.read(bytes) { r in
                var type: String? = nil
                var object: Object? = nil
                try r.readObject { r, key in
                    switch key {
                    case "type":
                        guard type == nil else { throw r.unsupported() }
                        type = try r.readString()
                    case "object":
                        guard object == nil, type == "ADDED" || type == "MODIFIED" || type == "DELETED" else { throw r.unsupported() }
                        object = try Object.read(json: &r)
                    default: try r.skipValue()
                    }
                }
                guard let type, let object else { throw r.unsupported() }
                return Envelope(type: type, object: object)
            }
        }
    }

    /// The list part of a watch-list, until its closing bookmark.
    private struct InitialEvents: Sendable {
        /// The reflector's first list: streamed out in parts (`.listed`).
        let first: Bool
        /// A list after the first one (statistics).
        var countsAsRelist = false
        /// First list: received, not yet handed out.
        var part: [Object] = []
        /// A relist: what differs from the cache, and the keys listed.
        var items: ListedObjects<Object>
        var started = ContinuousClock.now
        var received = 0
    }

    /// One watch; with `listing`, a watch-list whose initial events are the list.
    private func watchOnce(listing: Bool) async throws -> WatchOutcome {
        let rv: String
        var initial: InitialEvents? = nil
        if listing {
            // client-go's watch-list asks for "at least the last RV seen" ("" the first time: most recent).
            let (unavailable, lastRV, lists, cached) = shared.withLockedValue {
                ($0.stats.resourceVersionUnavailable, $0.stats.resourceVersion, $0.stats.lists, $0.cache.count)
            }
            rv = unavailable ? "" : (lastRV ?? "")
            // The first list streams out in parts, unless an earlier attempt was cut after
            // handing some out: then it is gathered whole and compared, so that what vanished
            // meanwhile is deleted.
            initial = InitialEvents(first: lists == 0 && cached == 0, countsAsRelist: lists > 0, items: startList())
        } else {
            guard let last = lastSyncResourceVersion else { return .expired(APIStatus(message: "no resource version", code: 410)) }
            rv = last
        }
        let timeout = Int.random(in: options.watchTimeoutSeconds)
        let listsBefore = statistics.watchLists
        let response = try await client.openWatch(resource, resourceVersion: rv, timeoutSeconds: timeout, sendInitialEvents: listing)
        shared.withLockedValue { $0.stats.watchesOpened += 1 }
        let progress = WatchProgress(timeoutAt: ContinuousClock.now + .seconds(timeout))
        let deadline = progress.timeoutAt + options.watchDeadlineGrace
        let body = response.body
        let listPart = initial
        return try await withThrowingTaskGroup(of: WatchOutcome?.self) { group in
            group.addTask {
                try await self.consume(body, initial: listPart, progress: progress)
            }
            group.addTask {
                try await self.watchdog(until: deadline, progress)
                return nil
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let outcome = result { return outcome }
                // The server neither sent nor closed (stalled). Re-watch.
                if listing && self.statistics.watchLists == listsBefore {
                    throw KubeAPIError.transport("watch-list stalled before its list ended")
                }
                return .ended(events: 1)
            }
            return .ended(events: 0)
        }
    }

    /// When the current watch last brought anything, and when its `timeoutSeconds` ends.
    private final class WatchProgress: Sendable {
        let timeoutAt: ContinuousClock.Instant
        private let last = NIOLockedValueBox(ContinuousClock.now)

        init(timeoutAt: ContinuousClock.Instant) { self.timeoutAt = timeoutAt }

        /// The last activity; now while the reader waits for its consumer (`waiting`).
        var lastActivity: ContinuousClock.Instant {
            let (at, paused) = (last.withLockedValue { $0 }, waits.withLockedValue { $0 })
            return paused > 0 ? ContinuousClock.now : at
        }
        func touch() { last.withLockedValue { $0 = ContinuousClock.now } }

        /// Readers waiting for their consumer now.
        private let waits = NIOLockedValueBox(0)

        /// Runs `wait` (the consumer's pacing); the time it takes is no silence of the server.
        func waiting(_ wait: @Sendable () async -> Void) async {
            waits.withLockedValue { $0 += 1 }
            await wait()
            waits.withLockedValue { $0 -= 1 }
            touch()
        }
    }

    /// Returns at the watch's deadline, or once the watch brought nothing for
    /// `watchProgressTimeout` while that is armed (the server sends periodic bookmarks); logs which.
    private func watchdog(until deadline: ContinuousClock.Instant, _ progress: WatchProgress) async throws {
        guard let idle = options.watchProgressTimeout else {
            try await Task.sleep(until: deadline, clock: .continuous)
            logger.info("watch exceeded its timeout without the server closing it; re-watching")
            return
        }
        let tick = min(.seconds(1), idle / 4)
        while ContinuousClock.now < deadline {
            try await Task.sleep(until: min(deadline, ContinuousClock.now + tick), clock: .continuous)
            let silent = ContinuousClock.now - progress.lastActivity
            guard silent >= idle else { continue }
            // Given up only once the server has shown it sends bookmarks; counted either way.
            let armed = shared.withLockedValue { s in
                if s.stats.periodicBookmarks { s.stats.watchStalls += 1 } else { s.stats.silencesTolerated += 1 }
                return s.stats.periodicBookmarks
            }
            if armed {
                logger.warning("watch brought nothing (no event, no bookmark) for longer than its progress timeout; re-watching",
                               metadata: ["seconds": "\(silent)"])
                return
            }
        }
        logger.info("watch exceeded its timeout without the server closing it; re-watching")
    }

    private func consume(_ body: HTTPClientResponse.Body, initial start: InitialEvents?, progress: WatchProgress) async throws -> WatchOutcome {
        var splitter = JSONStreamSplitter()
        var count = 0
        var initial = start
        let decoders = EventDecoder()
        do {
            for try await buffer in body {
                progress.touch()
                let values = try splitter.feed(buffer.readableBytesView)
                // A list streams thousands of events: they are decoded on every core, then
                // handled in order. A live watch decodes its few events where they arrive.
                for decoded in decoders.decode(Envelope.self, values, parallel: initial != nil, fast: Envelope.read) {
                    let event = try decoded.get()   // an undecodable event fails the watch where it stands
                    count += 1
                    if event.type == "BOOKMARK" && !event.endsInitialEvents { notePeriodicBookmark(progress) }
                    if initial != nil {
                        if let outcome = try handleInitial(event, &initial) { return outcome }
                    } else if let outcome = try handle(event) {
                        return outcome
                    }
                }
                if let pace = options.pacing {
                    await progress.waiting(pace)   // waiting for our own consumer is no silence of the server
                }
            }
        } catch let e as KubeAPIError {
            throw e
        } catch let e as JSONStreamSplitter.SplitError {
            throw KubeAPIError.decoding("watch stream: \(e)")
        } catch {
            if Task.isCancelled { throw CancellationError() }
            if initial != nil { throw KubeAPIError.transport("watch-list stream: \(error)") }
            // A dropped connection ends the watch like a normal close (client-go treats
            // probable EOFs so); the next watch resumes from the last RV.
            logger.info("watch stream ended with an error; re-watching", metadata: ["error": "\(error)"])
        }
        if initial != nil { throw KubeAPIError.transport("watch-list ended before its initial-events-end bookmark") }
        return .ended(events: count)
    }

    /// A bookmark well before the watch's timeout: the server sends them between events,
    /// so a silent watch is a stalled one (arms `watchProgressTimeout`).
    private func notePeriodicBookmark(_ progress: WatchProgress) {
        guard ContinuousClock.now < progress.timeoutAt - options.periodicBookmarkMargin else { return }
        shared.withLockedValue { $0.stats.periodicBookmarks = true }
    }

    /// One event of a watch-list's list part; at the closing bookmark the list is applied
    /// and `initial` becomes nil (the watch goes on).
    private func handleInitial(_ event: Envelope, _ initial: inout InitialEvents?) throws -> WatchOutcome? {
        guard var list = initial else { return try handle(event) }
        switch event.type {
        case "ADDED", "MODIFIED", "DELETED":
            guard let raw = event.object else { return nil }
            let object = raw.withTypeMeta()
            shared.withLockedValue { $0.stats.watchEvents += 1 }
            list.received += 1
            if !list.first {
                if event.type == "DELETED" { list.items.remove(object.key) } else { take([object], into: &list.items) }
            } else if event.type == "DELETED" {
                handOut(&list.part, synced: false)
                _ = try handle(event)
            } else {
                list.part.append(object)
                if list.part.count >= max(1, options.pageSize) { handOut(&list.part, synced: false) }
            }
            initial = list
            return nil
        case "BOOKMARK" where event.endsInitialEvents:
            let rv = event.bookmarkRV ?? ""
            shared.withLockedValue { s in
                s.stats.watchEvents += 1
                s.stats.bookmarks += 1
                s.stats.watchLists += 1
            }
            if list.first {
                handOut(&list.part, synced: true, resourceVersion: rv)
            } else {
                apply(list: list.items, resourceVersion: rv, first: !list.countsAsRelist)
            }
            logger.info("listed by watch", metadata: [
                "objects": "\(list.received)", "seconds": "\(String(format: "%.3f", Double((ContinuousClock.now - list.started).nanoseconds) / 1e9))", "rv": "\(rv)",
            ])
            initial = nil
            return nil
        default:
            return try handle(event)
        }
    }

    /// Hands out a part of the first list (`.listed`, or `.synced` for the last one, which
    /// completes the first list) and caches it.
    private func handOut(_ part: inout [Object], synced: Bool, resourceVersion: String? = nil) {
        guard !part.isEmpty || synced else { return }
        part.sort { $0.key < $1.key }
        let objects = part
        part = []
        shared.withLockedValue { s in
            for o in objects { s.cache.store(o) }
            if synced {
                s.synced = true
                s.stats.lists += 1
                if let rv = resourceVersion, !rv.isEmpty {
                    s.stats.resourceVersion = rv
                    s.stats.resourceVersionUnavailable = false
                }
                emit(.synced(objects))
            } else {
                emit(.listed(objects))
            }
        }
    }

    /// Applies one event; returns an outcome when the watch must end.
    private func handle(_ event: Envelope) throws -> WatchOutcome? {
        switch event.type {
        case "ERROR":
            let status = event.status ?? APIStatus()
            shared.withLockedValue { $0.stats.watchEvents += 1 }
            if status.isExpired { return .expired(status) }
            throw KubeAPIError.watchError(status)
        case "BOOKMARK":
            shared.withLockedValue { s in
                s.stats.watchEvents += 1
                s.stats.bookmarks += 1
                if let rv = event.bookmarkRV, !rv.isEmpty { s.stats.resourceVersion = rv }
            }
            return nil
        case "ADDED", "MODIFIED", "DELETED":
            guard let raw = event.object else { return nil }
            let object = raw.withTypeMeta()
            let key = object.key
            shared.withLockedValue { s in
                s.stats.watchEvents += 1
                if let rv = object.resourceVersion, !rv.isEmpty { s.stats.resourceVersion = rv }
                if event.type == "DELETED" {
                    if s.cache.remove(key) {
                        emit(.deleted(object))
                    }
                } else if let old = s.cache[key] {
                    s.cache.store(object)
                    emit(.updated(old: old, new: object))
                } else {
                    s.cache.store(object)
                    emit(.added(object))
                }
            }
            return nil
        default:
            throw KubeAPIError.decoding("unknown watch event type \(event.type)")
        }
    }
}

/// Decodes watch events (JSON values cut out of the stream), on up to one worker per core
/// when asked: a streamed list holds thousands of them. Results stay in order, so the
/// caller handles them as if decoded one by one (an undecodable event fails where it stands).
final class EventDecoder: @unchecked Sendable {
    private let decoders: [JSONDecoder]
    /// Fewer events than this are decoded on the caller's thread.
    private let parallelThreshold = 16

    init() {
        decoders = (0..<max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))).map { _ in JSONDecoder() }
    }

    /// `fast` reads what it can; the rest goes through `JSONDecoder`.
    func decode<Event: Decodable & Sendable>(_ type: Event.Type, _ values: [[UInt8]], parallel: Bool,
                                  fast: @Sendable ([UInt8]) -> Event?) -> [Result<Event, any Error>] {
        let workers = parallel && values.count >= parallelThreshold ? decoders.count : 1
        return values.concurrentMap(workers: workers) { w, value in
            if let event = fast(value) { return .success(event) }
            return Result { try self.decodeOne(value, with: self.decoders[w]) }
        }
    }

    private func decodeOne<Event: Decodable>(_ value: [UInt8], with decoder: JSONDecoder) throws -> Event {
        do {
            return try decoder.decode(Event.self, from: Data(value))
        } catch {
            throw KubeAPIError.decoding("watch event: \(error)")
        }
    }
}
