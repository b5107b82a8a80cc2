import SluiceIR
import SluiceModel

/// Identifies one set or map of the layout, including the per-class ones.
public enum SetID: Sendable, Hashable, Comparable {
    /// A fixed set, by name (`cluster-ips`, `hairpin`, …).
    case fixed(String)
    /// A slot map: `endpoints-T`, `nodeport-endpoints-T`, `endpoints-source-hash-T`, …
    case endpoints(Layout.EndpointMapKind, LoadBalancing, slots: UInt32)
    /// `affinity-<seconds>`.
    case affinityPorts(UInt32)
    /// `affinity-nodeports-<seconds>`.
    case affinityNodePorts(UInt32)

    public var name: String {
        switch self {
        case .fixed(let n): return n
        case .endpoints(let kind, let mode, let t): return Layout.endpointMap(kind, mode, slots: t)
        case .affinityPorts(let x): return Layout.affinityPorts(x)
        case .affinityNodePorts(let x): return Layout.affinityNodePortsClass(x)
        }
    }

    public static func < (a: SetID, b: SetID) -> Bool {
        switch (a, b) {
        case let (.endpoints(k1, m1, t1), .endpoints(k2, m2, t2)): return (k1, m1.order, t1) < (k2, m2.order, t2)
        case let (.affinityPorts(x), .affinityPorts(y)): return x < y
        case let (.affinityNodePorts(x), .affinityNodePorts(y)): return x < y
        case let (.fixed(x), .fixed(y)): return x < y
        default: return a.rank < b.rank
        }
    }

    private var rank: Int {
        switch self {
        case .fixed: 0
        case .affinityPorts: 1
        case .affinityNodePorts: 2
        case .endpoints: 3
        }
    }

    /// Hashes a fixed set's name by its UTF-8 bytes (set names are ASCII), skipping
    /// `String`'s Unicode normalization: an update looks set IDs up for every element.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(rank)
        switch self {
        case .fixed(let name):
            var n = name
            n.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        case .endpoints(let kind, let mode, let slots):
            hasher.combine(kind)
            hasher.combine(mode)
            hasher.combine(slots)
        case .affinityPorts(let x), .affinityNodePorts(let x):
            hasher.combine(x)
        }
    }
}

extension LoadBalancing {
    /// Declaration order: random, source-hash, consistent-hash.
    var order: Int { Self.allCases.firstIndex(of: self)! }
}

/// The elements one service port contributes to the layout's sets and maps. Compiling a
/// service port depends only on that service port and the node context, so an update to
/// one service recompiles one fragment.
public struct ServiceFragment: Sendable, Hashable {
    public var name: ServicePortName
    /// Elements per set: key → data (empty data for plain sets).
    public var elements: [SetID: [[Datum]: [Datum]]] = [:]

    public init(name: ServicePortName) { self.name = name }

    /// Room for `n` more elements of `set` (avoids regrowing a small dictionary 1→2→4→8→16).
    mutating func reserve(_ set: SetID, _ n: Int) {
        elements[set, default: [:]].reserveCapacity((elements[set]?.count ?? 0) + n)
    }

    /// Total element count.
    public var elementCount: Int { elements.values.reduce(0) { $0 + $1.count } }

    /// Removes from both fragments the elements they share (same set, key and data): what
    /// is left of `old` leaves the table, what is left of `new` enters it.
    static func dropCommon(_ old: inout ServiceFragment, _ new: inout ServiceFragment) {
        for set in Array(old.elements.keys) {
            guard var n = new.elements[set], var o = old.elements.removeValue(forKey: set) else { continue }
            new.elements[set] = nil
            // Collected first: removing while iterating `o` would copy it.
            var shared: [[Datum]] = []
            for (key, data) in o where n[key] == data { shared.append(key) }
            for key in shared {
                o[key] = nil
                n[key] = nil
            }
            if !o.isEmpty { old.elements[set] = o }
            if !n.isEmpty { new.elements[set] = n }
        }
    }
}

extension IPAddress {
    /// The IR datum for this address.
    public var datum: Datum {
        switch self {
        case .v4(let v): return .ipv4(v)
        case .v6(let hi, let lo): return .ipv6(hi, lo)
        }
    }
}

extension CIDR {
    /// The IR prefix datum for this CIDR; a host prefix (`/32`, `/128`) is the plain address,
    /// which is how the kernel's `[x, x]` interval reads back.
    public var datum: Datum {
        if Int(prefixLength) == (family == .ipv4 ? 32 : 128) { return address.datum }
        switch address {
        case .v4(let v): return .prefix4(v, prefixLength)
        case .v6(let hi, let lo): return .prefix6(hi, lo, prefixLength)
        }
    }
}


/// Compiles one service port into its fragment.
///
/// Mirrors kube-proxy's per-service decisions (reference §1.6–1.8): which endpoints each
/// traffic kind reaches, when traffic is masqueraded, when it is rejected or dropped, and
/// which LoadBalancer sources are allowed.
public func compileFragment(_ sp: ServicePortPlan, context: FamilyContext) -> ServiceFragment {
    var f = ServiceFragment(name: sp.name)
    compileFragment(sp, context: context, into: &f)
    return f
}

/// What `compileFragment` hands every element of a service port to: a `ServiceFragment`
/// (IR keys, for the batch compiler and loads) or a `PackedFragmentDiff` (packed keys, for
/// the incremental compiler's updates). An element added twice to one set keeps the data of
/// the later add.
protocol FragmentSink {
    /// Room for `n` more elements of `set`.
    mutating func reserve(_ set: SetID, _ n: Int)
    /// One element: `key : data` (no data in a plain set).
    mutating func add(_ set: SetID, _ key: DatumList, _ data: DatumList)
}

extension FragmentSink {
    mutating func add(_ set: SetID, _ key: DatumList) { add(set, key, DatumList()) }
}

extension ServiceFragment: FragmentSink {
    mutating func add(_ set: SetID, _ key: DatumList, _ data: DatumList) {
        elements[set, default: [:]][key.array] = data.array
    }
}

/// Compiles one service port into `f` (see `compileFragment(_:context:)`).
func compileFragment<Sink: FragmentSink>(_ sp: ServicePortPlan, context: FamilyContext, into f: inout Sink) {
    let proto = Datum.proto(sp.name.proto.number)
    let port = Datum.port(sp.port)
    let cluster = SlotAllocation(sp.clusterEndpoints)
    let local = SlotAllocation(sp.localEndpoints)
    let internalGroup = sp.internalPolicyLocal ? local : cluster
    let external = sp.externalPolicyLocal ? local : cluster

    let mode = sp.loadBalancing
    func addSlots(_ kind: Layout.EndpointMapKind, _ key: DatumList, _ alloc: SlotAllocation) {
        f.reserve(.fixed(Layout.hairpin), alloc.slots.count)
        for s in alloc.slots { f.add(.fixed(Layout.hairpin), DatumList(s.endpoint.ip.datum, s.endpoint.ip.datum)) }
        if mode == .consistentHash {
            let table = MaglevTable(alloc)
            let set = SetID.endpoints(kind, mode, slots: table.size)
            f.reserve(set, table.entries.count)
            for (slot, i) in table.entries.enumerated() {
                let e = alloc.slots[i].endpoint
                f.add(set, key.appending(.integer(UInt32(slot))), DatumList(e.ip.datum, .port(e.port)))
            }
            return
        }
        let set = SetID.endpoints(kind, mode, slots: alloc.total)
        f.reserve(set, Int(alloc.total))
        var slot: UInt32 = 0
        for s in alloc.slots {
            let data = DatumList(s.endpoint.ip.datum, .port(s.endpoint.port))
            for _ in 0..<s.count {
                f.add(set, key.appending(.integer(slot)), data)
                slot += 1
            }
        }
    }

    // ClusterIP.
    let clusterTuple = DatumList(sp.clusterIP.datum, proto, port)
    f.add(.fixed(Layout.clusterIPs), DatumList(sp.clusterIP.datum))
    if let internalGroup {
        addSlots(.service, clusterTuple, internalGroup)
        f.add(.fixed(Layout.clusterIPPorts), clusterTuple)
        if let x = sp.affinityTimeoutSeconds { f.add(.affinityPorts(x), clusterTuple) }
    } else {
        // Local policy: endpoints exist, just none here (or none with weight) → drop.
        let drop = sp.internalPolicyLocal && sp.hasAnyEndpoints
        f.add(.fixed(drop ? Layout.noEndpointDrop : Layout.noEndpointReject), clusterTuple)
    }

    // External IPs and LoadBalancer IPs.
    let externalAddresses = sp.externalIPs + sp.loadBalancerIPs
    // eTP=Local drops (rather than rejects) only when endpoints exist elsewhere.
    let externalDrop = sp.externalPolicyLocal && sp.hasAnyEndpoints
    // External traffic is DNATed by some path (policy endpoints, or the eTP=Local shortcut).
    let reachable = external != nil || (sp.externalPolicyLocal && cluster != nil)
    for address in externalAddresses {
        let tuple = DatumList(address.datum, proto, port)
        if sp.externalPolicyLocal, let cluster {
            f.add(.fixed(Layout.externalLocalPorts), tuple)
            addSlots(.serviceShortcut, tuple, cluster)
        }
        if let external {
            addSlots(.service, tuple, external)
            if !sp.externalPolicyLocal { f.add(.fixed(Layout.externalPorts), tuple) }
        } else {
            f.add(.fixed(externalDrop ? Layout.noEndpointDrop : Layout.noEndpointReject), tuple)
        }
        if reachable, let x = sp.affinityTimeoutSeconds { f.add(.affinityPorts(x), tuple) }
    }

    // loadBalancerSourceRanges: only LoadBalancer VIPs, checked before DNAT.
    if !sp.loadBalancerIPs.isEmpty && !sp.loadBalancerSourceRanges.isEmpty {
        let nodeInRange = context.nodeIPs.contains { ip in sp.loadBalancerSourceRanges.contains { $0.contains(ip) } }
        for vip in sp.loadBalancerIPs {
            let tuple = DatumList(vip.datum, proto, port)
            f.add(.fixed(Layout.firewallIPs), tuple)
            for range in sp.loadBalancerSourceRanges { f.add(.fixed(Layout.firewallAllow), tuple.appending(range.datum)) }
            // A node inside the ranges reaches its own VIPs with a VIP as source (kube-proxy
            // then allows every LB VIP of the service).
            if nodeInRange {
                for source in sp.loadBalancerIPs { f.add(.fixed(Layout.firewallAllow), tuple.appending(source.datum)) }
            }
        }
    }

    // NodePort.
    if let nodePort = sp.nodePort {
        let tuple = DatumList(proto, Datum.port(nodePort))
        if sp.externalPolicyLocal, let cluster {
            f.add(.fixed(Layout.nodePortsLocal), tuple)
            addSlots(.nodePortShortcut, tuple, cluster)
        }
        if let external {
            addSlots(.nodePort, tuple, external)
            if !sp.externalPolicyLocal { f.add(.fixed(Layout.nodePorts), tuple) }
        } else {
            f.add(.fixed(externalDrop ? Layout.noEndpointNodePortsDrop : Layout.noEndpointNodePortsReject), tuple)
        }
        if reachable, let x = sp.affinityTimeoutSeconds { f.add(.affinityNodePorts(x), tuple) }
    }
}
