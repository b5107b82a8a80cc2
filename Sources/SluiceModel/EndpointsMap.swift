/// Kubernetes vocabulary: kube-proxy's EndpointsMap for one service and one family — its
/// EndpointSlices merged into endpoint lists keyed by slice port (name + protocol).
///
/// Merge rules (`endpointslicecache.go`): only slices of the family; each slice port with a
/// number gives one endpoint `addresses[0]:port` per endpoint; duplicates (same `ip:port`)
/// keep the existing entry unless the new one is local. Slices are visited by name (kube-
/// proxy's map order is random; sorting makes the "existing" entry deterministic). Each
/// list is sorted by the `ip:port` string.
public struct EndpointsMap: Sendable, Hashable {
    /// A slice port: what a service port matches by name and protocol.
    public struct PortKey: Sendable, Hashable, Comparable {
        public var name: String
        public var proto: L4Protocol

        public init(name: String, proto: L4Protocol) {
            self.name = name
            self.proto = proto
        }

        public static func < (a: PortKey, b: PortKey) -> Bool { (a.name, a.proto) < (b.name, b.proto) }
    }

    public var endpointsByPort: [PortKey: [Endpoint]]

    public init(endpointsByPort: [PortKey: [Endpoint]] = [:]) { self.endpointsByPort = endpointsByPort }

    /// Merges `slices` (other families are skipped) for a node named `nodeName`.
    public init(slices: [ValidatedEndpointSlice], family: IPFamily, nodeName: String) {
        // `ip:port` identifies an endpoint; its text (the sort key) is built once.
        struct ID: Hashable { var ip: IPAddress; var port: UInt16 }
        var sets: [PortKey: [ID: (text: String, endpoint: Endpoint)]] = [:]
        for slice in slices.filter({ $0.family == family }).sorted(by: { $0.sliceName < $1.sliceName }) {
            // Within a slice kube-proxy visits endpoints sorted by address.
            let byAddress = slice.endpoints.map { ($0.address.description, $0) }.sorted { $0.0 < $1.0 }.map(\.1)
            for port in slice.ports {
                let key = PortKey(name: port.name, proto: port.proto)
                var set = sets[key] ?? [:]
                for e in byAddress {
                    let isLocal = !nodeName.isEmpty && e.nodeName == nodeName
                    let id = ID(ip: e.address, port: port.port)
                    guard set[id] == nil || isLocal else { continue }
                    let endpoint = Endpoint(ip: e.address, port: port.port, ready: e.ready, serving: e.serving,
                                            terminating: e.terminating, isLocal: isLocal, nodeName: e.nodeName,
                                            zone: e.zone, zoneHints: e.zoneHints, nodeHints: e.nodeHints,
                                            weight: slice.weight)
                    set[id] = (endpoint.description, endpoint)
                }
                sets[key] = set
            }
        }
        // Each list sorted by the `ip:port` string (`Endpoint.<`), keys computed once.
        endpointsByPort = sets.compactMapValues { set in
            set.isEmpty ? nil : set.values.sorted { $0.text < $1.text }.map(\.endpoint)
        }
    }

    /// The endpoints of a service port (matched by port name and protocol).
    public func endpoints(name: String, proto: L4Protocol) -> [Endpoint] {
        endpointsByPort[PortKey(name: name, proto: proto)] ?? []
    }

    /// kube-proxy's `LocalReadyEndpoints()` for this service: distinct IPs of local, ready
    /// endpoints over all ports. This is what the health check node port reports.
    public var localReadyEndpointCount: Int {
        var ips = Set<IPAddress>()
        for endpoints in endpointsByPort.values {
            for e in endpoints where e.isLocal && e.ready { ips.insert(e.ip) }
        }
        return ips.count
    }
}
