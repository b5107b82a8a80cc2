/// The node-level facts planning needs, resolved once from NodeOptions, this node's Node
/// object and the ServiceCIDRs: node name, zone, and one `FamilyContext` per IP family the
/// node serves. A daemon re-resolves it only when options, its Node or ServiceCIDRs change.
public struct NodeContext: Sendable, Hashable {
    public var nodeName: String
    /// Node label `topology.kubernetes.io/zone`.
    public var zone: String?
    /// One per family planned, IPv4 first.
    public var families: [FamilyContext]
    /// Every ServiceCIDR (all families), for Service validation.
    public var serviceCIDRs: [CIDR]
    public var nodePortRange: PortRange

    public init(nodeName: String, zone: String? = nil, families: [FamilyContext], serviceCIDRs: [CIDR] = [],
                nodePortRange: PortRange = .defaultNodePortRange) {
        self.nodeName = nodeName
        self.zone = zone
        self.families = families.sorted { $0.family < $1.family }
        self.serviceCIDRs = serviceCIDRs
        self.nodePortRange = nodePortRange
    }

    public func context(for family: IPFamily) -> FamilyContext? { families.first { $0.family == family } }

    /// True when `other` is this context with other NodePort addresses only, each family's
    /// a list of IPs before and after (not `all`, which changes rules): then no plan and no
    /// rule changes, only the elements of the `nodeport-ips` set.
    public func differsOnlyInNodePortAddresses(from other: NodeContext) -> Bool {
        guard families.count == other.families.count else { return false }
        var mine = self, theirs = other
        for i in families.indices {
            guard case .ips = families[i].nodePortAddresses, case .ips = other.families[i].nodePortAddresses else { return false }
            mine.families[i].nodePortAddresses = .ips([])
            theirs.families[i].nodePortAddresses = .ips([])
        }
        return mine == theirs
    }

    /// Resolves the context.
    ///
    /// - `node`: this node's Node object, if known (addresses, podCIDRs, zone label).
    /// - `serviceFamilies`: families of the services' ClusterIPs.
    /// - `hostAddresses`: the host's interface addresses, used to expand CIDR entries of
    ///   `nodePortAddresses`; when nil, the Node's addresses and `--node-ip` are used.
    ///
    /// A family is planned when anything names it (node IPs, cluster CIDR, pod CIDRs,
    /// ServiceCIDRs, services); IPv4 when nothing does.
    public static func resolve(options: NodeOptions, node: Node?, serviceCIDRs: [CIDR],
                               serviceFamilies: Set<IPFamily> = [], hostAddresses: [IPAddress]? = nil)
        -> (NodeContext, [Diagnostic]) {
        var resolver = NodeContextResolver(options: options, node: node, hostAddresses: hostAddresses)
        var families = serviceFamilies.union(resolver.evidencedFamilies).union(serviceCIDRs.map(\.family))
        if families.isEmpty { families = [.ipv4] }
        let contexts = families.sorted().map { resolver.familyContext($0, serviceCIDRs: serviceCIDRs) }
        let context = NodeContext(nodeName: options.nodeName, zone: node?.zone, families: contexts,
                                  serviceCIDRs: serviceCIDRs, nodePortRange: options.nodePortRange)
        return (context, resolver.diagnostics)
    }
}

/// Reads the Node object and options into per-family values.
struct NodeContextResolver {
    let options: NodeOptions
    let node: Node?
    let hostAddresses: [IPAddress]?
    /// `status.addresses` InternalIPs then ExternalIPs (kube-proxy's `GetNodeHostIPs` order).
    let nodeAddresses: [IPAddress]
    let podCIDRs: [CIDR]
    var diagnostics: [Diagnostic] = []

    init(options: NodeOptions, node: Node?, hostAddresses: [IPAddress]?) {
        self.options = options
        self.node = node
        self.hostAddresses = hostAddresses
        var diagnostics: [Diagnostic] = []
        let ctx = DiagnosticContext(file: nil, kind: "Node", namespace: nil, name: node?.metadata.name)
        var internalIPs: [IPAddress] = [], externalIPs: [IPAddress] = []
        for (i, a) in (node?.status.addresses ?? []).enumerated() where a.type == "InternalIP" || a.type == "ExternalIP" {
            guard let ip = a.address.flatMap(IPAddress.init) else {
                diagnostics.append(ctx.warning("status.addresses[\(i)].address", "\"\(a.address ?? "")\" is not a valid IP address; ignored"))
                continue
            }
            if a.type == "InternalIP" { internalIPs.append(ip) } else { externalIPs.append(ip) }
        }
        nodeAddresses = internalIPs + externalIPs
        var cidrs: [CIDR] = []
        for (i, text) in (node?.podCIDRStrings ?? []).enumerated() {
            guard text.contains("/"), let cidr = CIDR(text) else {
                diagnostics.append(ctx.warning("spec.podCIDRs[\(i)]", "\"\(text)\" is not a valid CIDR; ignored"))
                continue
            }
            cidrs.append(cidr)
        }
        podCIDRs = cidrs
        self.diagnostics = diagnostics
    }

    var evidencedFamilies: Set<IPFamily> {
        var f = Set(options.nodeIPs.map(\.family))
        f.formUnion(options.clusterCIDRs.map(\.family))
        f.formUnion(nodeAddresses.map(\.family))
        f.formUnion(podCIDRs.map(\.family))
        if let b = options.bindAddress, !b.isUnspecified { f.insert(b.family) }
        return f
    }

    /// The node's primary IPs of a family: `--node-ip`, else a specific `--bind-address`,
    /// else the Node's first InternalIP/ExternalIP of that family.
    func primaryIPs(_ family: IPFamily) -> [IPAddress] {
        let flagged = options.nodeIPs.filter { $0.family == family }
        if !flagged.isEmpty { return flagged }
        if let b = options.bindAddress, !b.isUnspecified, b.family == family { return [b] }
        return nodeAddresses.first { $0.family == family }.map { [$0] } ?? []
    }

    mutating func familyContext(_ family: IPFamily, serviceCIDRs: [CIDR]) -> FamilyContext {
        let primary = primaryIPs(family)
        return FamilyContext(family: family, nodeName: options.nodeName,
                             localDetector: localDetector(family),
                             nodePortAddresses: nodePortAddresses(family, primary: primary),
                             nodeIPs: primary, masqueradeAll: options.masqueradeAll,
                             masqueradeBit: options.masqueradeBit,
                             serviceCIDRs: serviceCIDRs.filter { $0.family == family }.sorted(),
                             trafficCounters: options.trafficCounters)
    }

    mutating func localDetector(_ family: IPFamily) -> LocalTrafficDetector {
        switch options.detectLocalMode {
        case .clusterCIDR:
            return options.clusterCIDR(for: family).map { .cidrs([$0]) } ?? .none
        case .nodeCIDR:
            if let cidr = podCIDRs.first(where: { $0.family == family }) { return .cidrs([cidr]) }
            diagnostics.append(Diagnostic(severity: .warning, kind: "Node", name: node?.metadata.name ?? options.nodeName,
                                          field: "spec.podCIDRs",
                                          message: "no \(family.rawValue) pod CIDR for detect-local-mode NodeCIDR; no local traffic detector"))
            return .none
        case .bridgeInterface:
            return options.podBridgeInterface.map { .bridgeInterface($0) } ?? .none
        case .interfaceNamePrefix:
            return options.podInterfaceNamePrefix.map { .interfaceNamePrefix($0) } ?? .none
        }
    }

    func nodePortAddresses(_ family: IPFamily, primary: [IPAddress]) -> NodePortAddresses {
        let selectors = options.effectiveNodePortAddresses
        var ips: [IPAddress] = []
        let candidates = (hostAddresses ?? (options.nodeIPs + nodeAddresses)).filter { $0.family == family && !$0.isLoopback }
        for selector in selectors {
            switch selector {
            case .all:
                return .all
            case .cidr(let cidr) where cidr.family == family:
                if cidr.isMatchAll { return .all }
                ips += candidates.filter { cidr.contains($0) }
            case .primary:
                ips += primary
            case .cidr, .localhost:
                continue
            }
        }
        var seen = Set<IPAddress>()
        return .ips(ips.filter { seen.insert($0).inserted }.sorted())
    }
}
