import Foundation

/// `--detect-local-mode` / `detectLocalMode`: how traffic from local pods is recognized.
public enum DetectLocalMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// Source in `--cluster-cidr` (the Linux default; no CIDR → no detector).
    case clusterCIDR = "ClusterCIDR"
    /// Source in the Node's `spec.podCIDRs`.
    case nodeCIDR = "NodeCIDR"
    /// Input interface is `--pod-bridge-interface`.
    case bridgeInterface = "BridgeInterface"
    /// Input interface name starts with `--pod-interface-name-prefix`.
    case interfaceNamePrefix = "InterfaceNamePrefix"
}

/// One entry of `--nodeport-addresses` / `nodePortAddresses`.
public enum NodePortAddressSelector: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The node's primary IP of each family (the nftables default).
    case primary
    /// Every local address of both families (the `all` keyword; `0.0.0.0/0` / `::/0` are
    /// kept as `.cidr` and mean "all" for their family only).
    case all
    /// The `localhost` keyword (kube-proxy 1.37, KEP-6032: NodePorts on 127.0.0.1 and ::1
    /// through a userspace forwarder). Parsed, reported as not supported, and selects no
    /// address: Sluice never serves NodePorts on loopback (neither do `127.0.0.0/8` or `::1/128`).
    case localhost
    /// The node's addresses inside this CIDR.
    case cidr(CIDR)

    /// Parses one entry (keyword or CIDR; lenient about spaces and zero padding).
    public init?(_ text: String) {
        let s = text.trimmingSpaces
        switch s.lowercased() {
        case "primary": self = .primary
        case "all": self = .all
        case "localhost": self = .localhost
        default:
            guard s.contains("/"), let cidr = CIDR(s) else { return nil }
            self = .cidr(cidr)  // 0.0.0.0/0 or ::/0: match-all for that family only
        }
    }

    public var description: String {
        switch self {
        case .primary: "primary"
        case .all: "all"
        case .localhost: "localhost"
        case .cidr(let c): c.description
        }
    }
}

/// The node context under kube-proxy's option names, after merging the `--config` file and
/// flags (see `NodeOptions.merge`). Values are parsed and validated.
public struct NodeOptions: Sendable, Hashable {
    /// The node name: `hostnameOverride` (trimmed, lower-cased) or the OS hostname.
    public var nodeName: String
    /// `--hostname-override` / `hostnameOverride` as given (normalized).
    public var hostnameOverride: String?
    /// Sluice's `--service-proxy-name`: proxy only Services and EndpointSlices labelled
    /// `service.kubernetes.io/service-proxy-name=NAME` (nil: kube-proxy's default selector,
    /// which skips every labelled object). Lets Sluice run beside kube-proxy.
    public var serviceProxyName: String? = nil
    /// `--cluster-cidr` / `clusterCIDR`: at most one per family.
    public var clusterCIDRs: [CIDR]
    /// `--nodeport-addresses` / `nodePortAddresses`; empty means `[primary]`.
    public var nodePortAddresses: [NodePortAddressSelector]
    /// `--masquerade-all` / `nftables.masqueradeAll`.
    public var masqueradeAll: Bool
    /// `nftables.masqueradeBit` (0…31, default 14).
    public var masqueradeBit: Int
    /// `--node-ip` (Sluice, repeatable): replaces the Node object's addresses.
    public var nodeIPs: [IPAddress]
    /// `--bind-address` / `bindAddress`: when not unspecified, overrides the primary IP of its family.
    public var bindAddress: IPAddress?
    /// `--service-node-port-range` (Sluice; the API server's range): default 30000-32767.
    public var nodePortRange: PortRange
    public var detectLocalMode: DetectLocalMode
    /// `--pod-bridge-interface` / `detectLocal.bridgeInterface`.
    public var podBridgeInterface: String?
    /// `--pod-interface-name-prefix` / `detectLocal.interfaceNamePrefix`.
    public var podInterfaceNamePrefix: String?
    /// `--proxy-mode` / `mode` as given (Sluice always programs nftables).
    public var proxyMode: String?
    /// `--healthz-bind-address` / `healthzBindAddress` (default `0.0.0.0:10256`).
    public var healthzBindAddress: String
    /// `--metrics-bind-address` / `metricsBindAddress` (default `127.0.0.1:10249`).
    public var metricsBindAddress: String
    /// `nftables.syncPeriod` (default 30 s).
    public var syncPeriod: Duration
    /// `nftables.minSyncPeriod` (default 1 s).
    public var minSyncPeriod: Duration
    /// `--config-sync-period` / `configSyncPeriod` (default 15 min).
    public var configSyncPeriod: Duration
    /// `--feature-gates` / `featureGates`.
    public var featureGates: [String: Bool]
    /// `--kubeconfig` / `clientConnection.kubeconfig`.
    public var kubeconfig: String?
    /// `--master` (overrides the kubeconfig's server).
    public var master: String?
    /// Sluice's `--allow-external-ips`, else kube-proxy's feature gate `AllowServiceExternalIPs`
    /// (KEP-5707; default true, to become false): whether Services' `spec.externalIPs` get
    /// rules. When false they get none at all (LoadBalancer ingress IPs are not affected).
    public var allowExternalIPs = true
    /// The setting that decided `allowExternalIPs`, as diagnostics name it:
    /// `--allow-external-ips`, `featureGates.AllowServiceExternalIPs` or
    /// `--feature-gates AllowServiceExternalIPs`.
    public var allowExternalIPsSetting = "--allow-external-ips"
    /// Sluice's `--traffic-counters` (default off): count every packet of proxied traffic,
    /// both directions, per service address (`service-traffic`; a set update per packet).
    public var trafficCounters = false

    public init(nodeName: String, hostnameOverride: String? = nil, clusterCIDRs: [CIDR] = [],
                nodePortAddresses: [NodePortAddressSelector] = [], masqueradeAll: Bool = false,
                masqueradeBit: Int = 14, nodeIPs: [IPAddress] = [], bindAddress: IPAddress? = nil,
                nodePortRange: PortRange = .defaultNodePortRange, detectLocalMode: DetectLocalMode = .clusterCIDR,
                podBridgeInterface: String? = nil, podInterfaceNamePrefix: String? = nil, proxyMode: String? = nil,
                healthzBindAddress: String = "0.0.0.0:10256", metricsBindAddress: String = "127.0.0.1:10249",
                syncPeriod: Duration = .seconds(30), minSyncPeriod: Duration = .seconds(1),
                configSyncPeriod: Duration = .seconds(900), featureGates: [String: Bool] = [:],
                kubeconfig: String? = nil, master: String? = nil) {
        self.nodeName = nodeName
        self.hostnameOverride = hostnameOverride
        self.clusterCIDRs = clusterCIDRs
        self.nodePortAddresses = nodePortAddresses
        self.masqueradeAll = masqueradeAll
        self.masqueradeBit = masqueradeBit
        self.nodeIPs = nodeIPs
        self.bindAddress = bindAddress
        self.nodePortRange = nodePortRange
        self.detectLocalMode = detectLocalMode
        self.podBridgeInterface = podBridgeInterface
        self.podInterfaceNamePrefix = podInterfaceNamePrefix
        self.proxyMode = proxyMode
        self.healthzBindAddress = healthzBindAddress
        self.metricsBindAddress = metricsBindAddress
        self.syncPeriod = syncPeriod
        self.minSyncPeriod = minSyncPeriod
        self.configSyncPeriod = configSyncPeriod
        self.featureGates = featureGates
        self.kubeconfig = kubeconfig
        self.master = master
    }

    /// The setting that turned externalIPs off, as each affected Service's warning names it
    /// (`--allow-external-ips=false`, `featureGates.AllowServiceExternalIPs=false`), or nil
    /// when externalIPs are programmed.
    public var externalIPsDisabledBy: String? {
        allowExternalIPs ? nil : "\(allowExternalIPsSetting)=false"
    }

    /// `nodePortAddresses`, with the nftables default `[primary]` applied.
    public var effectiveNodePortAddresses: [NodePortAddressSelector] {
        nodePortAddresses.isEmpty ? [.primary] : nodePortAddresses
    }

    /// True when a CIDR entry of `--nodeport-addresses` (not `0.0.0.0/0` or `::/0`) selects
    /// from the host's interface addresses: only then do they matter (kube-proxy reads them).
    public var nodePortAddressesNeedHostAddresses: Bool {
        effectiveNodePortAddresses.contains { if case .cidr(let c) = $0 { return !c.isMatchAll }; return false }
    }

    /// The `--cluster-cidr` of one family.
    public func clusterCIDR(for family: IPFamily) -> CIDR? { clusterCIDRs.first { $0.family == family } }

    /// kube-proxy's node name rule: the override (trimmed, lower-cased) or the OS hostname
    /// (`$HOSTNAME`, else the kernel hostname), lower-cased.
    public static func nodeName(hostnameOverride: String?, systemHostname: String?) -> String {
        if let o = hostnameOverride?.trimmingSpaces, !o.isEmpty { return o.lowercased() }
        return (systemHostname ?? "").trimmingSpaces.lowercased()
    }

    /// The OS hostname: `$HOSTNAME`, else `/proc/sys/kernel/hostname`, else Foundation's.
    public static func systemHostname() -> String {
        if let h = ProcessInfo.processInfo.environment["HOSTNAME"], !h.trimmingSpaces.isEmpty { return h }
        if let data = FileManager.default.contents(atPath: "/proc/sys/kernel/hostname"),
           let h = String(data: data, encoding: .utf8), !h.trimmingSpaces.isEmpty {
            return h.trimmingSpaces
        }
        return ProcessInfo.processInfo.hostName
    }
}
