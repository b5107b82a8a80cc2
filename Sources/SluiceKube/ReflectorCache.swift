import SluiceModel

/// What a `Reflector` believes the server holds.
///
/// With content (`ReflectorOptions.cachesContent`) it keeps whole objects. Without, it keeps
/// Services and EndpointSlices as their resourceVersion alone (the key is their identity):
/// a node proxy's engine holds the objects, and a relist compares resourceVersions. Read
/// back, such an entry is a placeholder with only `metadata.name`, `namespace` and
/// `resourceVersion`. Other kinds (this Node, the ServiceCIDRs) are few and kept whole.
struct ReflectorCache<Object: KubeObject>: Sendable {
    let keepsContent: Bool
    /// Whether entries are resourceVersions only.
    private let versionsOnly: Bool
    private var objects: [ObjectKey: Object] = [:]
    private var versions: [ObjectKey: String] = [:]

    init(keepsContent: Bool) {
        self.keepsContent = keepsContent
        versionsOnly = !keepsContent && Object.self is any CachePlaceholder.Type
    }

    var count: Int { versionsOnly ? versions.count : objects.count }
    var keys: [ObjectKey] { versionsOnly ? Array(versions.keys) : Array(objects.keys) }

    subscript(key: ObjectKey) -> Object? {
        if versionsOnly { return versions[key].map { Self.placeholder(key, $0) } }
        return objects[key]
    }

    mutating func store(_ object: Object) {
        if versionsOnly {
            versions[object.key] = object.resourceVersion ?? ""
        } else {
            objects[object.key] = object
        }
    }

    /// Removes an entry; false if there was none.
    @discardableResult
    mutating func remove(_ key: ObjectKey) -> Bool {
        versionsOnly ? versions.removeValue(forKey: key) != nil : objects.removeValue(forKey: key) != nil
    }

    /// Whether `new` differs from what is cached for its key (nil: nothing is). Without
    /// content, by resourceVersion (an object without one always counts as changed).
    func isChanged(_ new: Object) -> Bool? {
        if versionsOnly {
            guard let old = versions[new.key] else { return nil }
            return old != new.resourceVersion || new.resourceVersion == nil
        }
        guard let old = objects[new.key] else { return nil }
        return keepsContent ? old != new : (old.resourceVersion != new.resourceVersion || new.resourceVersion == nil)
    }

    /// Every entry (placeholders for resourceVersion-only entries).
    var snapshot: [ObjectKey: Object] {
        versionsOnly ? Dictionary(uniqueKeysWithValues: versions.map { ($0.key, Self.placeholder($0.key, $0.value)) }) : objects
    }

    private static func placeholder(_ key: ObjectKey, _ resourceVersion: String) -> Object {
        let meta = ObjectMeta(name: key.name, namespace: key.namespace, resourceVersion: resourceVersion.isEmpty ? nil : resourceVersion)
        var o = (Object.self as! any CachePlaceholder.Type).placeholder(meta) as! Object
        o.kind = Object.apiKind
        o.apiVersion = Object.apiGroupVersion
        return o
    }
}

/// A kind a content-free cache keeps as a resourceVersion: it can be rebuilt from metadata.
protocol CachePlaceholder {
    static func placeholder(_ metadata: ObjectMeta) -> Self
}

extension Service: CachePlaceholder {
    static func placeholder(_ metadata: ObjectMeta) -> Service { Service(metadata: metadata, spec: Spec()) }
}

extension EndpointSlice: CachePlaceholder {
    static func placeholder(_ metadata: ObjectMeta) -> EndpointSlice {
        EndpointSlice(metadata: metadata, addressType: nil, endpoints: nil, ports: nil)
    }
}
