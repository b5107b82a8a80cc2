/// The objects a node proxy consumes, their identity, and changes to them: the vocabulary
/// shared by the sources, the planner and the engine.

/// The kinds of Kubernetes objects a node proxy consumes.
public enum ProxyObjectKind: String, Sendable, Hashable, Comparable, CaseIterable {
    case service = "Service"
    case endpointSlice = "EndpointSlice"
    case node = "Node"
    case serviceCIDR = "ServiceCIDR"
    /// Manifests only: endpoints of selector Services without EndpointSlices (`EndpointSliceController`).
    case pod = "Pod"

    /// Name order (EndpointSlice, Node, Pod, Service, ServiceCIDR), without comparing strings.
    private var rank: Int {
        switch self {
        case .endpointSlice: 0
        case .node: 1
        case .pod: 2
        case .service: 3
        case .serviceCIDR: 4
        }
    }

    public static func < (a: ProxyObjectKind, b: ProxyObjectKind) -> Bool { a.rank < b.rank }
}

/// Identity of one object: kind plus `namespace/name` (namespace empty for cluster-scoped kinds).
public struct ProxyObjectKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var kind: ProxyObjectKind
    public var namespace: String
    public var name: String

    public init(kind: ProxyObjectKind, namespace: String = "", name: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }

    public var description: String { namespace.isEmpty ? "\(kind.rawValue) \(name)" : "\(kind.rawValue) \(namespace)/\(name)" }

    public static func < (a: ProxyObjectKey, b: ProxyObjectKey) -> Bool {
        if a.kind != b.kind { return a.kind < b.kind }
        if a.namespace != b.namespace { return a.namespace < b.namespace }
        return a.name < b.name
    }
}

/// One decoded object of a supported kind.
public indirect enum ProxyObject: Sendable, Hashable {
    case service(Service)
    case endpointSlice(EndpointSlice)
    case node(Node)
    case serviceCIDR(ServiceCIDR)
    case pod(Pod)

    public var kind: ProxyObjectKind {
        switch self {
        case .service: .service
        case .endpointSlice: .endpointSlice
        case .node: .node
        case .serviceCIDR: .serviceCIDR
        case .pod: .pod
        }
    }

    public var metadata: ObjectMeta {
        switch self {
        case .service(let o): o.metadata
        case .endpointSlice(let o): o.metadata
        case .node(let o): o.metadata
        case .serviceCIDR(let o): o.metadata
        case .pod(let o): o.metadata
        }
    }

    /// The object's key; namespaced kinds default to namespace `default`, as the loader does.
    public var key: ProxyObjectKey {
        let m = metadata
        switch kind {
        case .service, .endpointSlice, .pod:
            return ProxyObjectKey(kind: kind, namespace: m.namespace ?? "default", name: m.name ?? "")
        case .node, .serviceCIDR:
            return ProxyObjectKey(kind: kind, name: m.name ?? "")
        }
    }
}

/// An object and where it came from (a manifest file, or nil for the API server).
public struct SourcedObject: Sendable, Hashable {
    public var object: ProxyObject
    public var file: String?

    public init(_ object: ProxyObject, file: String? = nil) {
        self.object = object
        self.file = file
    }
}

/// What a source reports: objects added or changed, objects gone, and problems found while
/// reading (logged by the daemon; they never stop it).
public struct SourceDelta: Sendable {
    public var upserts: [ProxyObjectKey: SourcedObject]
    public var deletes: Set<ProxyObjectKey>
    public var diagnostics: [Diagnostic]
    /// True once the source has delivered its complete initial state (kube-proxy's
    /// `OnServiceSynced`/`OnEndpointSlicesSynced`). Nothing is applied until every source
    /// has sent a delta with `synced == true`; later deltas keep it true.
    public var synced: Bool

    public init(upserts: [ProxyObjectKey: SourcedObject] = [:], deletes: Set<ProxyObjectKey> = [], diagnostics: [Diagnostic] = [],
                synced: Bool = true) {
        self.upserts = upserts
        self.deletes = deletes
        self.diagnostics = diagnostics
        self.synced = synced
    }

    public var isEmpty: Bool { upserts.isEmpty && deletes.isEmpty }

    /// The delta as one change map (`nil` deletes).
    public var changes: [ProxyObjectKey: SourcedObject?] {
        var out: [ProxyObjectKey: SourcedObject?] = [:]
        for k in deletes { out[k] = .some(nil) }
        for (k, v) in upserts { out[k] = v }
        return out
    }
}

/// Changes to objects by key: a value upserts, `nil` deletes.
public typealias ObjectChanges = [ProxyObjectKey: SourcedObject?]

extension ClusterObjects {
    /// The objects as `SourcedObject`s, in load order.
    public var sourcedObjects: [SourcedObject] {
        services.map { SourcedObject(.service($0.object), file: $0.file) }
            + endpointSlices.map { SourcedObject(.endpointSlice($0.object), file: $0.file) }
            + nodes.map { SourcedObject(.node($0.object), file: $0.file) }
            + serviceCIDRs.map { SourcedObject(.serviceCIDR($0.object), file: $0.file) }
            + pods.map { SourcedObject(.pod($0.object), file: $0.file) }
    }

    /// Every object as an upsert (a key given twice keeps the later object).
    public var upsertChanges: ObjectChanges {
        var out: ObjectChanges = [:]
        for o in sourcedObjects { out[o.object.key] = o }
        return out
    }
}
