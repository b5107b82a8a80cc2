import SluiceModel

/// An API object a `Reflector` can list and watch.
public protocol KubeObject: Sendable, Hashable, Codable {
    var metadata: ObjectMeta { get }
    var kind: String? { get set }
    var apiVersion: String? { get set }
    /// `kind` of one object, e.g. `Service`.
    static var apiKind: String { get }
    /// `apiVersion`, e.g. `discovery.k8s.io/v1`.
    static var apiGroupVersion: String { get }
    /// Reads one object with a decoder written by hand, for the kinds that come by the
    /// hundred thousand; throws `JSONReader.Unsupported` (the default) to leave the bytes to
    /// `JSONDecoder`.
    static func read(json r: inout JSONReader) throws -> Self
}

extension KubeObject {
    public static func read(json r: inout JSONReader) throws -> Self { throw r.unsupported() }
}

extension Service: KubeObject {
    public static var apiKind: String { "Service" }
    public static var apiGroupVersion: String { "v1" }
    public static func read(json r: inout JSONReader) throws -> Service { try Service(json: &r) }
}
extension EndpointSlice: KubeObject {
    public static var apiKind: String { "EndpointSlice" }
    public static var apiGroupVersion: String { "discovery.k8s.io/v1" }
    public static func read(json r: inout JSONReader) throws -> EndpointSlice { try EndpointSlice(json: &r) }
}
extension Node: KubeObject {
    public static var apiKind: String { "Node" }
    public static var apiGroupVersion: String { "v1" }
}
extension ServiceCIDR: KubeObject {
    public static var apiKind: String { "ServiceCIDR" }
    public static var apiGroupVersion: String { "networking.k8s.io/v1" }
}

/// `namespace/name` (namespace nil for cluster-scoped objects): the cache key.
public struct ObjectKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var namespace: String?
    public var name: String

    public init(namespace: String?, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public init(_ meta: ObjectMeta) {
        self.init(namespace: meta.namespace, name: meta.name ?? "")
    }

    public var description: String { namespace.map { "\($0)/\(name)" } ?? name }

    /// The order of `description` (`namespace/name`), compared byte by byte without building it.
    public static func < (a: ObjectKey, b: ObjectKey) -> Bool {
        a.descriptionBytes.lexicographicallyPrecedes(b.descriptionBytes)
    }

    /// The UTF-8 bytes of `description`.
    private var descriptionBytes: DescriptionBytes { DescriptionBytes(namespace: namespace?.utf8, name: name.utf8) }

    private struct DescriptionBytes: Sequence, IteratorProtocol {
        var namespace: String.UTF8View.Iterator?
        var slash: Bool
        var name: String.UTF8View.Iterator

        init(namespace: String.UTF8View?, name: String.UTF8View) {
            self.namespace = namespace?.makeIterator()
            self.slash = namespace != nil
            self.name = name.makeIterator()
        }

        mutating func next() -> UInt8? {
            if namespace != nil {
                if let b = namespace!.next() { return b }
                namespace = nil
            }
            if slash {
                slash = false
                return UInt8(ascii: "/")
            }
            return name.next()
        }
    }
}

extension KubeObject {
    public var key: ObjectKey { ObjectKey(metadata) }
    public var resourceVersion: String? { metadata.resourceVersion }
}

/// What a reflector lists and watches: a collection path plus selectors.
public struct KubeResource<Object: KubeObject>: Sendable, CustomStringConvertible {
    /// Collection path, e.g. `/api/v1/services`.
    public var path: String
    public var labelSelector: String?
    public var fieldSelector: String?
    /// A 404 on list means "this server does not serve the resource": treat as an empty list
    /// (and check again later). Used for ServiceCIDRs on servers older than 1.33.
    public var notFoundMeansEmpty: Bool

    public init(path: String, labelSelector: String? = nil, fieldSelector: String? = nil,
                notFoundMeansEmpty: Bool = false) {
        self.path = path
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.notFoundMeansEmpty = notFoundMeansEmpty
    }

    public var description: String {
        var s = path
        if let l = labelSelector { s += " labelSelector=\(l)" }
        if let f = fieldSelector { s += " fieldSelector=\(f)" }
        return s
    }
}

/// kube-proxy's selectors (`cmd/kube-proxy/app/server.go`).
public enum ProxySelectors {
    /// `!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name`, or with a
    /// proxy name `!service.kubernetes.io/headless,service.kubernetes.io/service-proxy-name=NAME`
    /// (requirements sorted by key, as `labels.Selector.String()` prints them).
    public static func labelSelector(serviceProxyName: String? = nil) -> String {
        if let name = serviceProxyName, !name.isEmpty {
            return "!\(WellKnownKeys.headless),\(WellKnownKeys.serviceProxyName)=\(name)"
        }
        return "!\(WellKnownKeys.headless),!\(WellKnownKeys.serviceProxyName)"
    }
}

extension KubeResource where Object == Service {
    /// `/api/v1/services` with kube-proxy's label selector.
    public static func services(serviceProxyName: String? = nil) -> Self {
        Self(path: "/api/v1/services", labelSelector: ProxySelectors.labelSelector(serviceProxyName: serviceProxyName))
    }
}

extension KubeResource where Object == EndpointSlice {
    /// `/apis/discovery.k8s.io/v1/endpointslices` with kube-proxy's label selector.
    public static func endpointSlices(serviceProxyName: String? = nil) -> Self {
        Self(path: "/apis/discovery.k8s.io/v1/endpointslices",
             labelSelector: ProxySelectors.labelSelector(serviceProxyName: serviceProxyName))
    }
}

extension KubeResource where Object == Node {
    /// The proxy's own Node: `/api/v1/nodes?fieldSelector=metadata.name=NAME`.
    public static func node(named name: String) -> Self {
        Self(path: "/api/v1/nodes", fieldSelector: "metadata.name=\(name)")
    }
}

extension KubeResource where Object == ServiceCIDR {
    /// `/apis/networking.k8s.io/v1/servicecidrs`; a 404 (server older than 1.33) is an empty list.
    public static func serviceCIDRs() -> Self {
        Self(path: "/apis/networking.k8s.io/v1/servicecidrs", notFoundMeansEmpty: true)
    }
}
