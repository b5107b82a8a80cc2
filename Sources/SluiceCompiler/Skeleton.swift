import SluiceIR
import SluiceModel

/// Builds the fixed part of a family's table: set declarations, chains and rules.
///
/// Inputs are the node context and the feature classes in use (which slot maps and
/// affinity classes have elements). Nothing here depends on how many services or
/// endpoints exist.
public struct Skeleton: Sendable {
    public let layout: Layout
    public let context: FamilyContext
    /// Slot maps in use.
    public let endpointMaps: [(kind: Layout.EndpointMapKind, mode: LoadBalancing, slots: UInt32)]
    /// Affinity timeouts in use (service tuples / NodePorts).
    public let affinityTimeouts: [UInt32]
    public let nodePortAffinityTimeouts: [UInt32]

    public init(context: FamilyContext, classes: Set<SetID>) {
        self.context = context
        self.layout = Layout(context.family)
        var maps: [(Layout.EndpointMapKind, LoadBalancing, UInt32)] = []
        var aff: [UInt32] = [], npAff: [UInt32] = []
        for id in classes {
            switch id {
            case .endpoints(let k, let m, let t): maps.append((k, m, t))
            case .affinityPorts(let x): aff.append(x)
            case .affinityNodePorts(let x): npAff.append(x)
            case .fixed: break
            }
        }
        endpointMaps = maps.sorted { ($0.0, $0.1.order, $0.2) < ($1.0, $1.1.order, $1.2) }.map { (kind: $0.0, mode: $0.1, slots: $0.2) }
        affinityTimeouts = aff.sorted()
        nodePortAffinityTimeouts = npAff.sorted()
    }

    var mark: UInt32 { context.masqueradeMark }
    var markSet: Statement { .setMark(.or(mark)) }
    var matchAllNodePorts: Bool { context.nodePortAddresses == .all }
    var protoTypes: [L4Protocol] { L4Protocol.allCases }

    // MARK: Sets

    /// Every set and map declaration, fixed ones first, then per-class ones.
    public var sets: [SetDecl] {
        let l = layout
        let tuple = l.tuple.components
        let np = l.nodePortTuple.components
        var s: [SetDecl] = [
            SetDecl(name: Layout.natProtos, key: [l.l4proto], comment: "proxied protocols"),
            SetDecl(name: Layout.clusterIPs, key: [l.daddr], comment: "Active ClusterIPs"),
            SetDecl(name: Layout.serviceCIDRs, key: [l.daddr], flags: .interval, comment: "ServiceCIDRs"),
        ]
        if !matchAllNodePorts {
            s.append(SetDecl(name: Layout.nodePortIPs, key: [l.daddr], comment: "IPs that accept NodePort traffic"))
        }
        s += [
            SetDecl(name: Layout.firewallIPs, key: tuple, comment: "LB IP ports with loadBalancerSourceRanges"),
            SetDecl(name: Layout.firewallAllow, key: tuple + [l.saddr], flags: .interval, comment: "allowed sources per LB IP port"),
            SetDecl(name: Layout.clusterIPPorts, key: tuple, comment: "ClusterIP ports with endpoints"),
            SetDecl(name: Layout.externalPorts, key: tuple, comment: "external IP ports, eTP Cluster"),
            SetDecl(name: Layout.externalLocalPorts, key: tuple, comment: "external IP ports, eTP Local"),
            SetDecl(name: Layout.nodePorts, key: np, comment: "NodePorts, eTP Cluster"),
            SetDecl(name: Layout.nodePortsLocal, key: np, comment: "NodePorts, eTP Local"),
            SetDecl(name: Layout.noEndpointReject, key: tuple, comment: "no endpoints: reject"),
            SetDecl(name: Layout.noEndpointDrop, key: tuple, comment: "no local endpoints: drop"),
            SetDecl(name: Layout.noEndpointNodePortsReject, key: np, comment: "NodePorts without endpoints: reject"),
            SetDecl(name: Layout.noEndpointNodePortsDrop, key: np, comment: "NodePorts without local endpoints: drop"),
            SetDecl(name: Layout.hairpin, key: [l.saddr, l.daddr], comment: "hairpin: endpoint reaching itself"),
            SetDecl(name: Layout.affinity, key: [l.saddr] + tuple, data: l.endpointData, flags: [.dynamic, .timeout],
                    timeoutSeconds: 10800, size: 1_048_576, comment: "ClientIP affinity to service ports"),
            SetDecl(name: Layout.affinityNodePorts, key: [l.saddr] + np, data: l.endpointData, flags: [.dynamic, .timeout],
                    timeoutSeconds: 10800, size: 1_048_576, comment: "ClientIP affinity to NodePorts"),
        ]
        if context.connectionCounters {
            s += [l.connectionCounters(Layout.serviceConnections), l.connectionCounters(Layout.endpointConnections)]
        }
        if context.trafficCounters { s.append(l.trafficCounters) }
        for x in affinityTimeouts {
            s.append(SetDecl(name: Layout.affinityPorts(x), key: tuple, comment: "ClientIP affinity \(x)s"))
        }
        for x in nodePortAffinityTimeouts {
            s.append(SetDecl(name: Layout.affinityNodePortsClass(x), key: np, comment: "ClientIP affinity \(x)s"))
        }
        for m in endpointMaps {
            s.append(SetDecl(name: Layout.endpointMap(m.kind, m.mode, slots: m.slots), key: l.endpointMapKey(m.kind, m.mode, slots: m.slots),
                             data: l.endpointData, comment: m.mode == .random ? m.kind.purpose : "\(m.kind.purpose), \(m.mode.rawValue)"))
        }
        return s
    }

    /// Elements of fixed sets that come from the node context rather than services.
    public var contextElements: [String: ElementMap] {
        var e: [String: ElementMap] = [:]
        e[Layout.natProtos] = Dictionary(uniqueKeysWithValues: protoTypes.map { ([Datum.proto($0.number)], []) })
        e[Layout.serviceCIDRs] = Dictionary(context.serviceCIDRs.map { ([$0.datum], [Datum]()) }, uniquingKeysWith: { a, _ in a })
        if case .ips(let ips) = context.nodePortAddresses {
            e[Layout.nodePortIPs] = Dictionary(ips.filter { !$0.isLoopback }.map { ([$0.datum], [Datum]()) }, uniquingKeysWith: { a, _ in a })
        }
        return e
    }

    // MARK: Chains

    public var chains: [Chain] {
        [
            firewallCheck, services, nodePorts, serviceShortcut, nodePortShortcut,
            serviceEndpointsCheck, nodePortEndpointsCheck, clusterIPsCheck, affinityRecord, masquerading,
        ] + (context.connectionCounters ? [countConnections] : []) + (context.trafficCounters ? [countTraffic] : [])
            + classChains + baseChains
    }

    var baseChains: [Chain] {
        let new = Statement.match(.ct(.state), .eq, .ctState(.new))
        let dnatted = Statement.match(.ct(.status), .eq, .ctStatus(.dnat))
        func jump(_ c: String) -> Statement { .verdict(.jump(c)) }
        let count: [Rule] = (context.connectionCounters ? [Rule([new, dnatted, jump(Layout.countConnections)])] : [])
            + (context.trafficCounters ? [Rule([dnatted, jump(Layout.countTraffic)])] : [])
        let checks: [Rule] = [
            Rule([new, jump(Layout.serviceEndpointsCheck)]),
            Rule([new, jump(Layout.clusterIPsCheck)]),
            Rule([new, dnatted, jump(Layout.affinityRecord)]),
        ] + count
        return [
            Chain(name: "filter-prerouting-pre-dnat", base: BaseChainSpec(type: .filter, hook: .prerouting, priority: -110),
                  rules: [Rule([new, jump(Layout.firewallCheck)])]),
            Chain(name: "filter-output-pre-dnat", base: BaseChainSpec(type: .filter, hook: .output, priority: -110),
                  rules: [Rule([new, jump(Layout.firewallCheck)])]),
            Chain(name: "nat-prerouting", base: BaseChainSpec(type: .nat, hook: .prerouting, priority: -100),
                  rules: [Rule([jump(Layout.services)])]),
            Chain(name: "nat-output", base: BaseChainSpec(type: .nat, hook: .output, priority: -100),
                  rules: [Rule([jump(Layout.services)])]),
            Chain(name: "filter-forward", base: BaseChainSpec(type: .filter, hook: .forward, priority: 0), rules: checks),
            Chain(name: "filter-input", base: BaseChainSpec(type: .filter, hook: .input, priority: 0), rules: [
                Rule([new, jump(Layout.nodePortEndpointsCheck)]),
                Rule([new, jump(Layout.serviceEndpointsCheck)]),
                Rule([new, dnatted, jump(Layout.affinityRecord)]),
            ] + count),
            Chain(name: "filter-output", base: BaseChainSpec(type: .filter, hook: .output, priority: 0), rules: checks),
            Chain(name: "nat-postrouting", base: BaseChainSpec(type: .nat, hook: .postrouting, priority: 100),
                  rules: [Rule([jump(Layout.masquerading)])]),
        ]
    }

    /// `firewall-check`: drop sources outside loadBalancerSourceRanges, before DNAT.
    var firewallCheck: Chain {
        let l = layout
        return Chain(name: Layout.firewallCheck, rules: [
            Rule([
                .lookup(l.tuple, set: Layout.firewallIPs, negated: false),
                .lookup(.concat(l.tuple.components + [l.saddr]), set: Layout.firewallAllow, negated: true),
                .verdict(.drop),
            ], comment: "loadBalancerSourceRanges"),
        ])
    }

    /// The match that recognizes pod traffic, or nil without a local-traffic detector.
    func fromPods(_ op: MatchOp) -> Statement? {
        switch context.localDetector {
        case .none: return nil
        case .cidrs(let cidrs):
            guard let c = cidrs.first(where: { $0.family == context.family }) else { return nil }
            return .match(layout.saddr, op, .datum(c.datum))
        case .bridgeInterface(let name): return .match(.meta(.iifname), op, .interfaceName(name))
        case .interfaceNamePrefix(let prefix): return .match(.meta(.iifname), op, .interfaceName(prefix + "*"))
        }
    }

    var fromNode: Statement { .match(.fibType(.saddr), .eq, .fibType(.local)) }

    /// A DNAT through a slot map (the `th dport != 0` match gives nft the transport
    /// protocol context that port mapping needs; every proxied protocol has ports).
    func dnat(_ kind: Layout.EndpointMapKind, _ mode: LoadBalancing, _ slots: UInt32) -> Rule {
        let l = layout
        let key: Expr = .concat(l.endpointSelector(kind, mode, slots: slots))
        return Rule([
            .match(l.dport, .neq, .datum(.port(0))),
            .dnatMap(l.family, key: key, map: Layout.endpointMap(kind, mode, slots: slots)),
        ])
    }

    /// One `jump dnat-<map>` per slot class of this kind. The DNAT rule itself lives in its
    /// own chain, so adding or removing a class rewrites only these jumps: a rule that binds
    /// a data map is never re-added, and binding makes the kernel walk every element of
    /// the map (a class change would otherwise cost O(table) in the commit). A lookup miss
    /// returns from the class chain and the next class is tried, as before.
    func dnatRules(_ kind: Layout.EndpointMapKind) -> [Rule] {
        endpointMaps.filter { $0.kind == kind }.map { Rule([.verdict(.jump(Layout.endpointChain($0.kind, $0.mode, slots: $0.slots)))]) }
    }

    /// `dnat-endpoints-<T>` …: one chain per slot map with its DNAT rule.
    var classChains: [Chain] {
        endpointMaps.map { Chain(name: Layout.endpointChain($0.kind, $0.mode, slots: $0.slots), rules: [dnat($0.kind, $0.mode, $0.slots)]) }
    }

    /// `services`: masquerade marks, affinity, eTP=Local shortcuts, then endpoint choice.
    var services: Chain {
        let l = layout
        var rules: [Rule] = []
        let clusterIPMasq: [Statement]? = context.masqueradeAll ? [] : fromPods(.neq).map { [$0] }
        if let cond = clusterIPMasq {
            rules.append(Rule([.lookup(l.tuple, set: Layout.clusterIPPorts, negated: false)] + cond + [markSet],
                              comment: context.masqueradeAll ? "masquerade all ClusterIP traffic" : "masquerade ClusterIP traffic from outside the pod network"))
        }
        rules.append(Rule([.lookup(l.tuple, set: Layout.externalPorts, negated: false), markSet],
                          comment: "masquerade external traffic (externalTrafficPolicy Cluster)"))
        rules.append(Rule([.lookup(l.tuple, set: Layout.externalLocalPorts, negated: false), fromNode, markSet],
                          comment: "masquerade local traffic"))
        for x in affinityTimeouts {
            rules.append(Rule([
                .lookup(l.tuple, set: Layout.affinityPorts(x), negated: false),
                .match(l.dport, .neq, .datum(.port(0))),
                .dnatMap(l.family, key: .concat([l.saddr] + l.tuple.components), map: Layout.affinity),
            ], comment: "ClientIP affinity"))
        }
        if let pods = fromPods(.eq) {
            rules.append(Rule([.lookup(l.tuple, set: Layout.externalLocalPorts, negated: false), pods, .verdict(.goto(Layout.serviceShortcutChain))],
                              comment: "short-circuit pod traffic"))
        }
        rules.append(Rule([.lookup(l.tuple, set: Layout.externalLocalPorts, negated: false), fromNode, .verdict(.goto(Layout.serviceShortcutChain))],
                          comment: "short-circuit local traffic"))
        rules += dnatRules(.service)
        if matchAllNodePorts {
            rules.append(Rule([.match(.fibType(.daddr), .eq, .fibType(.local)), .match(l.daddr, .neq, .datum(loopback)),
                               .verdict(.jump(Layout.nodePortsChain))]))
        } else {
            rules.append(Rule([.lookup(l.daddr, set: Layout.nodePortIPs, negated: false), .verdict(.jump(Layout.nodePortsChain))]))
        }
        return Chain(name: Layout.services, rules: rules)
    }

    var loopback: Datum { layout.family == .ip ? .prefix4(0x7f00_0000, 8) : .ipv6(0, 1) }

    /// `nodeports`: the same steps for `meta l4proto . th dport` on node addresses.
    var nodePorts: Chain {
        let l = layout
        let np = l.nodePortTuple
        var rules: [Rule] = [
            Rule([.lookup(np, set: Layout.nodePorts, negated: false), markSet], comment: "masquerade external traffic (externalTrafficPolicy Cluster)"),
            Rule([.lookup(np, set: Layout.nodePortsLocal, negated: false), fromNode, markSet], comment: "masquerade local traffic"),
        ]
        for x in nodePortAffinityTimeouts {
            rules.append(Rule([
                .lookup(np, set: Layout.affinityNodePortsClass(x), negated: false),
                .match(l.dport, .neq, .datum(.port(0))),
                .dnatMap(l.family, key: .concat([l.saddr] + np.components), map: Layout.affinityNodePorts),
            ], comment: "ClientIP affinity"))
        }
        if let pods = fromPods(.eq) {
            rules.append(Rule([.lookup(np, set: Layout.nodePortsLocal, negated: false), pods, .verdict(.goto(Layout.nodePortShortcutChain))],
                              comment: "short-circuit pod traffic"))
        }
        rules.append(Rule([.lookup(np, set: Layout.nodePortsLocal, negated: false), fromNode, .verdict(.goto(Layout.nodePortShortcutChain))],
                          comment: "short-circuit local traffic"))
        rules += dnatRules(.nodePort)
        return Chain(name: Layout.nodePortsChain, rules: rules)
    }

    var serviceShortcut: Chain { Chain(name: Layout.serviceShortcutChain, rules: dnatRules(.serviceShortcut)) }
    var nodePortShortcut: Chain { Chain(name: Layout.nodePortShortcutChain, rules: dnatRules(.nodePortShortcut)) }

    /// `service-endpoints-check`: traffic still addressed to a service after DNAT had no endpoint.
    var serviceEndpointsCheck: Chain {
        let l = layout
        return Chain(name: Layout.serviceEndpointsCheck, rules: [
            Rule([.lookup(l.tuple, set: Layout.noEndpointDrop, negated: false), .verdict(.drop)]),
            Rule([.lookup(l.tuple, set: Layout.noEndpointReject, negated: false), .reject]),
        ])
    }

    var nodePortEndpointsCheck: Chain {
        let l = layout
        let onNode: [Statement] = matchAllNodePorts
            ? [.match(l.daddr, .neq, .datum(loopback))]
            : [.lookup(l.daddr, set: Layout.nodePortIPs, negated: false)]
        return Chain(name: Layout.nodePortEndpointsCheck, rules: [
            Rule(onNode + [.lookup(l.nodePortTuple, set: Layout.noEndpointNodePortsDrop, negated: false), .verdict(.drop)]),
            Rule(onNode + [.lookup(l.nodePortTuple, set: Layout.noEndpointNodePortsReject, negated: false), .reject]),
        ])
    }

    var clusterIPsCheck: Chain {
        let l = layout
        return Chain(name: Layout.clusterIPsCheck, rules: [
            Rule([.lookup(l.daddr, set: Layout.clusterIPs, negated: false), .reject], comment: "Reject traffic to invalid ports of ClusterIPs"),
            Rule([.lookup(l.daddr, set: Layout.serviceCIDRs, negated: false), .verdict(.drop)], comment: "Drop traffic to unallocated ClusterIPs"),
        ])
    }

    /// `affinity-record`: after DNAT, remember client → endpoint for affinity services.
    var affinityRecord: Chain {
        let l = layout
        var rules: [Rule] = []
        let origTuple: Expr = .concat([l.originalDaddr, l.l4proto, .ct(.originalProtoDst)])
        let origNodePort: Expr = .concat([l.l4proto, .ct(.originalProtoDst)])
        let data: Expr = .concat(l.endpointData)
        for x in affinityTimeouts {
            for p in protoTypes {
                rules.append(Rule([
                    .match(l.l4proto, .eq, .datum(.proto(p.number))),
                    .lookup(origTuple, set: Layout.affinityPorts(x), negated: false),
                    .update(set: Layout.affinity, key: .concat([l.saddr] + origTuple.components), timeoutSeconds: x, data: data),
                ]))
            }
        }
        for x in nodePortAffinityTimeouts {
            let onNode: Statement = matchAllNodePorts
                ? .match(l.originalDaddr, .neq, .datum(loopback))
                : .lookup(l.originalDaddr, set: Layout.nodePortIPs, negated: false)
            for p in protoTypes {
                rules.append(Rule([
                    .match(l.l4proto, .eq, .datum(.proto(p.number))),
                    onNode,
                    .lookup(origNodePort, set: Layout.affinityNodePortsClass(x), negated: false),
                    .update(set: Layout.affinityNodePorts, key: .concat([l.saddr] + origNodePort.components), timeoutSeconds: x, data: data),
                ]))
            }
        }
        return Chain(name: Layout.affinityRecord, rules: rules)
    }

    /// `count-connections`: bump the counters of the connection's service address (its
    /// original destination) and of its endpoint (the destination after DNAT).
    var countConnections: Chain {
        let l = layout
        let origTuple: [Expr] = [l.originalDaddr, l.l4proto, .ct(.originalProtoDst)]
        var rules = protoTypes.map { p in
            Rule([.match(l.l4proto, .eq, .datum(.proto(p.number))),
                  .update(set: Layout.serviceConnections, key: .concat(origTuple), timeoutSeconds: nil, data: nil)])
        }
        rules.append(Rule([.update(set: Layout.endpointConnections, key: l.tuple, timeoutSeconds: nil, data: nil)]))
        return Chain(name: Layout.countConnections, rules: rules)
    }

    /// `count-traffic` (`--traffic-counters`): bump the packet and byte counter of the
    /// connection's service address with every packet, either direction (jumped to on
    /// `ct status dnat` from the filter forward, input and output hooks, one of which every
    /// packet traverses). `ct original proto-dst` needs the `meta l4proto` match before it.
    var countTraffic: Chain {
        let l = layout
        let origTuple: Expr = .concat([l.originalDaddr, l.l4proto, .ct(.originalProtoDst)])
        return Chain(name: Layout.countTraffic, rules: protoTypes.map { p in
            Rule([.match(l.l4proto, .eq, .datum(.proto(p.number))),
                  .update(set: Layout.serviceTraffic, key: origTuple, timeoutSeconds: nil, data: nil)])
        })
    }

    /// `masquerading`: hairpin marking, then masquerade marked packets once.
    var masquerading: Chain {
        let l = layout
        return Chain(name: Layout.masquerading, rules: [
            Rule([.match(.ct(.status), .eq, .ctStatus(.dnat)), .lookup(.concat([l.saddr, l.daddr]), set: Layout.hairpin, negated: false), markSet],
                 comment: "hairpin"),
            Rule([.match(.and(.meta(.mark), mark), .eq, .datum(.integer(0))), .verdict(.return)]),
            Rule([.setMark(.xor(mark))]),
            Rule([.masquerade(fullyRandom: true)]),
        ])
    }
}

extension Layout.EndpointMapKind {
    var purpose: String {
        switch self {
        case .service: return "service IP port to endpoint"
        case .nodePort: return "NodePort to endpoint"
        case .serviceShortcut: return "eTP Local IP port, pod/node source"
        case .nodePortShortcut: return "eTP Local NodePort, pod/node source"
        }
    }
}
