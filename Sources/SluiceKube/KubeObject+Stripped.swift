import SluiceModel

/// An object whose content (spec, endpoints, status) can be dropped, keeping its metadata:
/// what a reflector that does not keep content caches (identity and resourceVersion only).
protocol ContentStrippable {
    var stripped: Self { get }
}

extension Service: ContentStrippable {
    var stripped: Service {
        var s = Service(metadata: metadata, spec: Spec())
        s.kind = kind
        s.apiVersion = apiVersion
        return s
    }
}

extension EndpointSlice: ContentStrippable {
    var stripped: EndpointSlice { EndpointSlice(metadata: metadata, addressType: addressType, endpoints: nil, ports: nil) }
}

extension KubeObject {
    /// The object as a content-free cache keeps it (Nodes and ServiceCIDRs are few: whole).
    var cacheForm: Self { (self as? any ContentStrippable)?.stripped as? Self ?? self }
}
