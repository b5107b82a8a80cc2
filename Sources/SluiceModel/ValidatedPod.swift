/// A Pod that passed validation (`PodValidator`): its addresses parsed (at most one per
/// family, in `status.podIPs` order), its conditions resolved, its named container ports
/// read. What `EndpointSliceController` derives endpoints from.
public struct ValidatedPod: Sendable, Hashable {
    public var namespace: String
    public var name: String
    /// Every label of the pod.
    public var labels: [String: String]
    /// Empty while the pod has no address (it is then no endpoint).
    public var addresses: [IPAddress]
    /// The `Ready` condition is `True`.
    public var ready: Bool
    /// `metadata.deletionTimestamp` is set.
    public var terminating: Bool
    public var nodeName: String?
    /// Named container ports, in container order.
    public var namedPorts: [NamedPort]

    /// A named `spec.containers[].ports[]` entry.
    public struct NamedPort: Sendable, Hashable {
        public var name: String
        public var proto: L4Protocol
        public var port: UInt16

        public init(name: String, proto: L4Protocol = .tcp, port: UInt16) {
            self.name = name
            self.proto = proto
            self.port = port
        }
    }

    public init(namespace: String, name: String, labels: [String: String] = [:], addresses: [IPAddress] = [],
                ready: Bool = true, terminating: Bool = false, nodeName: String? = nil, namedPorts: [NamedPort] = []) {
        self.namespace = namespace
        self.name = name
        self.labels = labels
        self.addresses = addresses
        self.ready = ready
        self.terminating = terminating
        self.nodeName = nodeName
        self.namedPorts = namedPorts
    }

    /// `namespace/name`, as `explain` names the pod behind an endpoint.
    public var reference: String { "\(namespace)/\(name)" }

    /// The container port named `name` with protocol `proto` (`podutil.FindPort`: the first
    /// match over the containers).
    public func port(named name: String, proto: L4Protocol) -> UInt16? {
        namedPorts.first { $0.name == name && $0.proto == proto }?.port
    }

    /// True if every pair of `selector` is among the labels.
    public func matches(_ selector: [String: String]) -> Bool {
        selector.allSatisfy { labels[$0.key] == $0.value }
    }
}
