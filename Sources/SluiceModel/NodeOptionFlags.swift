/// Explicit command-line flag values, under kube-proxy's flag names; nil (or empty) means
/// "not given". The executable's argument parser fills this and calls `NodeOptions.merge`.
public struct NodeOptionFlags: Sendable, Hashable {
    /// `--config FILE`.
    public var config: String?
    /// `--hostname-override` (honoured even with `--config`).
    public var hostnameOverride: String?
    /// `--cluster-cidr` (comma separated).
    public var clusterCIDR: String?
    /// `--nodeport-addresses` (each element may itself be comma separated).
    public var nodePortAddresses: [String]?
    /// `--masquerade-all`.
    public var masqueradeAll: Bool?
    /// `--iptables-masquerade-bit` / Sluice `--masquerade-bit`.
    public var masqueradeBit: Int?
    /// `--node-ip` (Sluice, repeatable; honoured even with `--config`).
    public var nodeIPs: [String]
    /// `--service-node-port-range` (Sluice; honoured even with `--config`).
    public var serviceNodePortRange: String?
    /// `--detect-local-mode`.
    public var detectLocalMode: String?
    /// `--pod-bridge-interface`.
    public var podBridgeInterface: String?
    /// `--pod-interface-name-prefix`.
    public var podInterfaceNamePrefix: String?
    /// `--bind-address`.
    public var bindAddress: String?
    /// `--proxy-mode`.
    public var proxyMode: String?
    /// `--healthz-bind-address`.
    public var healthzBindAddress: String?
    /// `--metrics-bind-address`.
    public var metricsBindAddress: String?
    /// `--iptables-sync-period` (applies to nftables mode too).
    public var syncPeriod: String?
    /// `--iptables-min-sync-period`.
    public var minSyncPeriod: String?
    /// `--config-sync-period`.
    public var configSyncPeriod: String?
    /// `--feature-gates` (`A=true,B=false`).
    public var featureGates: String?
    /// `--kubeconfig`.
    public var kubeconfig: String?
    /// `--master` (honoured even with `--config`: it is not a config-file field).
    public var master: String?
    /// `--service-proxy-name` (Sluice; honoured even with `--config`).
    public var serviceProxyName: String? = nil
    /// `--allow-external-ips` (Sluice; honoured even with `--config`, and wins over the
    /// `AllowServiceExternalIPs` feature gate).
    public var allowExternalIPs: Bool? = nil
    /// `--traffic-counters` (Sluice; honoured even with `--config`): count packets and bytes
    /// per service address in the kernel.
    public var trafficCounters: Bool? = nil

    public init(config: String? = nil, hostnameOverride: String? = nil, clusterCIDR: String? = nil,
                nodePortAddresses: [String]? = nil, masqueradeAll: Bool? = nil, masqueradeBit: Int? = nil,
                nodeIPs: [String] = [], serviceNodePortRange: String? = nil, detectLocalMode: String? = nil,
                podBridgeInterface: String? = nil, podInterfaceNamePrefix: String? = nil,
                bindAddress: String? = nil, proxyMode: String? = nil, healthzBindAddress: String? = nil,
                metricsBindAddress: String? = nil, syncPeriod: String? = nil, minSyncPeriod: String? = nil,
                configSyncPeriod: String? = nil, featureGates: String? = nil, kubeconfig: String? = nil,
                master: String? = nil) {
        self.config = config
        self.hostnameOverride = hostnameOverride
        self.clusterCIDR = clusterCIDR
        self.nodePortAddresses = nodePortAddresses
        self.masqueradeAll = masqueradeAll
        self.masqueradeBit = masqueradeBit
        self.nodeIPs = nodeIPs
        self.serviceNodePortRange = serviceNodePortRange
        self.detectLocalMode = detectLocalMode
        self.podBridgeInterface = podBridgeInterface
        self.podInterfaceNamePrefix = podInterfaceNamePrefix
        self.bindAddress = bindAddress
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

    /// Names of the flags that are set and that kube-proxy ignores when `--config` is given.
    var configurableFlagsSet: [String] {
        var names: [String] = []
        func check(_ set: Bool, _ name: String) { if set { names.append(name) } }
        check(clusterCIDR != nil, "--cluster-cidr")
        check(nodePortAddresses != nil, "--nodeport-addresses")
        check(masqueradeAll != nil, "--masquerade-all")
        check(masqueradeBit != nil, "--iptables-masquerade-bit")
        check(detectLocalMode != nil, "--detect-local-mode")
        check(podBridgeInterface != nil, "--pod-bridge-interface")
        check(podInterfaceNamePrefix != nil, "--pod-interface-name-prefix")
        check(bindAddress != nil, "--bind-address")
        check(proxyMode != nil, "--proxy-mode")
        check(healthzBindAddress != nil, "--healthz-bind-address")
        check(metricsBindAddress != nil, "--metrics-bind-address")
        check(syncPeriod != nil, "--iptables-sync-period")
        check(minSyncPeriod != nil, "--iptables-min-sync-period")
        check(configSyncPeriod != nil, "--config-sync-period")
        check(featureGates != nil, "--feature-gates")
        check(kubeconfig != nil, "--kubeconfig")
        return names
    }
}

/// A setting as written (text) plus where it came from, for diagnostics.
struct RawSetting<Value: Sendable>: Sendable {
    var value: Value
    /// `--cluster-cidr` for a flag, `clusterCIDR` for a config-file field.
    var field: String
}

/// Settings from one source (config file or flags), before parsing.
struct RawNodeOptions: Sendable {
    var hostnameOverride: RawSetting<String>?
    var clusterCIDRs: RawSetting<[String]>?
    var nodePortAddresses: RawSetting<[String]>?
    var masqueradeAll: Bool?
    var masqueradeBit: RawSetting<Int>?
    var nodeIPs: RawSetting<[String]>?
    var nodePortRange: RawSetting<String>?
    var detectLocalMode: RawSetting<String>?
    var podBridgeInterface: String?
    var podInterfaceNamePrefix: String?
    var bindAddress: RawSetting<String>?
    var proxyMode: String?
    var healthzBindAddress: String?
    var metricsBindAddress: String?
    var syncPeriod: RawSetting<String>?
    var minSyncPeriod: RawSetting<String>?
    var configSyncPeriod: RawSetting<String>?
    var featureGates: [String: Bool] = [:]
    /// `--feature-gates` text, parsed by the merge.
    var featureGatesText: RawSetting<String>?
    var kubeconfig: String?
    var master: String?
    /// `--allow-external-ips` (the feature gate `AllowServiceExternalIPs` is read from the gates).
    var allowExternalIPs: RawSetting<Bool>?
}

extension RawNodeOptions {
    /// Everything from the configuration file (kube-proxy's v1alpha1 → internal conversion:
    /// the `nftables` section wins; `iptables` is a fallback unless `mode: nftables`).
    init(config c: KubeProxyConfiguration) {
        let nft = c.nftables, ipt = c.mode == "nftables" ? nil : c.iptables
        hostnameOverride = c.hostnameOverride.map { RawSetting(value: $0, field: "hostnameOverride") }
        if let cidr = c.clusterCIDR, !cidr.trimmingSpaces.isEmpty {
            clusterCIDRs = RawSetting(value: cidr.split(separator: ",").map(String.init), field: "clusterCIDR")
        } else if let cidrs = c.detectLocal?.clusterCIDRs, !cidrs.isEmpty {
            clusterCIDRs = RawSetting(value: cidrs, field: "detectLocal.clusterCIDRs")
        }
        nodePortAddresses = c.nodePortAddresses.map { RawSetting(value: $0, field: "nodePortAddresses") }
        masqueradeAll = nft?.masqueradeAll ?? ipt?.masqueradeAll
        if let bit = nft?.masqueradeBit {
            masqueradeBit = RawSetting(value: bit, field: "nftables.masqueradeBit")
        } else if let bit = ipt?.masqueradeBit {
            masqueradeBit = RawSetting(value: bit, field: "iptables.masqueradeBit")
        }
        detectLocalMode = c.detectLocalMode.map { RawSetting(value: $0, field: "detectLocalMode") }
        podBridgeInterface = c.detectLocal?.bridgeInterface
        podInterfaceNamePrefix = c.detectLocal?.interfaceNamePrefix
        bindAddress = c.bindAddress.map { RawSetting(value: $0, field: "bindAddress") }
        proxyMode = c.mode
        healthzBindAddress = c.healthzBindAddress
        metricsBindAddress = c.metricsBindAddress
        if let p = nft?.syncPeriod ?? ipt?.syncPeriod {
            syncPeriod = RawSetting(value: p, field: nft?.syncPeriod != nil ? "nftables.syncPeriod" : "iptables.syncPeriod")
        }
        if let p = nft?.minSyncPeriod ?? ipt?.minSyncPeriod {
            minSyncPeriod = RawSetting(value: p, field: nft?.minSyncPeriod != nil ? "nftables.minSyncPeriod" : "iptables.minSyncPeriod")
        }
        configSyncPeriod = c.configSyncPeriod.map { RawSetting(value: $0, field: "configSyncPeriod") }
        featureGates = c.featureGates ?? [:]
        kubeconfig = c.clientConnection?.kubeconfig
    }

    /// Everything from flags (used when there is no config file).
    init(flags f: NodeOptionFlags) {
        hostnameOverride = f.hostnameOverride.map { RawSetting(value: $0, field: "--hostname-override") }
        clusterCIDRs = f.clusterCIDR.map { RawSetting(value: $0.split(separator: ",").map(String.init), field: "--cluster-cidr") }
        nodePortAddresses = f.nodePortAddresses.map {
            RawSetting(value: $0.flatMap { $0.split(separator: ",").map(String.init) }, field: "--nodeport-addresses")
        }
        masqueradeAll = f.masqueradeAll
        masqueradeBit = f.masqueradeBit.map { RawSetting(value: $0, field: "--iptables-masquerade-bit") }
        detectLocalMode = f.detectLocalMode.map { RawSetting(value: $0, field: "--detect-local-mode") }
        podBridgeInterface = f.podBridgeInterface
        podInterfaceNamePrefix = f.podInterfaceNamePrefix
        bindAddress = f.bindAddress.map { RawSetting(value: $0, field: "--bind-address") }
        proxyMode = f.proxyMode
        healthzBindAddress = f.healthzBindAddress
        metricsBindAddress = f.metricsBindAddress
        syncPeriod = f.syncPeriod.map { RawSetting(value: $0, field: "--iptables-sync-period") }
        minSyncPeriod = f.minSyncPeriod.map { RawSetting(value: $0, field: "--iptables-min-sync-period") }
        configSyncPeriod = f.configSyncPeriod.map { RawSetting(value: $0, field: "--config-sync-period") }
        featureGatesText = f.featureGates.map { RawSetting(value: $0, field: "--feature-gates") }
        kubeconfig = f.kubeconfig
    }

    /// The flags kube-proxy honours even with `--config` (plus Sluice's own flags, which have
    /// no config-file field).
    mutating func applyAlwaysHonouredFlags(_ f: NodeOptionFlags) {
        if let h = f.hostnameOverride { hostnameOverride = RawSetting(value: h, field: "--hostname-override") }
        master = f.master
        if !f.nodeIPs.isEmpty { nodeIPs = RawSetting(value: f.nodeIPs, field: "--node-ip") }
        nodePortRange = f.serviceNodePortRange.map { RawSetting(value: $0, field: "--service-node-port-range") }
        allowExternalIPs = f.allowExternalIPs.map { RawSetting(value: $0, field: "--allow-external-ips") }
    }
}
