import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An honest in-process kube-apiserver on loopback for tests: one global, strictly increasing
/// resourceVersion; list with selectors and paging; chunked watches with history replay,
/// selector transitions, bookmarks and a bounded history window; exact Status error bodies;
/// bearer-token and client-certificate auth; fault injection. Thread-safe.
public final class FakeAPIServer: Sendable {
    public struct TLS: Sendable {
        public var certificateChainPEM: [UInt8]
        public var privateKeyPEM: [UInt8]
        /// When set, client certificates signed by this CA authenticate (optional, like kube-apiserver).
        public var clientCAPEM: [UInt8]?

        public init(certificateChainPEM: [UInt8], privateKeyPEM: [UInt8], clientCAPEM: [UInt8]? = nil) {
            self.certificateChainPEM = certificateChainPEM
            self.privateKeyPEM = privateKeyPEM
            self.clientCAPEM = clientCAPEM
        }
    }

    public struct Configuration: Sendable {
        public var tls: TLS?
        /// Bearer tokens accepted; with `requireAuthentication` a request needs one of these or
        /// a verified client certificate.
        public var acceptedTokens: Set<String> = []
        public var requireAuthentication = false
        /// Events kept for watch replay (at least this many, at most a quarter more); older RVs get 410 Expired.
        public var historyWindow = 10_000
        /// false: `/apis/networking.k8s.io/v1/servicecidrs` answers 404 (servers before 1.33).
        public var serveServiceCIDRs = true
        /// The 1.20 watch cache ignores `limit` for `resourceVersion=0`; set to page anyway.
        public var paginateAtResourceVersionZero = false
        /// 403 for GET of one object, as for the `system:node-proxier` role.
        public var forbidSingleObjectGets = true
        public var initialResourceVersion = 100
        /// Send a BOOKMARK just before closing a watch at `timeoutSeconds` (as 1.20 does).
        public var bookmarkBeforeTimeout = true
        /// Serve lists by watch (`sendInitialEvents=true`, the WatchList gate of 1.34+):
        /// ADDED for every object, then a bookmark annotated `k8s.io/initial-events-end`,
        /// then the watch. false answers such requests 422, as 1.33 does by default.
        public var watchList = false
        public var port = 0
        /// The IPv4 address listened on.
        public var host = "127.0.0.1"
        /// A named network namespace (or a path to one) to listen in instead of the test
        /// process's own: the socket is created there by a short-lived thread (see
        /// `NamespaceSocket`), so clients inside that namespace reach the server and nothing
        /// connects it to the process's namespace.
        public var netns: String?

        public init() {}
    }

    /// How watch events are cut into HTTP chunks.
    public enum WatchFraming: Sendable, Equatable {
        /// One chunk per event (what the recorded 1.20 server does).
        case chunkPerEvent
        /// Each event in `parts` chunks, `pause` apart (so they arrive in separate reads).
        case split(parts: Int, pause: TimeAmount)
        /// All events of one write batch (see `batch`) and of a watch's replay in one chunk.
        case packed
    }

    /// One request as the fake saw it.
    public struct RecordedRequest: Sendable, CustomStringConvertible {
        public var method: String
        public var path: String
        public var query: [String: String]
        public var rawQuery: String
        public var userAgent: String?
        public var accept: String?
        public var authorization: String?
        public var clientCertificate: Bool
        public var time: ContinuousClock.Instant
        public var status: Int
        /// GET of one named object (`…/services/NAME`), which the node-proxier role cannot do.
        public var isSingleObjectGet: Bool
        public var isWatch: Bool { query["watch"] == "true" || query["watch"] == "1" }
        public var description: String { "\(method) \(path)\(rawQuery.isEmpty ? "" : "?" + rawQuery) → \(status)" }
    }

    struct HistoryEntry {
        enum EventType: String { case added = "ADDED", modified = "MODIFIED", deleted = "DELETED" }
        var rv: Int
        var resource: FakeResource
        var key: String
        var type: EventType
        var old: JSONValue?
        var new: JSONValue
    }

    struct Failure {
        var remaining: Int
        var code: Int
        var retryAfterSeconds: Int?
        var pathContains: String?
    }

    struct State {
        var rv: Int
        var objects: [String: [String: JSONValue]] = [:]
        /// Each object's JSON with kind and apiVersion, rendered once when it is written
        /// (kube-apiserver's watch cache also serializes an object once for every watcher).
        var rendered: [String: [String: String]] = [:]
        var history: [HistoryEntry] = []
        /// History holds every event with rv > compactedRV.
        var compactedRV: Int
        var historyWindow: Int
        var watchers: [Int: WatchStream] = [:]
        var nextID = 0
        var requests: [RecordedRequest] = []
        var acceptedTokens: Set<String>
        var requireAuthentication: Bool
        var framing: WatchFraming = .chunkPerEvent
        var failures: [Failure] = []
        var continueEpoch = 0
        var continueFailures = 0
        var serveServiceCIDRs: Bool
        var batchDepth = 0
        var batched: [Int: [String]] = [:]
        /// Sorted keys of one resource's objects as of one resourceVersion: the pages of a
        /// paged list are cut from it instead of sorting every object for every page.
        var sortedKeys: [String: (rv: Int, keys: [String])] = [:]
        var channels: [ObjectIdentifier: Channel] = [:]
        var stallNewWatches = false
        /// Cut the next watch-lists' connections after this many initial events (fault injection),
        /// answering 503 to every request after the cut until `clearFailures()` if asked.
        var cutWatchListsAfter: (events: Int, remaining: Int, thenUnavailable: Bool)?
        /// CLOCK_MONOTONIC seconds when watch events were last handed to a watch's connection.
        var lastEventQueuedAt = 0.0
    }

    let state: NIOLockedValueBox<State>
    let configuration: Configuration
    private let serverChannel: NIOLockedValueBox<Channel?> = NIOLockedValueBox(nil)
    private let boundPort = NIOLockedValueBox(0)

    /// The port bound on `configuration.host`.
    public var port: Int { boundPort.withLockedValue { $0 } }
    /// `https://HOST:PORT` or `http://…` (HOST is 127.0.0.1 unless configured).
    public var url: String { "\(configuration.tls == nil ? "http" : "https")://\(configuration.host):\(port)" }

    private init(configuration: Configuration) {
        self.configuration = configuration
        state = NIOLockedValueBox(State(rv: configuration.initialResourceVersion,
                                        compactedRV: configuration.initialResourceVersion,
                                        historyWindow: configuration.historyWindow,
                                        acceptedTokens: configuration.acceptedTokens,
                                        requireAuthentication: configuration.requireAuthentication,
                                        serveServiceCIDRs: configuration.serveServiceCIDRs))
    }

    /// Starts a server on `configuration.host` (127.0.0.1 unless set), in `configuration.netns`
    /// when set, on an ephemeral port unless `configuration.port` is set.
    public static func start(_ configuration: Configuration = Configuration(),
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> FakeAPIServer {
        let server = FakeAPIServer(configuration: configuration)
        var sslContext: NIOSSLContext? = nil
        if let tls = configuration.tls {
            var c = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(tls.certificateChainPEM).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: tls.privateKeyPEM, format: .pem)))
            if let ca = tls.clientCAPEM {
                c.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
                c.certificateVerification = .optionalVerification
            }
            sslContext = try NIOSSLContext(configuration: c)
        }
        let ctx = sslContext
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let ctx {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: ctx))
                    }
                    // No pipelining assistance: it stops reading while a response is in flight, so a client
                    // closing a watch (FIN or TLS close_notify) would go unnoticed until the watch ends.
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(FakeHTTPHandler(server: server))
                }
            }
        let channel: Channel
        if let netns = configuration.netns {
            let fd = try NamespaceSocket.bound(netns: netns, host: configuration.host, port: configuration.port)
            channel = try await bootstrap.withBoundSocket(fd).get()
        } else {
            channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        }
        server.serverChannel.withLockedValue { $0 = channel }
        server.boundPort.withLockedValue { $0 = channel.localAddress?.port ?? 0 }
        return server
    }

    /// Closes the listener and every connection.
    public func shutdown() async throws {
        let channel = serverChannel.withLockedValue { c -> Channel? in defer { c = nil }; return c }
        try? await channel?.close()
        let children = state.withLockedValue { s -> [Channel] in
            s.watchers = [:]
            return Array(s.channels.values)
        }
        for c in children { try? await c.close() }
    }

    // MARK: - Objects (the test's Swift API)

    public enum MutationError: Error, Sendable, Equatable {
        case alreadyExists(String)
        case notFound(String)
    }

    static func key(_ resource: FakeResource, namespace: String?, name: String) -> String {
        resource.namespaced ? "\(namespace ?? "default")/\(name)" : name
    }

    /// Creates an object (error if it exists). Returns the new resourceVersion.
    @discardableResult
    public func create<T: FakeStorable>(_ object: T) throws -> String {
        try write(T.fakeResource, try JSONValue.from(object), mode: .create)
    }

    /// Replaces an existing object.
    @discardableResult
    public func update<T: FakeStorable>(_ object: T) throws -> String {
        try write(T.fakeResource, try JSONValue.from(object), mode: .update)
    }

    /// Creates or replaces.
    @discardableResult
    public func apply<T: FakeStorable>(_ object: T) throws -> String {
        try write(T.fakeResource, try JSONValue.from(object), mode: .upsert)
    }

    /// Creates or replaces an object given as JSON text (unknown fields are kept and served).
    @discardableResult
    public func applyJSON(_ resource: FakeResource, _ json: String) throws -> String {
        try write(resource, try JSONValue.parse(json), mode: .upsert)
    }

    /// Deletes an object; watchers get DELETED with its last state and a new RV.
    @discardableResult
    public func delete<T: FakeStorable>(_ type: T.Type, namespace: String? = "default", name: String) throws -> String {
        try delete(T.fakeResource, namespace: namespace, name: name)
    }

    @discardableResult
    public func delete(_ resource: FakeResource, namespace: String? = "default", name: String) throws -> String {
        let key = Self.key(resource, namespace: namespace, name: name)
        return try state.withLockedValue { s -> String in
            guard let old = s.objects[resource.plural]?[key] else { throw MutationError.notFound(key) }
            s.rv += 1
            var last = old
            last["metadata"]?["resourceVersion"] = .string(String(s.rv))
            s.objects[resource.plural]?[key] = nil
            s.rendered[resource.plural]?[key] = nil
            commit(&s, HistoryEntry(rv: s.rv, resource: resource, key: key, type: .deleted, old: old, new: last))
            return String(s.rv)
        }
    }

    /// Sets (value) or removes (nil) labels of an existing object.
    @discardableResult
    public func setLabels<T: FakeStorable>(_ type: T.Type, namespace: String? = "default", name: String,
                                           _ changes: [String: String?]) throws -> String {
        let resource = T.fakeResource
        let key = Self.key(resource, namespace: namespace, name: name)
        return try state.withLockedValue { s -> String in
            guard var obj = s.objects[resource.plural]?[key] else { throw MutationError.notFound(key) }
            var labels: [String: JSONValue] = [:]
            if case .object(let l)? = obj["metadata"]?["labels"] { labels = l }
            for (k, v) in changes { labels[k] = v.map { .string($0) } }
            obj["metadata"]?["labels"] = labels.isEmpty ? nil : .object(labels)
            return try writeLocked(&s, resource, obj, mode: .update)
        }
    }

    /// Runs `body`; the watch events its writes produce are handed to each watch together
    /// (one chunk per watch when the framing is `.packed`).
    public func batch<R>(_ body: () throws -> R) rethrows -> R {
        state.withLockedValue { $0.batchDepth += 1 }
        defer {
            state.withLockedValue { s in
                s.batchDepth -= 1
                if s.batchDepth == 0 {
                    for (id, lines) in s.batched { if let w = s.watchers[id] { deliver(&s, w, lines) } }
                    s.batched = [:]
                }
            }
        }
        return try body()
    }

    /// The server's objects of a type matching the selectors, sorted by key, decoded the way
    /// a client decodes them (kind and apiVersion filled in).
    public func objects<T: FakeStorable>(_ type: T.Type, labelSelector: String? = nil, fieldSelector: String? = nil) throws -> [T] {
        let resource = T.fakeResource
        let label = try labelSelector.map { try LabelSelector(parsing: $0) }
        let field = try fieldSelector.map { try FieldSelector(parsing: $0) }
        let all = state.withLockedValue { $0.objects[resource.plural] ?? [:] }
        return try all.keys.sorted().compactMap { k -> T? in
            let o = all[k]!
            if let label, !label.matches(o.labels) { return nil }
            if let field, !field.matches(name: o.name, namespace: o.namespace) { return nil }
            return try Self.withTypeMeta(o, resource).decode(T.self)
        }
    }

    /// CLOCK_MONOTONIC seconds when the last watch events were handed to a connection: the
    /// moment a change leaves the server (benchmarks start their clock there).
    public var lastEventQueuedAt: Double { state.withLockedValue { $0.lastEventQueuedAt } }

    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// The current global resourceVersion.
    public var resourceVersion: String { state.withLockedValue { String($0.rv) } }

    enum WriteMode { case create, update, upsert }

    private func write(_ resource: FakeResource, _ object: JSONValue, mode: WriteMode) throws -> String {
        try state.withLockedValue { s in try writeLocked(&s, resource, object, mode: mode) }
    }

    private func writeLocked(_ s: inout State, _ resource: FakeResource, _ input: JSONValue, mode: WriteMode) throws -> String {
        guard case .object(var obj) = input else { throw MutationError.notFound("not an object") }
        obj["kind"] = nil
        obj["apiVersion"] = nil
        var meta: [String: JSONValue] = [:]
        if case .object(let m)? = obj["metadata"] { meta = m }
        let name = meta["name"]?.stringValue ?? ""
        if resource.namespaced {
            if meta["namespace"]?.stringValue == nil { meta["namespace"] = .string("default") }
        } else {
            meta["namespace"] = nil
        }
        let key = Self.key(resource, namespace: meta["namespace"]?.stringValue, name: name)
        let old = s.objects[resource.plural]?[key]
        switch (mode, old) {
        case (.create, .some): throw MutationError.alreadyExists(key)
        case (.update, .none): throw MutationError.notFound(key)
        default: break
        }
        s.rv += 1
        meta["resourceVersion"] = .string(String(s.rv))
        meta["uid"] = old?["metadata"]?["uid"] ?? meta["uid"] ?? .string(Self.makeUID(s.rv))
        meta["creationTimestamp"] = old?["metadata"]?["creationTimestamp"] ?? meta["creationTimestamp"]
            ?? .string(Self.timestamp())
        if meta["managedFields"] == nil {
            meta["managedFields"] = .array([.object([
                "manager": .string("sluice-fake"), "operation": .string("Update"),
                "apiVersion": .string(resource.apiVersion), "time": meta["creationTimestamp"]!,
                "fieldsType": .string("FieldsV1"),
                "fieldsV1": .object(["f:metadata": .object(["f:labels": .object([".": .object([:])])])]),
            ])])
        }
        obj["metadata"] = .object(meta)
        if resource == .services && obj["status"] == nil { obj["status"] = .object(["loadBalancer": .object([:])]) }
        let stored = JSONValue.object(obj)
        s.objects[resource.plural, default: [:]][key] = stored
        let rendered = Self.withTypeMeta(stored, resource).rendered()
        s.rendered[resource.plural, default: [:]][key] = rendered
        commit(&s, HistoryEntry(rv: s.rv, resource: resource, key: key, type: old == nil ? .added : .modified,
                                old: old, new: stored), rendered: rendered)
        return String(s.rv)
    }

    static func makeUID(_ n: Int) -> String {
        let hex = String(n, radix: 16)
        let padded = String(repeating: "0", count: max(0, 12 - hex.count)) + hex
        return "5a1c0000-0000-4000-8000-\(padded)"
    }

    static func timestamp() -> String {
        Date.now.formatted(.iso8601)
    }

    /// `rendered`: `entry.new` with kind and apiVersion, already rendered (a write renders it
    /// once for its cache), so that live events need no render of their own.
    private func commit(_ s: inout State, _ entry: HistoryEntry, rendered: String? = nil) {
        s.history.append(entry)
        // Trimmed a quarter window at a time: dropping one entry per write moves the whole
        // window every time (O(window) per write).
        if s.history.count > s.historyWindow + max(1, s.historyWindow / 4) {
            let drop = s.history.count - s.historyWindow
            s.compactedRV = s.history[drop - 1].rv
            s.history.removeFirst(drop)
        }
        for w in s.watchers.values where w.resource == entry.resource {
            guard let line = Self.eventLine(for: entry, watcher: w, rendered: rendered) else { continue }
            if s.batchDepth > 0 {
                s.batched[w.id, default: []].append(line)
            } else {
                deliver(&s, w, [line])
            }
        }
    }

    /// The watch event (if any) `entry` produces for `w`, with selector transitions.
    static func eventLine(for entry: HistoryEntry, watcher w: WatchStream, rendered: String? = nil) -> String? {
        guard entry.rv > w.minRV else { return nil }
        let oldMatch = entry.old.map { w.matches($0) } ?? false
        let newMatch = w.matches(entry.new)
        let type: String
        switch entry.type {
        case .added:
            guard newMatch else { return nil }
            type = "ADDED"
        case .modified:
            switch (oldMatch, newMatch) {
            case (true, true): type = "MODIFIED"
            case (true, false): type = "DELETED"   // left the selector
            case (false, true): type = "ADDED"     // entered the selector
            case (false, false): return nil
            }
        case .deleted:
            guard oldMatch else { return nil }
            type = "DELETED"
        }
        if let rendered { return "{\"type\":\"\(type)\",\"object\":\(rendered)}\n" }
        return eventLine(type: type, object: withTypeMeta(entry.new, entry.resource))
    }

    static func eventLine(type: String, object: JSONValue) -> String {
        "{\"type\":\"\(type)\",\"object\":\(object.rendered())}\n"
    }

    static func withTypeMeta(_ o: JSONValue, _ r: FakeResource) -> JSONValue {
        var c = o
        c["kind"] = .string(r.kind)
        c["apiVersion"] = .string(r.apiVersion)
        return c
    }

    func bookmarkLine(_ r: FakeResource, rv: Int, initialEventsEnd: Bool = false) -> String {
        var body = r.bookmarkBody
        body["kind"] = .string(r.kind)
        body["apiVersion"] = .string(r.apiVersion)
        var meta: [String: JSONValue] = ["resourceVersion": .string(String(rv)), "creationTimestamp": .null]
        if initialEventsEnd { meta["annotations"] = .object(["k8s.io/initial-events-end": .string("true")]) }
        body["metadata"] = .object(meta)
        return Self.eventLine(type: "BOOKMARK", object: .object(body))
    }

    func deliver(_ s: inout State, _ w: WatchStream, _ lines: [String]) {
        guard !lines.isEmpty else { return }
        if w.held != nil {
            // A watch-list still sending its list: live events wait for its closing bookmark.
            w.held! += lines
            return
        }
        s.lastEventQueuedAt = Self.monotonicSeconds()
        switch s.framing {
        case .chunkPerEvent:
            w.enqueue(lines.map { .data(ByteBuffer(string: $0), pause: .zero) })
        case .packed:
            w.enqueue([.data(ByteBuffer(string: lines.joined()), pause: .zero)])
        case .split(let parts, let pause):
            var items: [WatchStream.Item] = []
            for line in lines {
                let bytes = Array(line.utf8)
                let n = max(1, min(parts, bytes.count))
                let size = (bytes.count + n - 1) / n
                var i = 0
                while i < bytes.count {
                    let j = min(bytes.count, i + size)
                    items.append(.data(ByteBuffer(bytes: bytes[i..<j]), pause: pause))
                    i = j
                }
            }
            w.enqueue(items)
        }
    }

    // MARK: - Fault injection and knobs

    public func setWatchFraming(_ framing: WatchFraming) {
        state.withLockedValue { $0.framing = framing }
    }

    /// Closes every open watch connection without the terminating chunk; with
    /// `partialEvent`, half an event is written first.
    public func dropWatchConnections(partialEvent: Bool = true) {
        state.withLockedValue { s in
            for w in s.watchers.values {
                w.enqueue([.drop(partial: partialEvent ? "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"\(w.resource.kind)\",\"apiVer" : nil)])
            }
            s.watchers = [:]
        }
    }

    /// Drops the failures `failNextRequests` queued that have not happened yet.
    public func clearFailures() {
        state.withLockedValue { $0.failures = [] }
    }

    /// The next `count` watch-lists send `events` initial events, then their connection drops
    /// (no bookmark), as a server going away in the middle of a list. With
    /// `thenUnavailable`, every request after the cut gets 503 until `clearFailures()`.
    public func cutNextWatchLists(_ count: Int = 1, afterEvents events: Int, thenUnavailable: Bool = false) {
        state.withLockedValue { $0.cutWatchListsAfter = (events, count, thenUnavailable) }
    }

    /// Closes every connection, idle ones included, as an API server restart would (the data stays).
    public func dropAllConnections() {
        let channels = state.withLockedValue { s -> [Channel] in
            s.watchers = [:]
            return Array(s.channels.values)
        }
        for c in channels { c.close(promise: nil) }
    }

    /// Open watches go silent for good (no events, no close at their timeout).
    /// With `newWatchesToo`, watches opened later stall as well until `stopStalling()`.
    public func stallWatches(newWatchesToo: Bool = false) {
        state.withLockedValue { s in
            for w in s.watchers.values { w.stall() }
            s.watchers = [:]
            s.stallNewWatches = newWatchesToo
        }
    }

    public func stopStalling() {
        state.withLockedValue { $0.stallNewWatches = false }
    }

    /// Drops all history now ("etcd compaction"): watches and exact lists from any RV before
    /// the current one get 410.
    public func compact() {
        state.withLockedValue { s in
            s.compactedRV = s.rv
            s.history = []
        }
    }

    /// The next `count` requests (whose path contains `pathContains`, if given) fail with
    /// `code`, with `Retry-After` when `retryAfterSeconds` is set: 429 TooManyRequests, 504 the
    /// watch cache's "Too large resource version" (ResourceVersionTooLarge cause), 503, 401, or
    /// any other code as a 500-style InternalError Status.
    public func failNextRequests(_ count: Int, code: Int = 429, retryAfterSeconds: Int? = 1, pathContains: String? = nil) {
        state.withLockedValue { $0.failures.append(Failure(remaining: count, code: code, retryAfterSeconds: retryAfterSeconds, pathContains: pathContains)) }
    }

    /// Only these bearer tokens are accepted from now on (and authentication is required).
    public func setAcceptedTokens(_ tokens: Set<String>) {
        state.withLockedValue {
            $0.acceptedTokens = tokens
            $0.requireAuthentication = true
        }
    }

    /// Every continue token handed out so far is expired (as after an etcd compaction).
    public func expireContinueTokens() {
        state.withLockedValue { $0.continueEpoch += 1 }
    }

    /// The next `count` list requests that carry a continue token get 410 Expired.
    public func expireNextContinueTokens(_ count: Int = 1) {
        state.withLockedValue { $0.continueFailures += count }
    }

    /// Sends a BOOKMARK with the current RV on every watch that allowed bookmarks.
    public func sendBookmarks() {
        state.withLockedValue { s in
            for w in s.watchers.values where w.allowBookmarks {
                let line = bookmarkLine(w.resource, rv: s.rv)
                deliver(&s, w, [line])
            }
        }
    }

    /// Serve (or answer 404 for) ServiceCIDRs from now on.
    public func setServesServiceCIDRs(_ serves: Bool) {
        state.withLockedValue { $0.serveServiceCIDRs = serves }
    }

    /// Number of open (non-stalled) watches, optionally for one resource.
    public func openWatchCount(_ resource: FakeResource? = nil) -> Int {
        state.withLockedValue { s in s.watchers.values.filter { resource == nil || $0.resource == resource! }.count }
    }

    // MARK: - Request log

    public var requests: [RecordedRequest] { state.withLockedValue { $0.requests } }

    public func clearRequests() { state.withLockedValue { $0.requests = [] } }
}
