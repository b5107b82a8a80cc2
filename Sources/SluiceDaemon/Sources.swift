import SluiceModel

/// A source of Kubernetes objects (a manifests directory now; the API server's list/watch
/// reflector via `SluiceKube` later). `run` delivers deltas until its task is cancelled;
/// `deliver` never waits (the sync loop's inbox merges what arrives while it commits), so a
/// source may call it from any thread, even under its own locks.
///
/// Contract: the first delivered delta (or a later one) carries `synced: true` once the
/// initial state is complete; deltas are relative to what the source delivered before, and
/// keys are unique per source. An object whose key appears in several sources is taken from
/// the first source that has it (sources are ordered).
public protocol ObjectSource: Sendable {
    /// For logs, e.g. `manifests:/etc/sluice/manifests`.
    var name: String { get }
    func run(deliver: @escaping @Sendable (SourceDelta) -> Void) async throws
    /// As `run(deliver:)`; a source that may produce objects faster than the daemon stages
    /// or commits them (the initial state, a relist, a backlog) awaits `pace` between parts
    /// (it returns once the sync loop has room), so decoded objects do not pile up.
    /// Defaults to `run(deliver:)`.
    func run(deliver: @escaping @Sendable (SourceDelta) -> Void, pace: @escaping @Sendable () async -> Void) async throws
    /// Whether the source may deliver Pods (manifests may; the API server source never
    /// does: kube-proxy plans from EndpointSlices). True by default.
    var deliversPods: Bool { get }
    /// The source's own metric families in Prometheus text format (the API watch's
    /// `sluice_api_*`); empty by default.
    func metricsExposition() -> String
}

extension ObjectSource {
    public func metricsExposition() -> String { "" }

    public var deliversPods: Bool { true }

    public func run(deliver: @escaping @Sendable (SourceDelta) -> Void, pace: @escaping @Sendable () async -> Void) async throws {
        try await run(deliver: deliver)
    }
}

/// A fixed set of objects, delivered once (tests, `--source` of a one-shot file).
public struct StaticSource: ObjectSource {
    public var name: String
    public var objects: [SourcedObject]

    public init(name: String = "static", objects: [SourcedObject]) {
        self.name = name
        self.objects = objects
    }

    public func run(deliver: @escaping @Sendable (SourceDelta) -> Void) async throws {
        var upserts: [ProxyObjectKey: SourcedObject] = [:]
        for o in objects where upserts[o.object.key] == nil { upserts[o.object.key] = o }
        deliver(SourceDelta(upserts: upserts, synced: true))
        while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
    }
}
