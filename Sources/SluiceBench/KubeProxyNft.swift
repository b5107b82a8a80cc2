import SluiceModel

/// Renders kube-proxy nftables-mode rulesets and partial-sync transactions as `nft -f`
/// input, following the structure in kube-proxy-nftables.md §1.2–1.6 and §2.2: a chain per
/// service port and per endpoint, `service-ips` verdict map with `goto` elements, a per-service
/// `numgen random mod N vmap { … }` rule, endpoint chains with hairpin mark and dnat.
///
/// Only what the benchmark's ClusterIP services use is rendered. Chain names follow
/// kube-proxy's shape (`service-XXXXXXXX-ns/svc/tcp/port`, `endpoint-XXXXXXXX-…__ip/port`);
/// the 8-character hash is FNV-1a in base32 rather than sha256 (same length, same role).
public enum KubeProxyNft {
    public static let table = "ip kube-proxy"

    static func hash8(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var out = ""
        for k in 0..<8 { out.append(alphabet[Int((h >> (UInt64(k) * 5)) & 31)]) }
        return out
    }

    static func base(_ p: ServicePortPlan) -> String {
        "\(p.name.service.namespace)/\(p.name.service.name)/\(p.name.proto.lowercased)/\(p.name.port)"
    }

    public static func serviceChain(_ p: ServicePortPlan) -> String {
        let b = base(p)
        return "service-\(hash8(b))-\(b)"
    }

    public static func endpointChain(_ p: ServicePortPlan, _ e: WeightedEndpoint) -> String {
        let b = base(p) + "__\(e.ip)/\(e.port)"
        return "endpoint-\(hash8(b))-\(b)"
    }

    /// Every per-service chain name of a service port.
    public static func chains(_ p: ServicePortPlan) -> [String] {
        p.clusterEndpoints.isEmpty ? [] : [serviceChain(p)] + p.clusterEndpoints.map { endpointChain(p, $0) }
    }

    /// Table, base chains, static chains and rules, sets and maps (§1.2–1.4).
    public static func setup(_ context: FamilyContext) -> String {
        let t = table
        let cidr = context.serviceCIDRs.map(\.description).joined(separator: ", ")
        var s = """
        add table \(t) { comment "rules for kube-proxy" ; }
        add set \(t) cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
        add set \(t) nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
        add map \(t) service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
        add map \(t) service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
        add map \(t) no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
        add map \(t) no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
        add map \(t) firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
        add chain \(t) cluster-ips-check
        add chain \(t) firewall-check
        add chain \(t) mark-for-masquerade
        add chain \(t) masquerading
        add chain \(t) nodeport-endpoints-check
        add chain \(t) reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
        add chain \(t) services
        add chain \(t) service-endpoints-check
        add rule \(t) cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"

        """
        if !cidr.isEmpty {
            s += "add rule \(t) cluster-ips-check ip daddr { \(cidr) } drop comment \"Drop traffic to unallocated ClusterIPs\"\n"
        }
        s += """
        add rule \(t) firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
        add rule \(t) mark-for-masquerade mark set mark or 0x\(String(context.masqueradeMark, radix: 16))
        add rule \(t) masquerading mark and 0x\(String(context.masqueradeMark, radix: 16)) == 0 return
        add rule \(t) masquerading mark set mark xor 0x\(String(context.masqueradeMark, radix: 16))
        add rule \(t) masquerading masquerade fully-random
        add rule \(t) nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
        add rule \(t) reject-chain reject
        add rule \(t) services ip daddr . meta l4proto . th dport vmap @service-ips
        add rule \(t) services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
        add rule \(t) service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
        add chain \(t) filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }
        add rule \(t) filter-prerouting-pre-dnat ct state new jump firewall-check
        add chain \(t) filter-output-pre-dnat { type filter hook output priority -110 ; }
        add rule \(t) filter-output-pre-dnat ct state new jump firewall-check
        add chain \(t) nat-prerouting { type nat hook prerouting priority -100 ; }
        add chain \(t) nat-output { type nat hook output priority -100 ; }
        add chain \(t) filter-forward { type filter hook forward priority 0 ; }
        add chain \(t) filter-input { type filter hook input priority 0 ; }
        add chain \(t) filter-output { type filter hook output priority 0 ; }
        add chain \(t) nat-postrouting { type nat hook postrouting priority 100 ; }
        add rule \(t) nat-prerouting jump services
        add rule \(t) nat-output jump services
        add rule \(t) filter-forward ct state new jump service-endpoints-check
        add rule \(t) filter-forward ct state new jump cluster-ips-check
        add rule \(t) filter-input ct state new jump nodeport-endpoints-check
        add rule \(t) filter-input ct state new jump service-endpoints-check
        add rule \(t) filter-output ct state new jump service-endpoints-check
        add rule \(t) filter-output ct state new jump cluster-ips-check
        add rule \(t) nat-postrouting jump masquerading

        """
        if case .ips(let ips) = context.nodePortAddresses, !ips.isEmpty {
            s += "add element \(t) nodeport-ips { \(ips.map(\.description).joined(separator: ", ")) }\n"
        }
        return s
    }

    /// `ensureChain` (add + flush) and the rules of a service port's chains (§1.5).
    public static func writeChains(_ p: ServicePortPlan, context: FamilyContext, into s: inout String) {
        let t = table
        let eps = p.clusterEndpoints
        guard !eps.isEmpty else { return }
        let svc = serviceChain(p)
        let names = eps.map { endpointChain(p, $0) }
        // Endpoint chains first, so the service chain's vmap refers to existing chains.
        for (e, name) in zip(eps, names) {
            s += "add chain \(t) \(name)\nflush chain \(t) \(name)\n"
            s += "add rule \(t) \(name) ip saddr \(e.ip) jump mark-for-masquerade\n"
            s += "add rule \(t) \(name) meta l4proto \(p.name.proto.lowercased) dnat to \(e.ip):\(e.port)\n"
        }
        s += "add chain \(t) \(svc)\nflush chain \(t) \(svc)\n"
        if case .cidrs(let cidrs) = context.localDetector, let c = cidrs.first {
            s += "add rule \(t) \(svc) ip daddr \(p.clusterIP) ip saddr != \(c) jump mark-for-masquerade\n"
        } else if context.masqueradeAll {
            s += "add rule \(t) \(svc) ip daddr \(p.clusterIP) \(p.name.proto.lowercased) dport \(p.port) jump mark-for-masquerade\n"
        }
        s += "add rule \(t) \(svc) numgen random mod \(eps.count) vmap { "
        s += names.enumerated().map { "\($0.offset) : goto \($0.element)" }.joined(separator: " , ")
        s += " }\n"
    }

    static func elementKey(_ p: ServicePortPlan) -> String { "\(p.clusterIP) . \(p.name.proto.lowercased) . \(p.port)" }

    public static func writeElements(_ p: ServicePortPlan, into s: inout String) {
        let t = table
        s += "add element \(t) cluster-ips { \(p.clusterIP) }\n"
        if p.clusterEndpoints.isEmpty {
            s += "add element \(t) no-endpoint-services { \(elementKey(p)) comment \"\(p.name)\" : goto reject-chain }\n"
        } else {
            s += "add element \(t) service-ips { \(elementKey(p)) : goto \(serviceChain(p)) }\n"
        }
    }

    public static func deleteElements(_ p: ServicePortPlan, into s: inout String) {
        let t = table
        s += "delete element \(t) cluster-ips { \(p.clusterIP) }\n"
        if p.clusterEndpoints.isEmpty {
            s += "delete element \(t) no-endpoint-services { \(elementKey(p)) }\n"
        } else {
            s += "delete element \(t) service-ips { \(elementKey(p)) }\n"
        }
    }

    /// The whole ruleset as one transaction (kube-proxy's first full sync).
    public static func full(_ context: FamilyContext, _ plans: [ServicePortPlan]) -> String {
        var s = setup(context)
        s.reserveCapacity(plans.count * (plans.first?.clusterEndpoints.count ?? 1) * 400)
        for p in plans { writeChains(p, context: context, into: &s) }
        for p in plans { writeElements(p, into: &s) }
        return s
    }
}

/// kube-proxy's in-memory state for partial syncs: the last written plans and the chains
/// that became stale (flushed now, deleted by a later transaction).
public struct KubeProxyNftState: Sendable {
    public let context: FamilyContext
    public private(set) var plans: [ServicePortName: ServicePortPlan] = [:]
    public private(set) var stale: Set<String> = []

    public init(context: FamilyContext, plans: [ServicePortPlan]) {
        self.context = context
        for p in plans { self.plans[p.name] = p }
    }

    /// The partial-sync transaction for `changes` (§2.2): the changed services' chains
    /// flushed and rewritten, element adds/deletes, chains no longer used flushed and
    /// remembered as stale.
    public mutating func transaction(_ changes: [ServicePortName: ServicePortPlan?]) -> String {
        var s = ""
        for (name, new) in changes {
            let old = plans[name]
            let oldChains = Set(old.map(KubeProxyNft.chains) ?? [])
            var newChains: Set<String> = []
            if let new {
                KubeProxyNft.writeChains(new, context: context, into: &s)
                newChains = Set(KubeProxyNft.chains(new))
                if let old {
                    if old.clusterEndpoints.isEmpty != new.clusterEndpoints.isEmpty || old.clusterIP != new.clusterIP {
                        KubeProxyNft.deleteElements(old, into: &s)
                        KubeProxyNft.writeElements(new, into: &s)
                    }
                } else {
                    KubeProxyNft.writeElements(new, into: &s)
                }
            } else if let old {
                KubeProxyNft.deleteElements(old, into: &s)
            }
            for c in oldChains.subtracting(newChains).sorted() {
                s += "flush chain \(KubeProxyNft.table) \(c)\n"
                stale.insert(c)
            }
            stale.subtract(newChains)
            plans[name] = new
        }
        return s
    }

    /// The later transaction that deletes stale chains (empty if none).
    public mutating func staleDeletion() -> String {
        let s = stale.sorted().map { "delete chain \(KubeProxyNft.table) \($0)\n" }.joined()
        stale = []
        return s
    }
}
