/// An IP and port.
public struct EndpointAddress: Sendable, Hashable {
    public var ip: IPAddress
    public var port: UInt16

    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }
}

/// What the conntrack cleanup of one UDP service port needs.
public struct ConntrackTarget: Sendable, Hashable {
    public var family: IPFamily
    /// Service addresses (ClusterIP, external IPs, LB IPs) with the service port.
    public var frontends: Set<EndpointAddress>
    public var nodePorts: Set<UInt16>
    /// Endpoints in use now.
    public var endpoints: Set<EndpointAddress>
    public var hasEndpoints: Bool

    /// True when a flow to this service is stale: DNATed to an endpoint no longer in use,
    /// or not DNATed (made while the service had no endpoints) now that it has some.
    public func isStale(origDst: EndpointAddress, replySrc: EndpointAddress, dnated: Bool) -> Bool {
        guard frontends.contains(origDst) || (dnated && nodePorts.contains(origDst.port)) else { return false }
        return dnated ? !endpoints.contains(replySrc) : hasEndpoints
    }

    /// UDP service ports of one service whose endpoint set changed (or that went away).
    static func targets(old: ServicePlans, new: ServicePlans) -> [ConntrackTarget] {
        // Most services have no UDP port: nothing to look at (nor a set to build).
        guard hasUDP(old) || hasUDP(new) else { return [] }
        var out: [ConntrackTarget] = []
        for family in Set(old.families).union(new.families) {
            let newByName = Dictionary((new[family] ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for o in old[family] ?? [] where o.name.proto == .udp {
                let n = newByName[o.name]
                let endpoints = Set(((n?.clusterEndpoints ?? []) + (n?.localEndpoints ?? [])).map { EndpointAddress(ip: $0.ip, port: $0.port) })
                let before = Set((o.clusterEndpoints + o.localEndpoints).map { EndpointAddress(ip: $0.ip, port: $0.port) })
                let gainedFirst = before.isEmpty && !endpoints.isEmpty
                guard !before.subtracting(endpoints).isEmpty || gainedFirst else { continue }
                var frontends = ([o.clusterIP] + o.externalIPs + o.loadBalancerIPs).map { EndpointAddress(ip: $0, port: o.port) }
                if let n { frontends += ([n.clusterIP] + n.externalIPs + n.loadBalancerIPs).map { EndpointAddress(ip: $0, port: n.port) } }
                out.append(ConntrackTarget(family: family, frontends: Set(frontends), nodePorts: Set([o.nodePort, n?.nodePort].compactMap { $0 }),
                                           endpoints: endpoints, hasEndpoints: !endpoints.isEmpty))
            }
            // A UDP port that is new in this plan and has endpoints: entries made while it
            // had none (not DNATed) must go too.
            let oldNames = Set((old[family] ?? []).map(\.name))
            for n in new[family] ?? [] where n.name.proto == .udp && !oldNames.contains(n.name) && !(n.clusterEndpoints + n.localEndpoints).isEmpty {
                let endpoints = Set((n.clusterEndpoints + n.localEndpoints).map { EndpointAddress(ip: $0.ip, port: $0.port) })
                out.append(ConntrackTarget(family: family, frontends: Set(([n.clusterIP] + n.externalIPs + n.loadBalancerIPs).map { EndpointAddress(ip: $0, port: n.port) }),
                                           nodePorts: Set([n.nodePort].compactMap { $0 }), endpoints: endpoints, hasEndpoints: true))
            }
        }
        return out
    }

    private static func hasUDP(_ plans: ServicePlans) -> Bool {
        plans.all.contains { $0.name.proto == .udp }
    }
}
