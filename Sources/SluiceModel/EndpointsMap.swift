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
        var sets: [PortKey: [ID: (text: TextOrder, endpoint: Endpoint)]] = [:]
        for slice in slices.filter({ $0.family == family }).sorted(by: { $0.sliceName < $1.sliceName }) {
            // Within a slice kube-proxy visits endpoints sorted by address.
            let byAddress = slice.endpoints.map { (TextOrder($0.address, port: nil), $0) }.sorted { $0.0 < $1.0 }.map(\.1)
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
                    set[id] = (TextOrder(e.address, port: port.port), endpoint)
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

/// The order of an address's text, or of an endpoint's `ip:port` text (`Endpoint.description`),
/// without building the string: an IPv4 text (at most 21 bytes) is written into 24 bytes
/// compared as three big-endian words, which orders as comparing the ASCII texts does.
/// IPv6 texts are built (their `::` compression is `IPAddress.description`'s business).
enum TextOrder: Comparable, Hashable, Sendable {
    case packed(UInt64, UInt64, UInt64)
    case text(String)

    init(_ ip: IPAddress, port: UInt16?) {
        switch ip {
        case .v4(let v):
            self = Self.packedIPv4(v, port: port)
        case .v6:
            self = .text(port.map { "[\(ip)]:\($0)" } ?? ip.description)
        }
    }

    private static func packedIPv4(_ v: UInt32, port: UInt16?) -> TextOrder {
        var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &words) { raw in
            var i = 0
            func decimal(_ n: UInt32) {
                var digits: (UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0)
                var count = 0
                var x = n
                withUnsafeMutableBytes(of: &digits) { d in
                    repeat {
                        d[count] = UInt8(ascii: "0") + UInt8(x % 10)
                        x /= 10
                        count += 1
                    } while x > 0
                    while count > 0 {
                        count -= 1
                        raw[i] = d[count]
                        i += 1
                    }
                }
            }
            decimal(v >> 24)
            for shift in [16, 8, 0] as [UInt32] {
                raw[i] = UInt8(ascii: ".")
                i += 1
                decimal((v >> shift) & 0xff)
            }
            if let port {
                raw[i] = UInt8(ascii: ":")
                i += 1
                decimal(UInt32(port))
            }
        }
        return .packed(UInt64(bigEndian: words.0), UInt64(bigEndian: words.1), UInt64(bigEndian: words.2))
    }

    static func < (a: TextOrder, b: TextOrder) -> Bool {
        switch (a, b) {
        case let (.packed(a0, a1, a2), .packed(b0, b1, b2)): return (a0, a1, a2) < (b0, b1, b2)
        case let (.text(x), .text(y)): return x < y
        case (.packed, .text): return true
        case (.text, .packed): return false
        }
    }
}
