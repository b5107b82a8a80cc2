import SluiceModel

/// The node-wide settings the rule writers need, resolved from `FamilyContext` and
/// `IptablesRestoreOptions`.
struct IptablesContext {
    let family: IPFamily
    let masqueradeAll: Bool
    /// `0x4000` for bit 14.
    let masqueradeMark: String
    let nodeIPs: [IPAddress]
    let nodePortAddresses: NodePortAddresses
    /// Localhost NodePorts in effect (IPv4 only, and only if loopback is a NodePort address).
    let localhostNodePorts: Bool
    let conntrackTCPLiberal: Bool
    /// Per-endpoint comments are dropped (upstream `largeClusterMode`).
    let largeClusterMode: Bool
    /// Alternatives, any of which matches pod-originated traffic (upstream `IfLocal()`);
    /// empty without a detector.
    let ifLocal: [[String]]
    /// Matches traffic not from pods (upstream `IfNotLocal()`); nil without a detector.
    let ifNotLocal: [String]?

    init(_ plan: FamilyPlan, options: IptablesRestoreOptions) {
        let ctx = plan.context
        family = ctx.family
        masqueradeAll = ctx.masqueradeAll
        masqueradeMark = "0x" + String(ctx.masqueradeMark, radix: 16)
        nodeIPs = ctx.nodeIPs
        nodePortAddresses = ctx.nodePortAddresses
        let loopbackIsNodePortAddress: Bool
        switch ctx.nodePortAddresses {
        case .all: loopbackIsNodePortAddress = true
        case .ips(let ips): loopbackIsNodePortAddress = ips.contains { $0.family == .ipv4 && $0.isLoopback }
        }
        localhostNodePorts = options.localhostNodePorts && ctx.family == .ipv4 && loopbackIsNodePortAddress
        conntrackTCPLiberal = options.conntrackTCPLiberal
        if let threshold = options.largeClusterEndpointThreshold {
            let total = plan.servicePorts.reduce(0) { sum, port in
                sum + Set((port.clusterEndpoints + port.localEndpoints).map(\.description)).count
            }
            largeClusterMode = total > threshold
        } else {
            largeClusterMode = false
        }
        (ifLocal, ifNotLocal) = Self.detectorArgs(ctx.localDetector)
    }

    /// Upstream's `LocalTrafficDetector` in iptables syntax. One CIDR gives exactly upstream's
    /// `-s cidr` / `! -s cidr`. Several CIDRs (not possible upstream) give one `-s` alternative
    /// each for `IfLocal`, and for `IfNotLocal` `! -s first` plus an
    /// `-m iprange ! --src-range a-b` per further CIDR, which iptables ANDs.
    static func detectorArgs(_ detector: LocalTrafficDetector) -> ([[String]], [String]?) {
        switch detector {
        case .none:
            return ([], nil)
        case .cidrs(let cidrs):
            guard let first = cidrs.first else { return ([], nil) }
            var notLocal = ["!", "-s", first.description]
            for cidr in cidrs.dropFirst() {
                notLocal += ["-m", "iprange", "!", "--src-range", "\(cidr.address)-\(lastAddress(cidr))"]
            }
            return (cidrs.map { ["-s", $0.description] }, notLocal)
        case .bridgeInterface(let name):
            return ([["-i", name]], ["!", "-i", name])
        case .interfaceNamePrefix(let prefix):
            return ([["-i", prefix + "+"]], ["!", "-i", prefix + "+"])
        }
    }

    /// The highest address inside `cidr`.
    static func lastAddress(_ cidr: CIDR) -> IPAddress {
        let n = Int(cidr.prefixLength)
        switch cidr.address {
        case .v4(let v):
            let host: UInt32 = n == 0 ? ~0 : (n >= 32 ? 0 : ~(~UInt32(0) << UInt32(32 - n)))
            return .v4(v | host)
        case .v6(let hi, let lo):
            let hostHi: UInt64 = n >= 64 ? 0 : (n == 0 ? ~0 : ~(~UInt64(0) << UInt64(64 - n)))
            let hostLo: UInt64 = n <= 64 ? ~0 : (n >= 128 ? 0 : ~(~UInt64(0) << UInt64(128 - n)))
            return .v6(hi | hostHi, lo | hostLo)
        }
    }
}

/// A rule kube-proxy installs in a builtin chain to reach its own chains (upstream
/// `iptablesJumpChains` and `iptablesKubeletJumpChains`).
public struct IptablesJumpRule: Sendable, Hashable {
    /// `filter` or `nat`.
    public var table: String
    /// The builtin chain: `INPUT`, `FORWARD`, `OUTPUT`, `PREROUTING`, `POSTROUTING`.
    public var sourceChain: String
    /// The kube chain jumped to.
    public var targetChain: String
    /// The rule's arguments after `-A <sourceChain>`, with the comment quoted.
    public var args: [String]

    init(_ table: String, _ target: String, _ source: String, _ comment: String, _ extra: [String] = []) {
        self.table = table
        sourceChain = source
        targetChain = target
        args = extra + (comment.isEmpty ? [] : IptablesArgs.quotedComment(comment)) + IptablesArgs.jump(target)
    }

    /// Upstream's list, in upstream order. kube-proxy *prepends* each (`iptables -I`), so in
    /// a fresh chain they end up in reverse order; `ordered(localhostNodePorts:)` gives that.
    static func upstreamList(localhostNodePorts: Bool) -> [IptablesJumpRule] {
        let new = ["-m", "conntrack", "--ctstate", "NEW"]
        var list = [
            IptablesJumpRule("filter", IptablesChainName.externalServices, "INPUT", "kubernetes externally-visible service portals", new),
            IptablesJumpRule("filter", IptablesChainName.externalServices, "FORWARD", "kubernetes externally-visible service portals", new),
            IptablesJumpRule("filter", IptablesChainName.nodePorts, "INPUT", "kubernetes health check service ports"),
            IptablesJumpRule("filter", IptablesChainName.services, "FORWARD", "kubernetes service portals", new),
            IptablesJumpRule("filter", IptablesChainName.services, "OUTPUT", "kubernetes service portals", new),
            IptablesJumpRule("filter", IptablesChainName.forward, "FORWARD", "kubernetes forwarding rules"),
            IptablesJumpRule("filter", IptablesChainName.proxyFirewall, "INPUT", "kubernetes load balancer firewall", new),
            IptablesJumpRule("filter", IptablesChainName.proxyFirewall, "OUTPUT", "kubernetes load balancer firewall", new),
            IptablesJumpRule("filter", IptablesChainName.proxyFirewall, "FORWARD", "kubernetes load balancer firewall", new),
            IptablesJumpRule("nat", IptablesChainName.services, "OUTPUT", "kubernetes service portals"),
            IptablesJumpRule("nat", IptablesChainName.services, "PREROUTING", "kubernetes service portals"),
            IptablesJumpRule("nat", IptablesChainName.postrouting, "POSTROUTING", "kubernetes postrouting rules"),
        ]
        if localhostNodePorts {
            // Kubelet's duplicates; kube-proxy ensures them after its own.
            list.append(IptablesJumpRule("filter", IptablesChainName.kubeletFirewall, "INPUT", ""))
            list.append(IptablesJumpRule("filter", IptablesChainName.kubeletFirewall, "OUTPUT", ""))
        }
        return list
    }

    /// The jump rules as they stand in fresh builtin chains after kube-proxy prepended them
    /// one by one: per builtin chain, upstream's list reversed.
    public static func ordered(localhostNodePorts: Bool = false) -> [IptablesJumpRule] {
        Array(upstreamList(localhostNodePorts: localhostNodePorts).reversed())
    }
}

/// Writers for the node-wide chains, independent of any service.
enum IptablesStaticRules {
    /// Builtin chains per table, in `iptables-save` order.
    static let builtinChains: [String: [String]] = [
        "filter": ["INPUT", "FORWARD", "OUTPUT"],
        "nat": ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
    ]

    /// Declares the top-level kube chains upstream writes on every sync.
    static func declareTopLevel(filter: inout IptablesTable, nat: inout IptablesTable, context: IptablesContext) {
        for chain in [IptablesChainName.services, IptablesChainName.externalServices, IptablesChainName.forward,
                      IptablesChainName.nodePorts, IptablesChainName.proxyFirewall] {
            filter.declare(chain)
        }
        if context.localhostNodePorts { filter.declare(IptablesChainName.kubeletFirewall) }
        for chain in [IptablesChainName.services, IptablesChainName.nodePorts, IptablesChainName.postrouting,
                      IptablesChainName.markMasq] {
            nat.declare(chain)
        }
    }

    /// Builtin chain declarations and kube-proxy's jump rules (standalone scripts only).
    static func writeBuiltinJumps(filter: inout IptablesTable, nat: inout IptablesTable, context: IptablesContext) {
        for chain in builtinChains["filter"]! { filter.declareBuiltin(chain) }
        for chain in builtinChains["nat"]! { nat.declareBuiltin(chain) }
        for jump in IptablesJumpRule.ordered(localhostNodePorts: context.localhostNodePorts) {
            if jump.table == "filter" {
                filter.append(jump.sourceChain, jump.args)
            } else {
                nat.append(jump.sourceChain, jump.args)
            }
        }
    }

    /// `KUBE-POSTROUTING` (return unless marked, clear the mark, masquerade) and
    /// `KUBE-MARK-MASQ`.
    static func writeMasquerade(nat: inout IptablesTable, context: IptablesContext) {
        let mark = context.masqueradeMark
        nat.append(IptablesChainName.postrouting, ["-m", "mark", "!", "--mark", "\(mark)/\(mark)", "-j", "RETURN"])
        nat.append(IptablesChainName.postrouting, ["-j", "MARK", "--xor-mark", mark])
        nat.append(IptablesChainName.postrouting,
                   IptablesArgs.quotedComment("kubernetes service traffic requiring SNAT") + ["-j", "MASQUERADE", "--random-fully"])
        nat.append(IptablesChainName.markMasq, ["-j", "MARK", "--or-mark", mark])
    }

    /// Kubelet's anti-martian rule, needed when localhost NodePorts set `route_localnet`.
    static func writeKubeletFirewall(filter: inout IptablesTable, context: IptablesContext) {
        guard context.localhostNodePorts else { return }
        filter.append(IptablesChainName.kubeletFirewall,
                      IptablesArgs.quotedComment("block incoming localnet connections")
                          + ["-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate",
                             "RELATED,ESTABLISHED,DNAT", "-j", "DROP"])
    }

    /// The last rules of nat `KUBE-SERVICES`: NodePort traffic to a local address (or to each
    /// listed NodePort address) goes to `KUBE-NODEPORTS`. Localhost is excluded unless
    /// localhost NodePorts are enabled (never for IPv6).
    static func writeNodePortsTail(nat: inout IptablesTable, context: IptablesContext) {
        let comment = IptablesArgs.quotedComment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
        switch context.nodePortAddresses {
        case .all:
            var dest = ["-m", "addrtype", "--dst-type", "LOCAL"]
            if context.family == .ipv6 {
                dest += ["!", "-d", "::1/128"]
            } else if !context.localhostNodePorts {
                dest += ["!", "-d", "127.0.0.0/8"]
            }
            nat.append(IptablesChainName.services, comment + dest + IptablesArgs.jump(IptablesChainName.nodePorts))
        case .ips(let ips):
            let usable = Set(ips.filter { $0.family == context.family }).sorted().filter { ip in
                !ip.isLoopback || (context.family == .ipv4 && context.localhostNodePorts)
            }
            for ip in usable {
                nat.append(IptablesChainName.services, comment + ["-d", ip.description] + IptablesArgs.jump(IptablesChainName.nodePorts))
            }
        }
    }

    /// `KUBE-FORWARD`: drop conntrack-INVALID packets (unless `nf_conntrack_tcp_be_liberal`),
    /// accept marked traffic and its established flows.
    static func writeForward(filter: inout IptablesTable, context: IptablesContext) {
        let mark = context.masqueradeMark
        if !context.conntrackTCPLiberal {
            filter.append(IptablesChainName.forward, ["-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"])
        }
        filter.append(IptablesChainName.forward,
                      IptablesArgs.quotedComment("kubernetes forwarding rules") + ["-m", "mark", "--mark", "\(mark)/\(mark)", "-j", "ACCEPT"])
        filter.append(IptablesChainName.forward,
                      IptablesArgs.quotedComment("kubernetes forwarding conntrack rule")
                          + ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"])
    }
}
