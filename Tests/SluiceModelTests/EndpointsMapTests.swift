import Testing
@testable import SluiceModel

/// `EndpointsMap`'s merge against the one it replaced (a dictionary per slice port, each
/// slice's endpoints visited sorted by address), on random slices full of duplicates.
@Suite struct EndpointsMapTests {
    /// The merge as it was written before candidates were sorted once per port.
    static func reference(_ slices: [ValidatedEndpointSlice], family: IPFamily, nodeName: String) -> [EndpointsMap.PortKey: [Endpoint]] {
        struct ID: Hashable { var ip: IPAddress; var port: UInt16 }
        var sets: [EndpointsMap.PortKey: [ID: (text: TextOrder, endpoint: Endpoint)]] = [:]
        for slice in slices.filter({ $0.family == family }).sorted(by: { $0.sliceName < $1.sliceName }) {
            let byAddress = slice.endpoints.map { (TextOrder($0.address, port: nil), $0) }.sorted { $0.0 < $1.0 }.map(\.1)
            for port in slice.ports {
                let key = EndpointsMap.PortKey(name: port.name, proto: port.proto)
                var set = sets[key] ?? [:]
                for e in byAddress {
                    let isLocal = !nodeName.isEmpty && e.nodeName == nodeName
                    let id = ID(ip: e.address, port: port.port)
                    guard set[id] == nil || isLocal else { continue }
                    set[id] = (TextOrder(e.address, port: port.port),
                               Endpoint(ip: e.address, port: port.port, ready: e.ready, serving: e.serving,
                                        terminating: e.terminating, isLocal: isLocal, nodeName: e.nodeName, zone: e.zone,
                                        zoneHints: e.zoneHints, nodeHints: e.nodeHints, weight: slice.weight))
                }
                sets[key] = set
            }
        }
        return sets.compactMapValues { set in set.isEmpty ? nil : set.values.sorted { $0.text < $1.text }.map(\.endpoint) }
    }

    /// SplitMix64, so a failure replays.
    struct Random {
        var state: UInt64
        mutating func int(_ n: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(n))
        }
        mutating func pick<T>(_ items: [T]) -> T { items[int(items.count)] }
    }

    static func randomSlice(_ name: String, family: IPFamily, _ r: inout Random) -> ValidatedEndpointSlice {
        let addresses = family == .ipv4 ? ["10.0.0.1", "10.0.0.10", "10.0.0.2", "9.0.0.1"] : ["fd00::1", "fd00::10", "fd00::2"]
        let ports: [ValidatedEndpointSlice.Port] = [
            .init(name: "http", proto: .tcp, port: 8080), .init(name: "http", proto: .tcp, port: 8081),
            .init(name: "dns", proto: .udp, port: 53), .init(name: "", proto: .tcp, port: 80),
        ]
        let endpoints = (0..<r.int(7)).map { _ in
            ValidatedEndpointSlice.Endpoint(address: IPAddress(r.pick(addresses))!, ready: r.int(4) > 0, serving: r.int(2) == 0,
                                            terminating: r.int(3) == 0, nodeName: r.pick([nil, "node-a", "node-b"]),
                                            zone: r.pick([nil, "z1"]), zoneHints: r.int(3) == 0 ? ["z1"] : [])
        }
        return ValidatedEndpointSlice(sliceName: name, service: ServiceName(namespace: "ns", name: "web"), family: family,
                                      ports: (0..<r.int(4)).map { _ in r.pick(ports) }, endpoints: endpoints,
                                      weight: UInt32(r.int(4)))
    }

    @Test("the same endpoints and picks as the per-port dictionaries", arguments: [IPFamily.ipv4, .ipv6])
    func sameAsReference(family: IPFamily) {
        var r = Random(state: family == .ipv4 ? 4 : 6)
        for _ in 0..<2000 {
            let names = ["web-c", "web-a", "web-b"].prefix(1 + r.int(3))
            var slices = names.map { Self.randomSlice($0, family: family, &r) }
            if r.int(4) == 0 { slices.append(Self.randomSlice("web-x", family: family == .ipv4 ? .ipv6 : .ipv4, &r)) }
            let nodeName = r.pick(["", "node-a"])
            let merged = EndpointsMap(slices: slices, family: family, nodeName: nodeName).endpointsByPort
            #expect(merged == Self.reference(slices, family: family, nodeName: nodeName))
        }
    }

    @Test("a category every endpoint is in shares the merged list (no copy)")
    func categoryOfEveryEndpointSharesTheList() {
        let endpoints = [Endpoint(ip: ip("10.0.0.1"), port: 80), Endpoint(ip: ip("10.0.0.2"), port: 80)]
        let c = CategorizedEndpoints(endpoints: endpoints, usesClusterEndpoints: true, usesLocalEndpoints: false,
                                     nodeName: "node-a", zone: nil)
        #expect(c.clusterEndpoints == endpoints)
        #expect(c.clusterEndpoints.withUnsafeBufferPointer { $0.baseAddress } == endpoints.withUnsafeBufferPointer { $0.baseAddress })
        let some = CategorizedEndpoints.kept(endpoints) { $0.ip == ip("10.0.0.2") }
        #expect(some == [endpoints[1]])
    }
}
