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
    ///
    /// Per slice port, every endpoint is a candidate keyed by its `ip:port` text (computed
    /// once, `TextOrder`); the candidates are sorted by that key, visiting order breaking
    /// ties, and each run of one `ip:port` keeps kube-proxy's pick (`MergeCandidate.merged`).
    /// Candidates for one `ip:port` within a slice share their address, so visiting a
    /// slice's endpoints sorted by address (as kube-proxy does, stably) or as given picks
    /// the same: visiting order is slices by name, then ports, then endpoints as given.
    /// No dictionary per port and no endpoint built for a candidate that loses.
    public init(slices: [ValidatedEndpointSlice], family: IPFamily, nodeName: String) {
        // Usually one slice, of this family: then the list is used as it is (no copy).
        var visited = slices.allSatisfy { $0.family == family } ? slices : slices.filter { $0.family == family }
        if visited.count > 1 { visited.sort { $0.sliceName < $1.sliceName } }
        var groups: [(key: PortKey, candidates: [MergeCandidate])] = []
        for s in visited.indices where !visited[s].endpoints.isEmpty {
            for port in visited[s].ports {
                let key = PortKey(name: port.name, proto: port.proto)
                let i = groups.firstIndex { $0.key == key } ?? groups.endIndex
                if i == groups.endIndex { groups.append((key, [])) }
                MergeCandidate.append(visited[s], index: s, port: port.port, nodeName: nodeName, to: &groups[i].candidates)
            }
        }
        var byPort: [PortKey: [Endpoint]] = [:]
        byPort.reserveCapacity(groups.count)
        for (key, candidates) in groups { byPort[key] = MergeCandidate.merged(candidates, slices: visited) }
        endpointsByPort = byPort
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

/// One endpoint of one slice port, a candidate for its `ip:port` in `EndpointsMap`; the
/// endpoint itself is built only for the candidate picked.
struct MergeCandidate {
    var text: TextOrder
    /// Visiting order (slices by name, then ports, then endpoints as given).
    var order: Int
    var slice: Int
    var endpoint: Int
    var port: UInt16
    var isLocal: Bool

    /// Appends the candidates of `slice` (the `index`th visited) for one of its ports.
    static func append(_ slice: ValidatedEndpointSlice, index: Int, port: UInt16, nodeName: String,
                       to out: inout [MergeCandidate]) {
        if out.isEmpty { out.reserveCapacity(slice.endpoints.count) }
        for i in slice.endpoints.indices {
            let isLocal = !nodeName.isEmpty && slice.endpoints[i].nodeName == nodeName
            out.append(MergeCandidate(text: TextOrder(slice.endpoints[i].address, port: port), order: out.count,
                                      slice: index, endpoint: i, port: port, isLocal: isLocal))
        }
    }

    /// One endpoint per `ip:port`, sorted by its text: of the candidates for one `ip:port`
    /// the last local one, else the first (kube-proxy keeps an existing entry unless the
    /// new one is local).
    static func merged(_ candidates: [MergeCandidate], slices: [ValidatedEndpointSlice]) -> [Endpoint] {
        let sorted = candidates.sorted { $0.text != $1.text ? $0.text < $1.text : $0.order < $1.order }
        var picks: [Int] = []
        picks.reserveCapacity(sorted.count)
        var i = 0
        while i < sorted.count {
            var pick = i
            i += 1
            while i < sorted.count && sorted[i].text == sorted[pick].text {
                if sorted[i].isLocal { pick = i }
                i += 1
            }
            picks.append(pick)
        }
        return picks.map { sorted[$0].endpoint(in: slices) }
    }

    /// The merged endpoint (read in place: neither the slice nor its endpoint is copied).
    func endpoint(in slices: [ValidatedEndpointSlice]) -> Endpoint {
        slices[slice].endpoints[endpoint].merged(port: port, isLocal: isLocal, weight: slices[slice].weight)
    }
}

extension ValidatedEndpointSlice.Endpoint {
    /// This endpoint on one slice port, as `EndpointsMap` lists it.
    func merged(port: UInt16, isLocal: Bool, weight: UInt32) -> Endpoint {
        Endpoint(ip: address, port: port, ready: ready, serving: serving, terminating: terminating, isLocal: isLocal,
                 nodeName: nodeName, zone: zone, zoneHints: zoneHints, nodeHints: nodeHints, weight: weight)
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
        var text = PackedText()
        text.appendDecimal(v >> 24)
        text.append(UInt8(ascii: "."))
        text.appendDecimal((v >> 16) & 0xff)
        text.append(UInt8(ascii: "."))
        text.appendDecimal((v >> 8) & 0xff)
        text.append(UInt8(ascii: "."))
        text.appendDecimal(v & 0xff)
        if let port {
            text.append(UInt8(ascii: ":"))
            text.appendDecimal(UInt32(port))
        }
        return .packed(text.words.0, text.words.1, text.words.2)
    }

    /// Up to 24 ASCII bytes as three big-endian words, zero-padded (runs once per endpoint
    /// and port: no buffer, no closure).
    private struct PackedText {
        var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var count = 0

        mutating func append(_ byte: UInt8) {
            let shift = UInt64(56 - 8 * (count & 7))
            switch count >> 3 {
            case 0: words.0 |= UInt64(byte) << shift
            case 1: words.1 |= UInt64(byte) << shift
            default: words.2 |= UInt64(byte) << shift
            }
            count += 1
        }

        /// `n` (< 100 000) in decimal, no leading zeros.
        mutating func appendDecimal(_ n: UInt32) {
            if n >= 10_000 { appendDigit(n / 10_000) }
            if n >= 1_000 { appendDigit(n / 1_000 % 10) }
            if n >= 100 { appendDigit(n / 100 % 10) }
            if n >= 10 { appendDigit(n / 10 % 10) }
            appendDigit(n % 10)
        }

        private mutating func appendDigit(_ d: UInt32) { append(UInt8(ascii: "0") + UInt8(d)) }
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
