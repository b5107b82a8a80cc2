import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SluiceModel

/// A change delivered by a `Reflector`.
public enum ReflectorEvent<Object: KubeObject>: Sendable {
    /// The first complete list, sorted by key; sent once. Every later change is a delta.
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
    public var backoff: Backoff.Policy = Backoff.Policy()
    /// How often to list again a resource the server answered 404 for (ServiceCIDRs).
    public var notFoundRecheckInterval: Duration = .seconds(60)
    /// A watch that ends sooner than this without any event is an error (client-go "very short watch").
    public var minWatchDuration: Duration = .seconds(1)
    /// Time allowed for each list request's response head.
    public var requestTimeout: Duration = .seconds(60)
    /// Whether the cache keeps each object whole. Without, it keeps Services and
    /// EndpointSlices without their content (identity and resourceVersion; a relist compares
    /// resourceVersions), so a node proxy holds the objects once, in its engine, not twice;
    /// `.updated(old:)` and relist `.deleted` events then carry that content-free form.
    public var cachesContent: Bool = true

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
    /// The last list, watch event or bookmark RV.
    public var resourceVersion: String?
    /// Whether the next list asks for `resourceVersion=""` (the last RV is gone).
    public var resourceVersionUnavailable = false
    public var lastError: String?
}

/// client-go's reflector for one resource: paged list, then watch from the list's RV, applying
/// every event and remembering every RV (bookmarks included); re-watch on a normal end; relist
/// on 410 (first with the last RV, then with "" if that is gone too); exponential backoff with
/// `Retry-After`. The local cache is replaced after every relist and the differences are emitted.
///
/// Run it with `await reflector.run()` in a task (it returns when the task is cancelled and
/// then finishes `events`), and consume `events` from one task.
public final class Reflector<Object: KubeObject>: Sendable {
    public let resource: KubeResource<Object>
    public let options: ReflectorOptions
    /// The changes, in order. Single consumer.
    public let events: AsyncStream<ReflectorEvent<Object>>
    private let continuation: AsyncStream<ReflectorEvent<Object>>.Continuation
    private let client: KubeAPIClient
    private let logger: Logger

    private struct Shared {
        var cache: [ObjectKey: Object] = [:]
        var synced = false
        var stats = ReflectorStatistics()
    }
    private let shared = NIOLockedValueBox(Shared())

    public init(client: KubeAPIClient, resource: KubeResource<Object>, options: ReflectorOptions = ReflectorOptions(),
                logger: Logger? = nil) {
        self.client = client
        self.resource = resource
        self.options = options
        var l = logger ?? client.logger
        l[metadataKey: "resource"] = "\(resource.path)"
        self.logger = l
        (events, continuation) = AsyncStream<ReflectorEvent<Object>>.makeStream()
    }

    /// True once the first list has been applied (kube-proxy's `HasSynced`).
    public var hasSynced: Bool { shared.withLockedValue { $0.synced } }

    /// The cache: what the reflector believes the server holds.
    public func snapshot() -> [ObjectKey: Object] { shared.withLockedValue { $0.cache } }

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
        relist: while !Task.isCancelled {
            // LIST
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

            // WATCH
            while !Task.isCancelled {
                let started = ContinuousClock.now
                do {
                    switch try await watchOnce() {
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
        var items: [Object] = []
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
                apply(list: [], resourceVersion: nil, first: firstSync)
                return false
            } catch let e as KubeAPIError where e.isExpired && continueToken != nil {
                // Continue token expired: the pager restarts the list from scratch.
                logger.info("continue token expired; restarting the list")
                items = []
                continueToken = nil
                rv = ""
                continue
            }
            shared.withLockedValue { $0.stats.listPages += 1 }
            items += page.items
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

    /// Replaces the cache with a list, emitting `.synced` the first time and deltas afterwards.
    private func apply(list: [Object], resourceVersion: String?, first: Bool) {
        var fresh: [ObjectKey: Object] = [:]
        fresh.reserveCapacity(list.count)
        for o in list { fresh[o.key] = o }
        let sorted = fresh.keys.sorted()
        let slim = !options.cachesContent
        let out: [ReflectorEvent<Object>] = shared.withLockedValue { s in
            var out: [ReflectorEvent<Object>] = []
            if !s.synced {
                out.append(.synced(sorted.map { fresh[$0]! }))
                s.synced = true
            } else {
                for key in s.cache.keys.sorted() where fresh[key] == nil {
                    out.append(.deleted(s.cache[key]!))
                }
                for key in sorted {
                    let new = fresh[key]!
                    if let old = s.cache[key] {
                        let changed = slim ? (old.resourceVersion != new.resourceVersion || new.resourceVersion == nil) : old != new
                        if changed { out.append(.updated(old: old, new: new)) }
                    } else {
                        out.append(.added(new))
                    }
                }
            }
            s.cache = slim ? fresh.mapValues(\.cacheForm) : fresh
            s.stats.lists += 1
            if !first { s.stats.relists += 1 }
            if let rv = resourceVersion {
                s.stats.resourceVersion = rv
                s.stats.resourceVersionUnavailable = false
            }
            // Yield under the lock so that events stay in cache order.
            for e in out { continuation.yield(e) }
            return out
        }
        logger.debug("listed", metadata: ["items": "\(list.count)", "changes": "\(out.count)", "rv": "\(resourceVersion ?? "")"])
    }

    // MARK: - Watch

    private struct Envelope: Decodable {
        var type: String
        var object: Object?
        var status: APIStatus?
        var bookmarkRV: String?

        enum CodingKeys: String, CodingKey { case type, object }
        struct Bookmark: Decodable { var metadata: ObjectMeta? }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            switch type {
            case "ERROR": status = try c.decode(APIStatus.self, forKey: .object)
            case "BOOKMARK": bookmarkRV = try c.decode(Bookmark.self, forKey: .object).metadata?.resourceVersion
            default: object = try c.decode(Object.self, forKey: .object)
            }
        }
    }

    private func watchOnce() async throws -> WatchOutcome {
        guard let rv = lastSyncResourceVersion else { return .expired(APIStatus(message: "no resource version", code: 410)) }
        let timeout = Int.random(in: options.watchTimeoutSeconds)
        let response = try await client.openWatch(resource, resourceVersion: rv, timeoutSeconds: timeout)
        shared.withLockedValue { $0.stats.watchesOpened += 1 }
        let deadline = ContinuousClock.now + .seconds(timeout) + options.watchDeadlineGrace
        let body = response.body
        return try await withThrowingTaskGroup(of: WatchOutcome?.self) { group in
            group.addTask {
                try await self.consume(body)
            }
            group.addTask {
                try await Task.sleep(until: deadline, clock: .continuous)
                return nil
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let outcome = result { return outcome }
                // The deadline passed: the server neither sent nor closed (stalled). Re-watch.
                logger.info("watch exceeded its timeout without the server closing it; re-watching")
                return .ended(events: 1)
            }
            return .ended(events: 0)
        }
    }

    private func consume(_ body: HTTPClientResponse.Body) async throws -> WatchOutcome {
        var splitter = JSONStreamSplitter()
        var count = 0
        let decoder = JSONDecoder()
        do {
            for try await buffer in body {
                for value in try splitter.feed(buffer.readableBytesView) {
                    let event: Envelope
                    do {
                        event = try decoder.decode(Envelope.self, from: Data(value))
                    } catch {
                        throw KubeAPIError.decoding("watch event: \(error)")
                    }
                    count += 1
                    if let outcome = try handle(event) { return outcome }
                }
            }
        } catch let e as KubeAPIError {
            throw e
        } catch let e as JSONStreamSplitter.SplitError {
            throw KubeAPIError.decoding("watch stream: \(e)")
        } catch {
            if Task.isCancelled { throw CancellationError() }
            // A dropped connection ends the watch like a normal close (client-go treats
            // probable EOFs so); the next watch resumes from the last RV.
            logger.info("watch stream ended with an error; re-watching", metadata: ["error": "\(error)"])
        }
        return .ended(events: count)
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
                    if s.cache.removeValue(forKey: key) != nil {
                        continuation.yield(.deleted(object))
                    }
                } else if let old = s.cache[key] {
                    s.cache[key] = options.cachesContent ? object : object.cacheForm
                    continuation.yield(.updated(old: old, new: object))
                } else {
                    s.cache[key] = options.cachesContent ? object : object.cacheForm
                    continuation.yield(.added(object))
                }
            }
            return nil
        default:
            throw KubeAPIError.decoding("unknown watch event type \(event.type)")
        }
    }
}
