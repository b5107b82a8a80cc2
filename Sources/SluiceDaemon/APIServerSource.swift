import NIOConcurrencyHelpers
import SluiceKube
import SluiceModel

/// The Kubernetes API server as a source: `SluiceKube.ProxyReflectors` (list+watch of
/// Services and EndpointSlices with kube-proxy's label selector, this Node, ServiceCIDRs).
/// Each reflector event becomes a one-object delta; a streamed first list (watch-list)
/// arrives in parts, each one delta. The source reports `synced` once every
/// reflector has delivered its first complete list (kube-proxy's
/// `OnServiceSynced`/`OnEndpointSlicesSynced`/node sync). Relists arrive from the reflectors
/// as ordinary adds, updates and deletes.
public struct APIServerSource: ObjectSource {
    public let client: KubeAPIClient
    public let nodeName: String
    public let serviceProxyName: String?
    public let options: ReflectorOptions
    /// The reflectors' counters, for `/metrics`.
    let watchMetrics = APIWatchMetrics()

    public init(client: KubeAPIClient, nodeName: String, serviceProxyName: String? = nil,
                options: ReflectorOptions = ReflectorOptions()) {
        self.client = client
        self.nodeName = nodeName
        self.serviceProxyName = serviceProxyName
        self.options = options
    }

    public var name: String { "apiserver:\(client.configuration.server)" }

    public func run(deliver: @escaping @Sendable (SourceDelta) -> Void) async throws {
        try await run(deliver: deliver, pacing: nil)
    }

    /// The reflectors wait for `pace` between stream buffers and list pages (`ReflectorOptions.pacing`).
    public func run(deliver: @escaping @Sendable (SourceDelta) -> Void, pace: @escaping @Sendable () async -> Void) async throws {
        try await run(deliver: deliver, pacing: pace)
    }

    private func run(deliver: @escaping @Sendable (SourceDelta) -> Void, pacing: (@Sendable () async -> Void)?) async throws {
        // The engine holds every object the proxy uses; the reflectors keep identities only.
        var options = options
        options.cachesContent = false
        if let pacing { options.pacing = pacing }
        // This Node, Services, EndpointSlices and ServiceCIDRs (an older server's 404 counts as listed).
        let gate = SyncGate(pending: 4)
        // Each event goes to the sync loop's inbox on the thread that decoded it.
        let handlers = ProxyReflectors.Handlers(
            services: { Self.forward($0, gate: gate, deliver: deliver) { .service($0) } },
            endpointSlices: { Self.forward($0, gate: gate, deliver: deliver) { .endpointSlice($0) } },
            node: { Self.forward($0, gate: gate, deliver: deliver) { .node($0) } },
            serviceCIDRs: { Self.forward($0, gate: gate, deliver: deliver) { .serviceCIDR($0) } })
        let reflectors = ProxyReflectors(client: client, nodeName: nodeName, serviceProxyName: serviceProxyName,
                                         watchServiceCIDRs: true, options: options, handlers: handlers)
        watchMetrics.attach(reflectors)
        await reflectors.run()
    }

    private static func forward<O: KubeObject>(_ event: ReflectorEvent<O>, gate: SyncGate,
                                               deliver: @Sendable (SourceDelta) -> Void,
                                               wrap: (O) -> ProxyObject) {
        var delta = SourceDelta(synced: false)
        switch event {
        case .listed(let objects):
            for o in objects { let p = wrap(o); delta.upserts[p.key] = SourcedObject(p) }
        case .synced(let objects):
            for o in objects { let p = wrap(o); delta.upserts[p.key] = SourcedObject(p) }
            delta.synced = gate.markSynced()
        case .added(let o), .updated(_, let o):
            let p = wrap(o)
            delta.upserts[p.key] = SourcedObject(p)
            delta.synced = gate.allSynced
        case .deleted(let o):
            delta.deletes.insert(wrap(o).key)
            delta.synced = gate.allSynced
        }
        deliver(delta)
    }

    public func metricsExposition() -> String { watchMetrics.exposition() }

    /// Never: endpoints come from EndpointSlices, as kube-proxy's do.
    public var deliversPods: Bool { false }
}

/// Counts reflectors that have not delivered their first list yet. A lock, not an actor:
/// it is read for every watch event, which must not hop executors on its way to the kernel.
final class SyncGate: Sendable {
    private let pending: NIOLockedValueBox<Int>
    init(pending: Int) { self.pending = NIOLockedValueBox(pending) }
    var allSynced: Bool { pending.withLockedValue { $0 == 0 } }
    func markSynced() -> Bool {
        pending.withLockedValue { p in
            p = max(0, p - 1)
            return p == 0
        }
    }
}
