import SluiceModel

/// What one service port needs from iptables mode, derived from a `ServicePortPlan` the way
/// upstream's `syncProxyRules` derives it from `CategorizeEndpoints`.
///
/// Weights: endpoints with weight 0 take no new connections, so they get no cascade rule, no
/// affinity rule and no `KUBE-SEP-` chain. If every listed endpoint has weight 0 the service
/// port is treated as having no endpoints at all (REJECT), exactly like an empty endpoint list.
struct IptablesServicePort {
    let plan: ServicePortPlan
    /// `ns/svc:port`.
    let nameString: String
    /// `tcp`, `udp`, `sctp`.
    let proto: String
    let clusterChain: String
    let localChain: String
    let externalChain: String
    let firewallChain: String
    /// Endpoints of the `KUBE-SVC-` chain (empty: the chain is not written).
    let clusterEndpoints: [WeightedEndpoint]
    /// Endpoints of the `KUBE-SVL-` chain (empty: the chain is not written).
    let localEndpoints: [WeightedEndpoint]
    /// Any usable endpoint anywhere (upstream `hasEndpoints`).
    let hasEndpoints: Bool
    /// eTP=Local in effect (only meaningful for externally accessible services).
    let externalPolicyLocal: Bool

    init(_ plan: ServicePortPlan) {
        self.plan = plan
        nameString = plan.name.description
        proto = plan.name.proto.lowercased
        clusterChain = IptablesChainName.clusterPolicy(plan.name)
        localChain = IptablesChainName.localPolicy(plan.name)
        externalChain = IptablesChainName.external(plan.name)
        firewallChain = IptablesChainName.firewall(plan.name)
        clusterEndpoints = plan.usesClusterEndpoints ? plan.clusterEndpoints.filter { $0.weight > 0 } : []
        localEndpoints = plan.usesLocalEndpoints ? plan.localEndpoints.filter { $0.weight > 0 } : []
        let listed = plan.clusterEndpoints + plan.localEndpoints
        let allWeightZero = !listed.isEmpty && listed.allSatisfy { $0.weight == 0 }
        hasEndpoints = plan.hasAnyEndpoints && !allWeightZero
        externalPolicyLocal = plan.externalPolicyLocal && plan.externallyAccessible
    }

    /// The chain ClusterIP traffic goes to (`KUBE-SVL-` for iTP=Local).
    var internalPolicyChain: String { plan.internalPolicyLocal ? localChain : clusterChain }
    /// The chain `KUBE-EXT-` finally jumps to (`KUBE-SVL-` for eTP=Local).
    var externalPolicyChain: String { externalPolicyLocal ? localChain : clusterChain }

    var usesClusterChain: Bool { !clusterEndpoints.isEmpty }
    var usesLocalChain: Bool { !localEndpoints.isEmpty }

    /// ClusterIP traffic has endpoints to go to (else the filter table rejects or drops it).
    var hasInternalEndpoints: Bool {
        hasEndpoints && (plan.internalPolicyLocal ? usesLocalChain : usesClusterChain)
    }

    /// External traffic not short-circuited has endpoints to go to.
    var hasExternalEndpoints: Bool {
        hasEndpoints && (externalPolicyLocal ? usesLocalChain : usesClusterChain)
    }

    var usesExternalChain: Bool { hasEndpoints && plan.externallyAccessible }

    var usesFirewallChain: Bool {
        hasEndpoints && !plan.loadBalancerIPs.isEmpty && !plan.loadBalancerSourceRanges.isEmpty
    }

    /// Where LoadBalancer IP traffic goes: `KUBE-FW-` with source ranges, else `KUBE-EXT-`.
    var loadBalancerChain: String { usesFirewallChain ? firewallChain : externalChain }

    /// Filter target and comment for ClusterIP traffic without endpoints.
    var internalFilter: (target: String, comment: String) {
        filterVerdict(policyLocal: plan.internalPolicyLocal)
    }

    /// Filter target and comment for external traffic without endpoints.
    var externalFilter: (target: String, comment: String) {
        filterVerdict(policyLocal: externalPolicyLocal)
    }

    /// REJECT when there are no endpoints at all (or, defensively, a Cluster policy has none);
    /// DROP when the policy is Local and no local endpoint exists.
    private func filterVerdict(policyLocal: Bool) -> (target: String, comment: String) {
        if hasEndpoints && policyLocal {
            return ("DROP", "\(nameString) has no local endpoints")
        }
        return ("REJECT", "\(nameString) has no endpoints")
    }

    /// Every endpoint reachable from this node, sorted, deduplicated (upstream
    /// `allLocallyReachableEndpoints`).
    var reachableEndpoints: [WeightedEndpoint] {
        var seen: Set<String> = []
        var out: [WeightedEndpoint] = []
        for ep in (clusterEndpoints + localEndpoints).sorted() where seen.insert(ep.description).inserted {
            out.append(ep)
        }
        return out
    }

    /// Per-service nat chains this port writes (for stale-chain deletion).
    var natChains: Set<String> {
        var out: Set<String> = []
        if usesExternalChain { out.insert(externalChain) }
        if usesFirewallChain { out.insert(firewallChain) }
        if usesClusterChain { out.insert(clusterChain) }
        if usesLocalChain { out.insert(localChain) }
        for ep in reachableEndpoints { out.insert(IptablesChainName.endpoint(plan.name, ep)) }
        return out
    }
}

/// Writes one service port's rules, split by chain kind. Dispatch rules go into the shared
/// top-level chains; per-service chains go into `serviceNat`, which the renderer keeps or
/// discards (partial `--noflush` updates).
struct IptablesServiceWriter {
    let svc: IptablesServicePort
    let context: IptablesContext

    private var plan: ServicePortPlan { svc.plan }

    // MARK: top-level chains

    /// nat `KUBE-SERVICES` / `KUBE-NODEPORTS` jumps and filter `KUBE-SERVICES`,
    /// `KUBE-EXTERNAL-SERVICES`, `KUBE-PROXY-FIREWALL`, `KUBE-NODEPORTS` rules.
    func writeDispatch(nat: inout IptablesTable, filter: inout IptablesTable) {
        writeClusterIPDispatch(nat: &nat, filter: &filter)
        writeExternalIPDispatch(nat: &nat, filter: &filter)
        writeLoadBalancerDispatch(nat: &nat, filter: &filter)
        writeNodePortDispatch(nat: &nat, filter: &filter)
        writeHealthCheckNodePort(filter: &filter)
    }

    private var servicePortMatch: [String] {
        IptablesArgs.proto(svc.proto)
    }

    private func writeClusterIPDispatch(nat: inout IptablesTable, filter: inout IptablesTable) {
        let dest = IptablesArgs.destination(plan.clusterIP.description, port: plan.port)
        if svc.hasInternalEndpoints {
            nat.append(IptablesChainName.services,
                       IptablesArgs.quotedComment("\(svc.nameString) cluster IP") + servicePortMatch + dest
                           + IptablesArgs.jump(svc.internalPolicyChain))
        } else {
            let verdict = svc.internalFilter
            filter.append(IptablesChainName.services,
                          IptablesArgs.quotedComment(verdict.comment) + servicePortMatch + dest
                              + IptablesArgs.jump(verdict.target))
        }
    }

    private func writeExternalIPDispatch(nat: inout IptablesTable, filter: inout IptablesTable) {
        for ip in plan.externalIPs {
            let dest = IptablesArgs.destination(ip.description, port: plan.port)
            if svc.hasEndpoints {
                nat.append(IptablesChainName.services,
                           IptablesArgs.quotedComment("\(svc.nameString) external IP") + servicePortMatch + dest
                               + IptablesArgs.jump(svc.externalChain))
            }
            if !svc.hasExternalEndpoints {
                writeExternalFilter(dest, filter: &filter)
            }
        }
    }

    private func writeLoadBalancerDispatch(nat: inout IptablesTable, filter: inout IptablesTable) {
        for ip in plan.loadBalancerIPs {
            let dest = IptablesArgs.destination(ip.description, port: plan.port)
            if svc.hasEndpoints {
                nat.append(IptablesChainName.services,
                           IptablesArgs.quotedComment("\(svc.nameString) loadbalancer IP") + servicePortMatch + dest
                               + IptablesArgs.jump(svc.loadBalancerChain))
            }
            if svc.usesFirewallChain {
                filter.append(IptablesChainName.proxyFirewall,
                              IptablesArgs.quotedComment("\(svc.nameString) traffic not accepted by \(svc.firewallChain)")
                                  + servicePortMatch + dest + IptablesArgs.jump("DROP"))
            }
        }
        if !svc.hasExternalEndpoints {
            for ip in plan.loadBalancerIPs {
                writeExternalFilter(IptablesArgs.destination(ip.description, port: plan.port), filter: &filter)
            }
        }
    }

    private func writeExternalFilter(_ dest: [String], filter: inout IptablesTable) {
        let verdict = svc.externalFilter
        filter.append(IptablesChainName.externalServices,
                      IptablesArgs.quotedComment(verdict.comment) + servicePortMatch + dest
                          + IptablesArgs.jump(verdict.target))
    }

    /// NodePorts are not subject to loadBalancerSourceRanges (upstream: "for better or for
    /// worse").
    private func writeNodePortDispatch(nat: inout IptablesTable, filter: inout IptablesTable) {
        guard let nodePort = plan.nodePort else { return }
        if svc.hasEndpoints {
            nat.append(IptablesChainName.nodePorts,
                       IptablesArgs.bareComment(svc.nameString) + servicePortMatch + ["--dport", String(nodePort)]
                           + IptablesArgs.jump(svc.externalChain))
        }
        if !svc.hasExternalEndpoints {
            let verdict = svc.externalFilter
            filter.append(IptablesChainName.externalServices,
                          IptablesArgs.quotedComment(verdict.comment) + ["-m", "addrtype", "--dst-type", "LOCAL"]
                              + servicePortMatch + ["--dport", String(nodePort)] + IptablesArgs.jump(verdict.target))
        }
    }

    private func writeHealthCheckNodePort(filter: inout IptablesTable) {
        guard let port = plan.healthCheckNodePort else { return }
        filter.append(IptablesChainName.nodePorts,
                      IptablesArgs.quotedComment("\(svc.nameString) health check node port")
                          + IptablesArgs.proto("tcp") + ["--dport", String(port)] + IptablesArgs.jump("ACCEPT"))
    }

    // MARK: per-service chains

    /// Every per-service nat chain: masquerade rule of the internal chain, `KUBE-EXT-`,
    /// `KUBE-FW-`, `KUBE-SVC-`, `KUBE-SVL-` and `KUBE-SEP-` chains.
    func writeServiceChains(into nat: inout IptablesTable) {
        declarePolicyChains(&nat)
        writeInternalMasquerade(&nat)
        writeExternalChain(&nat)
        writeFirewallChain(&nat)
        if svc.usesClusterChain { writePolicyChain(svc.clusterChain, svc.clusterEndpoints, &nat) }
        if svc.usesLocalChain { writePolicyChain(svc.localChain, svc.localEndpoints, &nat) }
        writeEndpointChains(&nat)
    }

    private func declarePolicyChains(_ nat: inout IptablesTable) {
        if svc.usesClusterChain { nat.declare(svc.clusterChain) }
        if svc.usesLocalChain { nat.declare(svc.localChain) }
    }

    /// ClusterIP traffic from outside the pod network (or all of it with masqueradeAll) is
    /// marked for masquerade at the top of the internal policy chain.
    private func writeInternalMasquerade(_ nat: inout IptablesTable) {
        guard svc.hasInternalEndpoints else { return }
        let match = IptablesArgs.quotedComment("\(svc.nameString) cluster IP") + servicePortMatch
            + IptablesArgs.destination(plan.clusterIP.description, port: plan.port)
        if context.masqueradeAll {
            nat.append(svc.internalPolicyChain, match + IptablesArgs.jump(IptablesChainName.markMasq))
        } else if let notLocal = context.ifNotLocal {
            nat.append(svc.internalPolicyChain, match + notLocal + IptablesArgs.jump(IptablesChainName.markMasq))
        }
    }

    /// `KUBE-EXT-`: masquerade for eTP=Cluster; for eTP=Local, short-circuit pod traffic and
    /// node-local traffic to the cluster chain (masquerading the latter), then fall through to
    /// the external policy chain.
    private func writeExternalChain(_ nat: inout IptablesTable) {
        guard svc.usesExternalChain else { return }
        let chain = svc.externalChain
        nat.declare(chain)
        if !svc.externalPolicyLocal {
            nat.append(chain, IptablesArgs.quotedComment("masquerade traffic for \(svc.nameString) external destinations")
                + IptablesArgs.jump(IptablesChainName.markMasq))
        } else if svc.usesClusterChain {
            for local in context.ifLocal {
                nat.append(chain, IptablesArgs.quotedComment("pod traffic for \(svc.nameString) external destinations")
                    + local + IptablesArgs.jump(svc.clusterChain))
            }
            nat.append(chain, IptablesArgs.quotedComment("masquerade LOCAL traffic for \(svc.nameString) external destinations")
                + ["-m", "addrtype", "--src-type", "LOCAL"] + IptablesArgs.jump(IptablesChainName.markMasq))
            nat.append(chain, IptablesArgs.quotedComment("route LOCAL traffic for \(svc.nameString) external destinations")
                + ["-m", "addrtype", "--src-type", "LOCAL"] + IptablesArgs.jump(svc.clusterChain))
        }
        if svc.hasExternalEndpoints {
            nat.append(chain, IptablesArgs.jump(svc.externalPolicyChain))
        }
    }

    /// `KUBE-FW-`: allowed source ranges (plus the LB IPs themselves when the node is inside a
    /// range) jump to `KUBE-EXT-`; the rest falls out un-DNATed and is dropped by the filter
    /// table's `KUBE-PROXY-FIREWALL`.
    private func writeFirewallChain(_ nat: inout IptablesTable) {
        guard svc.usesFirewallChain else { return }
        let chain = svc.firewallChain
        nat.declare(chain)
        let comment = IptablesArgs.quotedComment("\(svc.nameString) loadbalancer IP")
        var allowFromNode = false
        for range in plan.loadBalancerSourceRanges {
            nat.append(chain, comment + ["-s", range.description] + IptablesArgs.jump(svc.externalChain))
            if context.nodeIPs.contains(where: range.contains) { allowFromNode = true }
        }
        if allowFromNode {
            for ip in plan.loadBalancerIPs {
                nat.append(chain, comment + ["-s", ip.description] + IptablesArgs.jump(svc.externalChain))
            }
        }
        nat.append(chain, IptablesArgs.quotedComment("other traffic to \(svc.nameString) will be dropped by KUBE-PROXY-FIREWALL"))
    }

    /// Affinity `--rcheck` rules, then the weighted probability cascade.
    private func writePolicyChain(_ chain: String, _ endpoints: [WeightedEndpoint], _ nat: inout IptablesTable) {
        if let timeout = plan.affinityTimeoutSeconds {
            for ep in endpoints {
                let sep = IptablesChainName.endpoint(plan.name, ep)
                nat.append(chain, endpointComment(ep)
                    + ["-m", "recent", "--name", sep, "--rcheck", "--seconds", String(timeout), "--reap"]
                    + IptablesArgs.jump(sep))
            }
        }
        let probabilities = IptablesCascade.probabilities(weights: endpoints.map(\.weight))
        for (i, ep) in endpoints.enumerated() {
            var args = endpointComment(ep)
            if i < probabilities.count {
                args += ["-m", "statistic", "--mode", "random", "--probability", probabilities[i]]
            }
            nat.append(chain, args + IptablesArgs.jump(IptablesChainName.endpoint(plan.name, ep)))
        }
    }

    /// `KUBE-SEP-`: hairpin masquerade, then DNAT (recording the client for affinity).
    private func writeEndpointChains(_ nat: inout IptablesTable) {
        for ep in svc.reachableEndpoints {
            let chain = IptablesChainName.endpoint(plan.name, ep)
            nat.declare(chain)
            let comment = context.largeClusterMode ? [] : IptablesArgs.bareComment(svc.nameString)
            nat.append(chain, comment + ["-s", ep.ip.description] + IptablesArgs.jump(IptablesChainName.markMasq))
            var dnat = comment
            if plan.affinityTimeoutSeconds != nil {
                dnat += ["-m", "recent", "--name", chain, "--set"]
            }
            dnat += servicePortMatch + ["-j", "DNAT", "--to-destination", ep.description]
            nat.append(chain, dnat)
        }
    }

    /// `"ns/svc:port -> ip:port"`, omitted in large-cluster mode like upstream.
    private func endpointComment(_ ep: WeightedEndpoint) -> [String] {
        context.largeClusterMode ? [] : IptablesArgs.quotedComment("\(svc.nameString) -> \(ep.description)")
    }
}
