import SluiceIR
import SluiceModel

/// The names and key types of Sluice's fixed nftables layout for one family.
///
/// Every per-service and per-endpoint fact lives in an element of one of these sets and
/// maps. The chains and rules depend only on the node configuration and on which
/// *feature classes* are in use (slot totals `T` of the endpoint maps, affinity timeouts),
/// never on the number of services or endpoints.
public struct Layout: Sendable, Hashable {
    public let family: Family
    public static let tableName = "sluice"
    public static let tableComment = "rules for sluice"

    public init(_ family: IPFamily) {
        self.family = family == .ipv4 ? .ip : .ip6
    }

    // MARK: Expressions in this family's spelling.

    public var saddr: Expr { .payload(family == .ip ? .ipSaddr : .ip6Saddr) }
    public var daddr: Expr { .payload(family == .ip ? .ipDaddr : .ip6Daddr) }
    public var l4proto: Expr { .meta(.l4proto) }
    public var dport: Expr { .payload(.thDport) }
    /// `ip daddr . meta l4proto . th dport`: the service tuple a packet is addressed to.
    public var tuple: Expr { .concat([daddr, l4proto, dport]) }
    /// `meta l4proto . th dport`: a NodePort.
    public var nodePortTuple: Expr { .concat([l4proto, dport]) }
    /// `ip daddr . th dport`: the data of every endpoint map.
    public var endpointData: [Expr] { [daddr, dport] }
    public var originalDaddr: Expr { .ct(.originalDaddr(family)) }

    // MARK: Set and map names.

    public static let natProtos = "nat-protos"
    public static let clusterIPs = "cluster-ips"
    public static let serviceCIDRs = "service-cidrs"
    public static let nodePortIPs = "nodeport-ips"
    public static let firewallIPs = "firewall-ips"
    public static let firewallAllow = "firewall-allow"
    public static let clusterIPPorts = "clusterip-ports"
    public static let externalPorts = "external-ports"
    public static let externalLocalPorts = "external-local-ports"
    public static let nodePorts = "nodeports"
    public static let nodePortsLocal = "nodeports-local"
    public static let noEndpointReject = "no-endpoint-reject"
    public static let noEndpointDrop = "no-endpoint-drop"
    public static let noEndpointNodePortsReject = "no-endpoint-nodeports-reject"
    public static let noEndpointNodePortsDrop = "no-endpoint-nodeports-drop"
    public static let hairpin = "hairpin"
    public static let affinity = "affinity"
    public static let affinityNodePorts = "affinity-nodeports"
    /// `service-connections`: new connections per service address, port and protocol (the
    /// destination before DNAT; a NodePort counts under the node address it reached).
    public static let serviceConnections = "service-connections"
    /// `endpoint-connections`: new connections per endpoint address, port and protocol.
    public static let endpointConnections = "endpoint-connections"
    /// `service-traffic` (`--traffic-counters`): packets and bytes of every DNATed
    /// connection, both directions, per service address, port and protocol (the original
    /// destination, as in `service-connections`).
    public static let serviceTraffic = "service-traffic"

    /// `affinity-<seconds>`: service tuples with ClientIP affinity of this timeout.
    public static func affinityPorts(_ timeout: UInt32) -> String { "affinity-\(timeout)" }
    /// `affinity-nodeports-<seconds>`: NodePorts with ClientIP affinity of this timeout.
    public static func affinityNodePortsClass(_ timeout: UInt32) -> String { "affinity-nodeports-\(timeout)" }

    /// Which traffic an endpoint map serves.
    public enum EndpointMapKind: String, Sendable, Hashable, CaseIterable, Comparable {
        /// Service tuples (ClusterIP, externalIP, LoadBalancer IP) → their policy's endpoints.
        case service = "endpoints"
        /// NodePorts → their external policy's endpoints.
        case nodePort = "nodeport-endpoints"
        /// eTP=Local external tuples reached from a pod or the node → cluster endpoints.
        case serviceShortcut = "shortcut-endpoints"
        /// eTP=Local NodePorts reached from a pod or the node → cluster endpoints.
        case nodePortShortcut = "nodeport-shortcut-endpoints"

        public static func < (a: Self, b: Self) -> Bool { a.order < b.order }
        private var order: Int { Self.allCases.firstIndex(of: self)! }

        public var isNodePort: Bool { self == .nodePort || self == .nodePortShortcut }
    }

    /// `endpoints-<T>` etc.: slot maps whose random modulus is `T`;
    /// `endpoints-source-hash-<T>`, `endpoints-consistent-hash-<M>`: slot maps indexed by a hash.
    public static func endpointMap(_ kind: EndpointMapKind, _ mode: LoadBalancing = .random, slots: UInt32) -> String {
        mode == .random ? "\(kind.rawValue)-\(slots)" : "\(kind.rawValue)-\(mode.rawValue)-\(slots)"
    }
    /// `dnat-endpoints-<T>` etc.: the chain holding the one DNAT rule through that slot map.
    public static func endpointChain(_ kind: EndpointMapKind, _ mode: LoadBalancing = .random, slots: UInt32) -> String {
        "dnat-\(endpointMap(kind, mode, slots: slots))"
    }

    /// The kind, mode and modulus of a slot map's name; nil for any other set.
    public static func parseEndpointMap(_ name: String) -> (kind: EndpointMapKind, mode: LoadBalancing, slots: UInt32)? {
        // Longest prefix first: `nodeport-shortcut-endpoints-` before `endpoints-`.
        for kind in EndpointMapKind.allCases.sorted(by: { $0.rawValue.count > $1.rawValue.count })
        where name.hasPrefix(kind.rawValue + "-") {
            let rest = name.dropFirst(kind.rawValue.count + 1)
            if let t = UInt32(rest) { return (kind, .random, t) }
            for mode in LoadBalancing.allCases where mode != .random && rest.hasPrefix(mode.rawValue + "-") {
                if let t = UInt32(rest.dropFirst(mode.rawValue.count + 1)) { return (kind, mode, t) }
            }
            return nil
        }
        return nil
    }

    /// The seed of every `jhash` in the layout: fixed, so every node hashes a flow alike.
    public static let hashSeed: UInt32 = 0x736c_6963

    // MARK: Chain names.

    public static let services = "services"
    public static let nodePortsChain = "nodeports"
    public static let serviceShortcutChain = "external-shortcut"
    public static let nodePortShortcutChain = "nodeport-shortcut"
    public static let firewallCheck = "firewall-check"
    public static let serviceEndpointsCheck = "service-endpoints-check"
    public static let nodePortEndpointsCheck = "nodeport-endpoints-check"
    public static let clusterIPsCheck = "cluster-ips-check"
    public static let affinityRecord = "affinity-record"
    public static let countConnections = "count-connections"
    public static let countTraffic = "count-traffic"
    public static let masquerading = "masquerading"

    /// `service-connections` / `endpoint-connections`: `typeof ip daddr . meta l4proto . th dport`,
    /// filled by the datapath, a counter per element. An element not updated for an hour
    /// expires (its counter restarts from zero when traffic returns), so addresses of deleted
    /// services and endpoints never pile up.
    public func connectionCounters(_ name: String) -> SetDecl {
        counterSet(name, comment: name == Layout.serviceConnections ? "new connections per service IP port" : "new connections per endpoint")
    }

    /// `service-traffic`: declared as the connection counters are; its counters hold the
    /// packets and bytes of every packet of the service address's connections.
    public var trafficCounters: SetDecl { counterSet(Layout.serviceTraffic, comment: "packets and bytes per service IP port") }

    private func counterSet(_ name: String, comment: String) -> SetDecl {
        SetDecl(name: name, key: tuple.components, flags: [.dynamic, .timeout], timeoutSeconds: 3600, size: 1_048_576, counter: true,
                comment: comment)
    }

    // MARK: Key types.

    /// The `typeof` key of an endpoint map of the given kind, mode and modulus. A hash slot
    /// is declared as `symhash mod M` (nft 1.0.6 cannot print `jhash` in a `typeof`).
    public func endpointMapKey(_ kind: EndpointMapKind, _ mode: LoadBalancing = .random, slots: UInt32) -> [Expr] {
        target(kind) + [mode == .random ? .numgenRandom(mod: slots) : .symhash(mod: slots)]
    }

    /// The lookup key a DNAT rule builds for that map: the target, then the slot —
    /// `numgen random mod T`, `jhash ip saddr mod T seed …` (source-hash) or
    /// `jhash ip saddr . th sport mod M seed …` (consistent-hash over the flow; the map key
    /// already holds the destination, and leaving the node's own address out keeps a
    /// NodePort flow on the same endpoint whichever node it reaches).
    public func endpointSelector(_ kind: EndpointMapKind, _ mode: LoadBalancing, slots: UInt32) -> [Expr] {
        switch mode {
        case .random: return target(kind) + [.numgenRandom(mod: slots)]
        case .sourceHash: return target(kind) + [.jhash(saddr, mod: slots, seed: Layout.hashSeed)]
        case .consistentHash:
            return target(kind) + [.jhash(.concat([saddr, .payload(.thSport)]), mod: slots, seed: Layout.hashSeed)]
        }
    }

    private func target(_ kind: EndpointMapKind) -> [Expr] { kind.isNodePort ? [l4proto, dport] : [daddr, l4proto, dport] }
}
