import Foundation
import NIOConcurrencyHelpers
import SluiceKube
import SluiceKubeFake
import SluiceModel
import Testing

/// Polls `condition` every 10 ms until it holds or `timeout` passes.
func eventually(_ timeout: Duration = .seconds(20), _ what: String = "condition",
                sourceLocation: SourceLocation = #_sourceLocation, _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
    throw TimedOut(what: what)
}

struct TimedOut: Error { var what: String }

/// Options that make the loop fast in tests (client-go's defaults otherwise).
func testOptions(pageSize: Int = 500, watchTimeout: ClosedRange<Int> = 60...60, grace: Duration = .seconds(5)) -> ReflectorOptions {
    var o = ReflectorOptions()
    o.pageSize = pageSize
    o.watchTimeoutSeconds = watchTimeout
    o.watchDeadlineGrace = grace
    o.backoff = Backoff.Policy(initial: .milliseconds(20), max: .milliseconds(200))
    o.minWatchDuration = .milliseconds(100)
    o.notFoundRecheckInterval = .milliseconds(200)
    return o
}

/// A running reflector plus everything it emitted, and a consumer-side state rebuilt from
/// the events alone (what a daemon would hold).
final class Harness<Object: KubeObject & FakeStorable>: Sendable {
    let reflector: Reflector<Object>
    let client: KubeAPIClient
    private let runTask: Task<Void, Never>
    private let consumeTask: Task<Void, Never>
    let events = NIOLockedValueBox<[ReflectorEvent<Object>]>([])
    let consumerState = NIOLockedValueBox<[ObjectKey: Object]>([:])

    init(client: KubeAPIClient, resource: KubeResource<Object>, options: ReflectorOptions = testOptions()) {
        self.client = client
        let reflector = Reflector(client: client, resource: resource, options: options)
        self.reflector = reflector
        let events = self.events
        let state = self.consumerState
        consumeTask = Task {
            for await e in reflector.events {
                events.withLockedValue { $0.append(e) }
                state.withLockedValue { s in
                    switch e {
                    // A streamed first list: parts, then the rest with `.synced`.
                    case .listed(let part), .synced(let part): for o in part { s[o.key] = o }
                    case .added(let o): s[o.key] = o
                    case .updated(_, let o): s[o.key] = o
                    case .deleted(let o): s[o.key] = nil
                    }
                }
            }
        }
        runTask = Task { await reflector.run() }
    }

    func stop() async {
        runTask.cancel()
        await runTask.value
        await consumeTask.value
    }

    var eventLog: [ReflectorEvent<Object>] { events.withLockedValue { $0 } }

    func waitSynced(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        do {
            try await eventually(.seconds(20), "sync", sourceLocation: sourceLocation) { reflector.hasSynced }
        } catch {
            Issue.record("not synced; reflector statistics: \(reflector.statistics)", sourceLocation: sourceLocation)
            throw error
        }
    }

    /// Waits until both the reflector's cache and the state rebuilt from its events equal the
    /// server's objects (selected as the reflector selects them).
    func waitConverged(with server: FakeAPIServer, labelSelector: String? = nil, fieldSelector: String? = nil,
                       timeout: Duration = .seconds(20), sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let label = labelSelector ?? reflector.resource.labelSelector
        let field = fieldSelector ?? reflector.resource.fieldSelector
        var last = ""
        do {
            try await eventually(timeout, "convergence", sourceLocation: sourceLocation) {
                let expected = try server.objects(Object.self, labelSelector: label, fieldSelector: field)
                let cache = reflector.snapshot().sorted { $0.key < $1.key }.map(\.value)
                let rebuilt = consumerState.withLockedValue { $0 }.sorted { $0.key < $1.key }.map(\.value)
                last = "server \(expected.map { "\($0.key)@\($0.resourceVersion ?? "")" }) cache \(cache.map { "\($0.key)@\($0.resourceVersion ?? "")" }) events \(rebuilt.map { "\($0.key)@\($0.resourceVersion ?? "")" })"
                return reflector.hasSynced && cache == expected && rebuilt == expected
            }
        } catch {
            Issue.record("not converged: \(last); reflector statistics: \(reflector.statistics)", sourceLocation: sourceLocation)
            throw error
        }
    }
}

func makeClient(_ server: FakeAPIServer, tokenSource: TokenSource? = nil) throws -> KubeAPIClient {
    try KubeAPIClient(configuration: KubeClientConfiguration(server: server.url, tokenSource: tokenSource))
}

/// No GET of a single object was ever made.
func expectNoSingleObjectGets(_ server: FakeAPIServer, sourceLocation: SourceLocation = #_sourceLocation) {
    let singles = server.requests.filter(\.isSingleObjectGet)
    #expect(singles.isEmpty, "single-object GETs: \(singles)", sourceLocation: sourceLocation)
}

func service(_ name: String, namespace: String = "default", labels: [String: String]? = nil, port: Int = 80,
             clusterIP: String = "10.96.0.10") -> Service {
    Service(metadata: ObjectMeta(name: name, namespace: namespace, labels: labels),
            spec: Service.Spec(type: "ClusterIP", clusterIP: clusterIP, clusterIPs: [clusterIP], ipFamilies: ["IPv4"],
                               ports: [Service.Port(name: "http", protocol: "TCP", port: port, targetPort: .int(8080))]))
}

func slice(_ name: String, service svc: String, namespace: String = "default", labels: [String: String] = [:],
           addresses: [String] = ["10.0.0.1"]) -> EndpointSlice {
    var l = labels
    l[WellKnownKeys.serviceName] = svc
    return EndpointSlice(metadata: ObjectMeta(name: name, namespace: namespace, labels: l), addressType: "IPv4",
                         endpoints: addresses.map { EndpointSlice.Endpoint(addresses: [$0], conditions: .init(ready: true), nodeName: "node-a") },
                         ports: [EndpointSlice.Port(name: "http", protocol: "TCP", port: 8080)])
}

/// Runs `body` against a started fake and always shuts it down.
func withFake<R>(_ configure: (inout FakeAPIServer.Configuration) -> Void = { _ in },
                 _ body: (FakeAPIServer) async throws -> R) async throws -> R {
    var config = FakeAPIServer.Configuration()
    configure(&config)
    let server = try await FakeAPIServer.start(config)
    do {
        let r = try await body(server)
        try await server.shutdown()
        return r
    } catch {
        try? await server.shutdown()
        throw error
    }
}

/// Per-object RVs seen in the event stream strictly increase (no update delivered twice, none reordered).
func expectNoDuplicateDeliveries<O: KubeObject>(_ events: [ReflectorEvent<O>], sourceLocation: SourceLocation = #_sourceLocation) {
    var last: [ObjectKey: Int] = [:]
    for e in events {
        let o: O
        var isDelete = false
        switch e {
        case .synced(let all), .listed(let all):
            for x in all { last[x.key] = Int(x.resourceVersion ?? "") ?? 0 }
            continue
        case .added(let x): o = x
        case .updated(_, let x): o = x
        case .deleted(let x): o = x; isDelete = true
        }
        let rv = Int(o.resourceVersion ?? "") ?? 0
        if let prev = last[o.key] {
            // A deletion found by a relist carries the last state the client knew (same RV).
            #expect(isDelete ? rv >= prev : rv > prev, "\(o.key) delivered rv \(rv) after \(prev)", sourceLocation: sourceLocation)
        }
        last[o.key] = rv
    }
}

/// The client misses these (its watch is stalled), then history is compacted: `b`
/// deleted, `a` changed, `d` created, next to an unchanged `c`.
func changeBehindStalledWatch(_ server: FakeAPIServer) throws {
    server.stallWatches(newWatchesToo: true)
    try server.delete(Service.self, name: "b")
    try server.update(service("a", port: 8443))
    try server.create(service("d"))
    server.compact()
    server.stopStalling()
}
