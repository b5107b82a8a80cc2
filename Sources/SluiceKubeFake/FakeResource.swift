import SluiceModel

/// A resource the fake serves.
public struct FakeResource: Sendable, Hashable, CustomStringConvertible {
    /// Plural, e.g. `services`.
    public var plural: String
    public var kind: String
    public var listKind: String
    /// `v1`, `discovery.k8s.io/v1`, …
    public var apiVersion: String
    public var namespaced: Bool
    /// The `object` of a BOOKMARK event (an empty object of the kind), without kind/apiVersion/metadata.
    var bookmarkBody: [String: JSONValue]

    public var description: String { plural }

    /// `/api/v1` or `/apis/GROUP/VERSION`.
    public var prefix: String { apiVersion.contains("/") ? "/apis/\(apiVersion)" : "/api/\(apiVersion)" }

    public static let services = FakeResource(
        plural: "services", kind: "Service", listKind: "ServiceList", apiVersion: "v1", namespaced: true,
        bookmarkBody: ["spec": .object([:]), "status": .object(["loadBalancer": .object([:])])])
    public static let endpointSlices = FakeResource(
        plural: "endpointslices", kind: "EndpointSlice", listKind: "EndpointSliceList",
        apiVersion: "discovery.k8s.io/v1", namespaced: true,
        bookmarkBody: ["addressType": .string(""), "endpoints": .null])
    public static let nodes = FakeResource(
        plural: "nodes", kind: "Node", listKind: "NodeList", apiVersion: "v1", namespaced: false,
        bookmarkBody: ["spec": .object([:]), "status": .object(["daemonEndpoints": .object(["kubeletEndpoint": .object(["Port": .int(0)])]),
                                                                  "nodeInfo": .object([:])])])
    public static let serviceCIDRs = FakeResource(
        plural: "servicecidrs", kind: "ServiceCIDR", listKind: "ServiceCIDRList",
        apiVersion: "networking.k8s.io/v1", namespaced: false,
        bookmarkBody: ["spec": .object([:]), "status": .object([:])])

    public static let all: [FakeResource] = [.services, .endpointSlices, .nodes, .serviceCIDRs]
}

/// A SluiceModel type the fake can store.
public protocol FakeStorable: Codable, Sendable {
    static var fakeResource: FakeResource { get }
}

extension Service: FakeStorable { public static var fakeResource: FakeResource { .services } }
extension EndpointSlice: FakeStorable { public static var fakeResource: FakeResource { .endpointSlices } }
extension Node: FakeStorable { public static var fakeResource: FakeResource { .nodes } }
extension ServiceCIDR: FakeStorable { public static var fakeResource: FakeResource { .serviceCIDRs } }
