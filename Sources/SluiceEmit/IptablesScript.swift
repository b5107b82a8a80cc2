import SluiceModel

// Renders a `FamilyPlan` as `iptables-restore` input (`ip6tables-restore` for IPv6 plans:
// the syntax is the same) in upstream kube-proxy's iptables-mode structure, for nodes and
// reviewers that still live in iptables. The rule text, chain names, comments and ordering
// follow `pkg/proxy/iptables/proxier.go`; the output is byte-stable (see `IptablesTable`
// for the layout, which equals the canonical form of upstream's `TestOverallIPTablesRules`).
//
// Entry points:
// - `renderIptablesRestore(_:options:)`: a standalone script for `iptables-restore` *without*
//   `--noflush`. It replaces the `filter` and `nat` tables and includes the builtin chains
//   with kube-proxy's jump rules, so a fresh network namespace gets a working ruleset.
// - `renderIptablesRestore(_:onlyServices:deletedChains:options:)`: kube-proxy's own sync
//   input, for `iptables-restore --noflush` on a node whose jump rules exist
//   (`IptablesJumpRule.ordered()`). `onlyServices: nil` is a full sync; a set is a partial
//   sync (`MinimizeIPTablesRestore`).
// - `renderIptablesRestoreUpdate(from:to:options:)`: the partial sync between two plans.
//
// Differences from upstream, all deliberate:
// - Masquerade marks print as `0x4000` (upstream's tests and `iptables-save` form; the
//   runtime `%#08x` gives `0x00004000`, the same value).
// - No nfacct counters (`-m nfacct` rules need counters created out of band).
// - No connection counters and no traffic counters (`FamilyContext.connectionCounters`,
//   `--traffic-counters`): the nftables layout's `service-connections`,
//   `endpoint-connections` and `service-traffic` sets have no counterpart here, so the
//   script is the same whether or not they are on.
// - Localhost NodePorts are off by default, as in nftables mode (`IptablesRestoreOptions`).
// - Weighted endpoints (upstream is equal-weight only): the cascade uses
//   p_i = w_i / Σ_{j≥i} w_j (`IptablesCascade`), which for equal weights is byte-identical to
//   upstream. Endpoints with weight 0 take no new connections: no cascade rule, no affinity
//   rule, no `KUBE-SEP-` chain. If every listed endpoint of a service port has weight 0, it is
//   treated as having no endpoints at all (filter REJECT, no nat chains).
// - `loadBalancerSourceRanges`: as current upstream, `KUBE-FW-` ends with a target-less
//   comment rule and the drop happens in filter `KUBE-PROXY-FIREWALL` (older kube-proxy
//   jumped to `KUBE-MARK-DROP`).
// - Several pod CIDRs in one family (impossible upstream): see `IptablesContext.detectorArgs`.

/// Knobs that kube-proxy takes from flags or sysctls rather than from the plan.
public struct IptablesRestoreOptions: Sendable, Hashable {
    /// `--iptables-localhost-nodeports` (upstream default true; Sluice follows nftables mode
    /// and never DNATs localhost NodePorts, so false here). IPv4 only; when in effect the
    /// script adds kubelet's `KUBE-FIREWALL` anti-martian chain, and the node needs
    /// `net.ipv4.conf.all.route_localnet=1`.
    public var localhostNodePorts: Bool
    /// `net.netfilter.nf_conntrack_tcp_be_liberal` is set: no INVALID drop in `KUBE-FORWARD`.
    public var conntrackTCPLiberal: Bool
    /// Above this many endpoints (summed over service ports), per-endpoint comments are
    /// dropped like upstream's `largeClusterMode` (1000). nil keeps them always.
    public var largeClusterEndpointThreshold: Int?

    public init(localhostNodePorts: Bool = false, conntrackTCPLiberal: Bool = false,
                largeClusterEndpointThreshold: Int? = 1000) {
        self.localhostNodePorts = localhostNodePorts
        self.conntrackTCPLiberal = conntrackTCPLiberal
        self.largeClusterEndpointThreshold = largeClusterEndpointThreshold
    }
}

/// What kind of `iptables-restore` input to produce.
public enum IptablesRestoreMode: Sendable, Hashable {
    /// For `iptables-restore` without `--noflush`: replaces the `filter` and `nat` tables,
    /// declaring the builtin chains (policy ACCEPT) with kube-proxy's jump rules. Do not use
    /// with `--noflush`: the jump rules would be appended again on every load.
    case standalone
    /// For `iptables-restore --noflush`, as kube-proxy writes it. The top-level chains
    /// (filter `KUBE-SERVICES`, `KUBE-EXTERNAL-SERVICES`, `KUBE-FORWARD`, `KUBE-NODEPORTS`,
    /// `KUBE-PROXY-FIREWALL`; nat `KUBE-SERVICES`, `KUBE-NODEPORTS`, `KUBE-POSTROUTING`,
    /// `KUBE-MARK-MASQ`) are always rewritten whole. Per-service chains (`KUBE-SVC-`,
    /// `KUBE-SVL-`, `KUBE-EXT-`, `KUBE-FW-`, `KUBE-SEP-`) are written for the services in
    /// `onlyServices`, or for all when it is nil. `deletedChains` (nat chains) are flushed and
    /// removed with `-X`, except any that this script writes.
    case noflush(onlyServices: Set<ServiceName>?, deletedChains: Set<String>)
}

/// Renders plans as `iptables-restore` input; see the file comment for the entry points.
public struct IptablesRestoreRenderer: Sendable {
    public var options: IptablesRestoreOptions

    public init(options: IptablesRestoreOptions = .init()) {
        self.options = options
    }

    /// The whole script: `*filter … COMMIT` then `*nat … COMMIT`.
    public func render(_ plan: FamilyPlan, mode: IptablesRestoreMode = .standalone) -> String {
        let context = IptablesContext(plan, options: options)
        var filter = IptablesTable("filter")
        var nat = IptablesTable("nat")

        IptablesStaticRules.declareTopLevel(filter: &filter, nat: &nat, context: context)
        if mode == .standalone {
            IptablesStaticRules.writeBuiltinJumps(filter: &filter, nat: &nat, context: context)
        }
        IptablesStaticRules.writeMasquerade(nat: &nat, context: context)
        IptablesStaticRules.writeKubeletFirewall(filter: &filter, context: context)

        for port in Self.orderedPorts(plan) {
            let writer = IptablesServiceWriter(svc: IptablesServicePort(port), context: context)
            writer.writeDispatch(nat: &nat, filter: &filter)
            if Self.includesChains(of: port.name.service, mode: mode) {
                var serviceNat = IptablesTable("nat")
                writer.writeServiceChains(into: &serviceNat)
                nat.merge(serviceNat)
            }
        }

        IptablesStaticRules.writeNodePortsTail(nat: &nat, context: context)
        IptablesStaticRules.writeForward(filter: &filter, context: context)

        if case .noflush(_, let deleted) = mode {
            for chain in deleted { nat.delete(chain) }
        }
        return filter.render() + nat.render()
    }

    /// The `--noflush` partial sync that turns the kernel state of `old` into `new`: the
    /// per-service chains of every service whose ports were added, removed or changed, and
    /// deletion of every per-service chain `old` had and `new` does not. When the node
    /// context changed, every service's chains are written (a full sync).
    public func renderUpdate(from old: FamilyPlan, to new: FamilyPlan) -> String {
        let deleted = Self.natServiceChains(old).subtracting(Self.natServiceChains(new))
        let changed: Set<ServiceName>? = old.context == new.context ? Self.changedServices(old, new) : nil
        return render(new, mode: .noflush(onlyServices: changed, deletedChains: deleted))
    }

    /// Every per-service nat chain (`KUBE-SVC-`, `KUBE-SVL-`, `KUBE-EXT-`, `KUBE-FW-`,
    /// `KUBE-SEP-`) the plan's script contains. A caller keeping the previous plan's set can
    /// pass `old − new` as `deletedChains`.
    public static func natServiceChains(_ plan: FamilyPlan) -> Set<String> {
        plan.servicePorts.reduce(into: Set<String>()) { $0.formUnion(IptablesServicePort($1).natChains) }
    }

    /// Services whose set of port plans differs between the two plans.
    public static func changedServices(_ old: FamilyPlan, _ new: FamilyPlan) -> Set<ServiceName> {
        let before = Dictionary(grouping: old.servicePorts, by: \.name.service)
        let after = Dictionary(grouping: new.servicePorts, by: \.name.service)
        var changed: Set<ServiceName> = []
        for name in Set(before.keys).union(after.keys) {
            let a = Set(before[name] ?? []), b = Set(after[name] ?? [])
            if a != b { changed.insert(name) }
        }
        return changed
    }

    /// Service ports in the order upstream's canonical form lists them: by `ns/svc` as a
    /// string (the comment prefix upstream's tests sort on), then port name and protocol.
    static func orderedPorts(_ plan: FamilyPlan) -> [ServicePortPlan] {
        plan.servicePorts.sorted {
            ($0.name.service.description, $0.name.port, $0.name.proto) < ($1.name.service.description, $1.name.port, $1.name.proto)
        }
    }

    static func includesChains(of service: ServiceName, mode: IptablesRestoreMode) -> Bool {
        switch mode {
        case .standalone: return true
        case .noflush(let only, _): return only?.contains(service) ?? true
        }
    }
}

/// A standalone `iptables-restore` script (no `--noflush`) for `plan`; `ip6tables-restore`
/// input for an IPv6 plan. See `IptablesRestoreMode.standalone`.
public func renderIptablesRestore(_ plan: FamilyPlan, options: IptablesRestoreOptions = .init()) -> String {
    IptablesRestoreRenderer(options: options).render(plan, mode: .standalone)
}

/// kube-proxy's `iptables-restore --noflush` input for `plan`: a full sync when
/// `onlyServices` is nil, else a partial sync writing only those services' chains.
/// See `IptablesRestoreMode.noflush`.
public func renderIptablesRestore(_ plan: FamilyPlan, onlyServices: Set<ServiceName>?,
                                  deletedChains: Set<String> = [],
                                  options: IptablesRestoreOptions = .init()) -> String {
    IptablesRestoreRenderer(options: options)
        .render(plan, mode: .noflush(onlyServices: onlyServices, deletedChains: deletedChains))
}

/// The `--noflush` partial sync from `old` to `new`; see `IptablesRestoreRenderer.renderUpdate`.
public func renderIptablesRestoreUpdate(from old: FamilyPlan, to new: FamilyPlan,
                                        options: IptablesRestoreOptions = .init()) -> String {
    IptablesRestoreRenderer(options: options).renderUpdate(from: old, to: new)
}
