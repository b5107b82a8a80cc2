import Testing
@testable import SluiceModel

@Suite struct KubeProxyConfigurationTests {
    static let sample = """
        apiVersion: kubeproxy.config.k8s.io/v1alpha1
        kind: KubeProxyConfiguration
        bindAddress: 0.0.0.0
        healthzBindAddress: 0.0.0.0:10256
        metricsBindAddress: 127.0.0.1:10249
        clientConnection:
          kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
          qps: 5
          burst: 10
          contentType: application/vnd.kubernetes.protobuf
        clusterCIDR: 10.244.0.0/16,fd00:10:244::/56
        configSyncPeriod: 15m0s
        conntrack: {maxPerCore: 32768, min: 131072, tcpEstablishedTimeout: 24h0m0s}
        detectLocalMode: ClusterCIDR
        featureGates: {NFTablesProxyMode: true, SomeFutureGate: false}
        hostnameOverride: " Node-A "
        iptables: {masqueradeAll: false, masqueradeBit: 14, syncPeriod: 30s, minSyncPeriod: 1s}
        nftables: {masqueradeAll: true, masqueradeBit: 15, syncPeriod: 1m0s, minSyncPeriod: 500ms}
        mode: nftables
        nodePortAddresses: [primary, 192.168.0.0/16]
        oomScoreAdj: -999
        winkernel: {enableDSR: false}
        somethingNew: {x: 1}
        """

    @Test func parsesTheFields() throws {
        let (config, diagnostics) = KubeProxyConfiguration.parse(text: Self.sample, file: "/etc/kube-proxy/config.conf")
        #expect(diagnostics.isEmpty)
        let c = try #require(config)
        #expect(c.clientConnection?.kubeconfig == "/var/lib/kube-proxy/kubeconfig.conf")
        #expect(c.nftables?.masqueradeBit == 15)
        #expect(c.featureGates?["SomeFutureGate"] == false)

        let (o, d) = NodeOptions.merge(config: c, configFile: "/etc/kube-proxy/config.conf", flags: NodeOptionFlags(),
                                       systemHostname: "machine")
        #expect(d.isEmpty)
        #expect(o.nodeName == "node-a")
        #expect(o.clusterCIDRs == [cidr("10.244.0.0/16"), cidr("fd00:10:244::/56")])
        #expect(o.masqueradeAll)
        #expect(o.masqueradeBit == 15)
        #expect(o.syncPeriod == .seconds(60))
        #expect(o.minSyncPeriod == .milliseconds(500))
        #expect(o.configSyncPeriod == .seconds(900))
        #expect(o.nodePortAddresses == [.primary, .cidr(cidr("192.168.0.0/16"))])
        #expect(o.kubeconfig == "/var/lib/kube-proxy/kubeconfig.conf")
        #expect(o.featureGates == ["NFTablesProxyMode": true, "SomeFutureGate": false])
        #expect(o.bindAddress == ip("0.0.0.0"))
        #expect(o.detectLocalMode == .clusterCIDR)
    }

    @Test func iptablesSectionIsTheFallbackWhenModeIsNotNFTables() throws {
        let text = """
            apiVersion: kubeproxy.config.k8s.io/v1alpha1
            kind: KubeProxyConfiguration
            iptables: {masqueradeAll: true, masqueradeBit: 12, syncPeriod: 45s}
            """
        let (parsed, _) = KubeProxyConfiguration.parse(text: text)
        let config: KubeProxyConfiguration = try #require(parsed)
        let (o, d) = NodeOptions.merge(config: config, flags: NodeOptionFlags(), systemHostname: "h")
        #expect(d.isEmpty)
        #expect(o.masqueradeAll && o.masqueradeBit == 12 && o.syncPeriod == .seconds(45))
    }

    @Test func jsonConfigAndWrongKind() {
        let (c, d) = KubeProxyConfiguration.parse(text: #"{"apiVersion":"kubeproxy.config.k8s.io/v1alpha1","kind":"KubeProxyConfiguration","mode":"nftables"}"#)
        #expect(c?.mode == "nftables" && d.isEmpty)
        let (c2, d2) = KubeProxyConfiguration.parse(text: "apiVersion: v1\nkind: ConfigMap\n", file: "cm.yaml")
        #expect(c2 == nil)
        #expect(d2.map(\.description) == ["cm.yaml: KubeProxyConfiguration: kind: expected KubeProxyConfiguration, found \"ConfigMap\""])
    }

    @Test func badValuesInTheConfigFile() throws {
        let text = """
            apiVersion: kubeproxy.config.k8s.io/v1alpha1
            kind: KubeProxyConfiguration
            clusterCIDR: 10.244.0.0/16,10.245.0.0/16
            nftables: {masqueradeBit: 40, syncPeriod: soon}
            detectLocalMode: BridgeInterface
            nodePortAddresses: [primary, 10.0.0.0/40]
            mode: ipvs
            """
        let (parsed, _) = KubeProxyConfiguration.parse(text: text, file: "kp.yaml")
        let config: KubeProxyConfiguration = try #require(parsed)
        let (o, d) = NodeOptions.merge(config: config, configFile: "kp.yaml", flags: NodeOptionFlags(),
                                       systemHostname: "h")
        #expect(d.map(\.description) == [
            "kp.yaml: KubeProxyConfiguration: clusterCIDR: 10.245.0.0/16 ignored: only one IPv4 CIDR is allowed (already 10.244.0.0/16)",
            "kp.yaml: KubeProxyConfiguration: nodePortAddresses: \"10.0.0.0/40\" is not a CIDR or one of primary, all, localhost",
            "kp.yaml: KubeProxyConfiguration: nftables.masqueradeBit: 40 is outside 0-31",
            "kp.yaml: KubeProxyConfiguration: detectLocal.bridgeInterface: must be set when detect-local-mode is BridgeInterface",
            "kp.yaml: KubeProxyConfiguration: mode: \"ipvs\" ignored: Sluice always programs nftables",
            "kp.yaml: KubeProxyConfiguration: nftables.syncPeriod: \"soon\" is not a duration like 30s or 1m0s",
        ])
        #expect(o.masqueradeBit == 14 && o.detectLocalMode == .clusterCIDR && o.syncPeriod == .seconds(30))
        #expect(o.clusterCIDRs == [cidr("10.244.0.0/16")])
    }
}

@Suite struct FlagPrecedenceTests {
    let config = KubeProxyConfiguration(hostnameOverride: "from-config", clusterCIDR: "10.244.0.0/16")

    @Test func configFileWinsOverFlagsExceptHostnameOverride() {
        let flags = NodeOptionFlags(config: "kp.yaml", hostnameOverride: " FLAG-Host ", clusterCIDR: "10.0.0.0/8",
                                    masqueradeAll: true, nodeIPs: ["192.168.1.5"], serviceNodePortRange: "20000-22767",
                                    master: "https://10.0.0.1:6443")
        let (o, d) = NodeOptions.merge(config: config, flags: flags, systemHostname: "machine")
        #expect(o.nodeName == "flag-host")
        #expect(o.clusterCIDRs == [cidr("10.244.0.0/16")])
        #expect(!o.masqueradeAll)
        // Sluice's own flags and --master have no config field: honoured.
        #expect(o.nodeIPs == [ip("192.168.1.5")])
        #expect(o.nodePortRange == PortRange(lower: 20000, upper: 22767))
        #expect(o.master == "https://10.0.0.1:6443")
        #expect(d.map(\.description) == [
            "--cluster-cidr: ignored because a config file is given (--config)",
            "--masquerade-all: ignored because a config file is given (--config)",
        ])
        #expect(d.allSatisfy { $0.severity == .warning })
    }

    @Test func configHostnameOverrideWithoutFlag() {
        let (o, _) = NodeOptions.merge(config: config, flags: NodeOptionFlags(), systemHostname: "machine")
        #expect(o.nodeName == "from-config")
    }

    @Test func flagsAloneWithDefaults() {
        let (o, d) = NodeOptions.merge(config: nil, flags: NodeOptionFlags(), systemHostname: " Worker-1 ")
        #expect(d.isEmpty)
        #expect(o.nodeName == "worker-1")
        #expect(o.hostnameOverride == nil)
        #expect(o.clusterCIDRs.isEmpty)
        #expect(o.effectiveNodePortAddresses == [.primary])
        #expect(o.masqueradeBit == 14 && !o.masqueradeAll)
        #expect(o.nodePortRange == .defaultNodePortRange)
        #expect(o.detectLocalMode == .clusterCIDR)
        #expect(o.healthzBindAddress == "0.0.0.0:10256" && o.metricsBindAddress == "127.0.0.1:10249")
        #expect(o.syncPeriod == .seconds(30) && o.minSyncPeriod == .seconds(1))
    }

    @Test func flagsParsedAndValidated() {
        let flags = NodeOptionFlags(hostnameOverride: "n1", clusterCIDR: "10.244.0.0/16, fd00::/48",
                                    nodePortAddresses: ["10.0.0.0/8,0.0.0.0/0", "primary"], masqueradeBit: 3,
                                    nodeIPs: ["192.168.1.5", "not-an-ip"], serviceNodePortRange: "30000+100",
                                    detectLocalMode: "InterfaceNamePrefix", podInterfaceNamePrefix: "veth",
                                    featureGates: "A=true,B=false,C")
        let (o, d) = NodeOptions.merge(config: nil, flags: flags, systemHostname: "x")
        #expect(o.clusterCIDRs == [cidr("10.244.0.0/16"), cidr("fd00::/48")])
        #expect(o.nodePortAddresses == [.cidr(cidr("10.0.0.0/8")), .cidr(cidr("0.0.0.0/0")), .primary])
        #expect(o.masqueradeBit == 3)
        #expect(o.nodeIPs == [ip("192.168.1.5")])
        #expect(o.nodePortRange == PortRange(lower: 30000, upper: 30100))
        #expect(o.detectLocalMode == .interfaceNamePrefix && o.podInterfaceNamePrefix == "veth")
        #expect(o.featureGates == ["A": true, "B": false])
        #expect(d.map(\.description) == [
            "--node-ip: \"not-an-ip\" is not a valid node IP",
            "--feature-gates: \"C\" is not Name=true|false",
        ])
    }

    @Test func durations() {
        #expect(GoDuration.parse("1m0s") == .seconds(60))
        #expect(GoDuration.parse("1h2m3.5s") == .milliseconds(3_723_500))
        #expect(GoDuration.parse("300ms") == .milliseconds(300))
        #expect(GoDuration.parse("0") == .zero)
        #expect(GoDuration.parse("10") == nil)
        #expect(GoDuration.parse("1x") == nil)
        #expect(GoDuration.format(.seconds(900)) == "15m0s")
        #expect(GoDuration.format(.seconds(3600)) == "1h0m0s")
        #expect(GoDuration.format(.milliseconds(1500)) == "1.5s")
    }

    @Test func portRanges() {
        #expect(PortRange("30000-32767") == .defaultNodePortRange)
        #expect(PortRange("80") == PortRange(lower: 80, upper: 80))
        #expect(PortRange("32767-30000") == nil)
        #expect(PortRange("0-10") == nil)
        #expect(PortRange("1-70000") == nil)
    }
}

/// How options and the Node object resolve into per-family contexts.
@Suite struct NodeContextTests {
    let node = Node(metadata: ObjectMeta(name: "node-a", labels: [WellKnownKeys.topologyZone: "zone-a"]),
                    spec: Node.Spec(podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"]),
                    status: Node.Status(addresses: [
                        Node.Address(type: "Hostname", address: "node-a"),
                        Node.Address(type: "ExternalIP", address: "203.0.113.5"),
                        Node.Address(type: "InternalIP", address: "192.168.10.11"),
                        Node.Address(type: "InternalIP", address: "192.168.20.11"),
                        Node.Address(type: "InternalIP", address: "fd00:192:168:10::11"),
                    ]))

    func resolve(_ options: NodeOptions, node: Node? = nil, hostAddresses: [IPAddress]? = nil) -> NodeContext {
        NodeContext.resolve(options: options, node: node ?? self.node, serviceCIDRs: [], hostAddresses: hostAddresses).0
    }

    @Test func primaryNodePortAddressesAreTheFirstInternalIPPerFamily() {
        let c = resolve(NodeOptions(nodeName: "node-a"))
        #expect(c.families.map(\.family) == [.ipv4, .ipv6])
        #expect(c.zone == "zone-a")
        #expect(c.context(for: .ipv4)?.nodePortAddresses == .ips([ip("192.168.10.11")]))
        #expect(c.context(for: .ipv6)?.nodePortAddresses == .ips([ip("fd00:192:168:10::11")]))
        #expect(c.context(for: .ipv4)?.nodeIPs == [ip("192.168.10.11")])
    }

    @Test func nodeIPFlagOverridesTheNodeAddresses() {
        let c = resolve(NodeOptions(nodeName: "node-a", nodeIPs: [ip("10.1.1.1")]))
        #expect(c.context(for: .ipv4)?.nodeIPs == [ip("10.1.1.1")])
        #expect(c.context(for: .ipv4)?.nodePortAddresses == .ips([ip("10.1.1.1")]))
        #expect(c.context(for: .ipv6)?.nodeIPs == [ip("fd00:192:168:10::11")])
    }

    @Test func cidrNodePortAddressesSelectNodeIPsInside() {
        let o = NodeOptions(nodeName: "node-a", nodePortAddresses: [.cidr(cidr("192.168.20.0/24")), .cidr(cidr("203.0.113.0/24"))])
        let c = resolve(o)
        #expect(c.context(for: .ipv4)?.nodePortAddresses == .ips([ip("192.168.20.11"), ip("203.0.113.5")]))
        #expect(c.context(for: .ipv6)?.nodePortAddresses == .ips([]))
        // With host interface addresses given, those are matched instead.
        let c2 = resolve(o, hostAddresses: [ip("192.168.20.99"), ip("127.0.0.1")])
        #expect(c2.context(for: .ipv4)?.nodePortAddresses == .ips([ip("192.168.20.99")]))
    }

    @Test func matchAllIsPerFamily() {
        let o = NodeOptions(nodeName: "node-a", nodePortAddresses: [NodePortAddressSelector("0.0.0.0/0")!])
        let c = resolve(o)
        #expect(c.context(for: .ipv4)?.nodePortAddresses == .all)
        #expect(c.context(for: .ipv6)?.nodePortAddresses == .ips([]))
        let c2 = resolve(NodeOptions(nodeName: "node-a", nodePortAddresses: [NodePortAddressSelector("::/0")!, .primary]))
        #expect(c2.context(for: .ipv6)?.nodePortAddresses == .all)
        #expect(c2.context(for: .ipv4)?.nodePortAddresses == .ips([ip("192.168.10.11")]))
    }

    @Test func localDetectors() {
        let o = NodeOptions(nodeName: "node-a", clusterCIDRs: [cidr("10.244.0.0/16")])
        #expect(resolve(o).context(for: .ipv4)?.localDetector == .cidrs([cidr("10.244.0.0/16")]))
        #expect(resolve(o).context(for: .ipv6)?.localDetector == LocalTrafficDetector.none)
        var n = o
        n.detectLocalMode = .nodeCIDR
        #expect(resolve(n).context(for: .ipv6)?.localDetector == .cidrs([cidr("fd00:10:244:1::/64")]))
        n.detectLocalMode = .bridgeInterface
        n.podBridgeInterface = "cbr0"
        #expect(resolve(n).context(for: .ipv4)?.localDetector == .bridgeInterface("cbr0"))
        n.detectLocalMode = .interfaceNamePrefix
        n.podInterfaceNamePrefix = "veth"
        #expect(resolve(n).context(for: .ipv6)?.localDetector == .interfaceNamePrefix("veth"))
    }

    @Test func masqueradeSettingsReachEveryFamily() {
        let c = resolve(NodeOptions(nodeName: "node-a", masqueradeAll: true, masqueradeBit: 10))
        #expect(c.families.allSatisfy { $0.masqueradeAll && $0.masqueradeBit == 10 && $0.masqueradeMark == 0x400 })
        #expect(c.families.allSatisfy { $0.nodeName == "node-a" })
    }

    @Test func familiesDefaultToIPv4() {
        let (c, _) = NodeContext.resolve(options: NodeOptions(nodeName: "x"), node: nil, serviceCIDRs: [])
        #expect(c.families.map(\.family) == [.ipv4])
        let (c6, _) = NodeContext.resolve(options: NodeOptions(nodeName: "x", nodeIPs: [ip("fd00::1")]), node: nil, serviceCIDRs: [])
        #expect(c6.families.map(\.family) == [.ipv6])
    }
}

/// `--allow-external-ips` and kube-proxy's feature gate `AllowServiceExternalIPs` (KEP-5707).
@Suite struct AllowExternalIPsOptionTests {
    func config(_ extra: String) throws -> KubeProxyConfiguration {
        let text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n" + extra
        return try #require(KubeProxyConfiguration.parse(text: text, file: "kp.yaml").0)
    }

    @Test func onByDefault() {
        let (o, d) = NodeOptions.merge(config: nil, flags: NodeOptionFlags(), systemHostname: "h")
        #expect(o.allowExternalIPs && o.externalIPsDisabledBy == nil && d.isEmpty)
    }

    @Test func flagTurnsThemOff() {
        var flags = NodeOptionFlags()
        flags.allowExternalIPs = false
        let (o, d) = NodeOptions.merge(config: nil, flags: flags, systemHostname: "h")
        #expect(!o.allowExternalIPs)
        #expect(o.externalIPsDisabledBy == "--allow-external-ips=false")
        #expect(d.isEmpty)
    }

    @Test("the config file's featureGates.AllowServiceExternalIPs is the config-file equivalent")
    func configFileFeatureGate() throws {
        let c = try config("featureGates: {AllowServiceExternalIPs: false}\n")
        let (o, d) = NodeOptions.merge(config: c, configFile: "kp.yaml", flags: NodeOptionFlags(config: "kp.yaml"),
                                       systemHostname: "h")
        #expect(!o.allowExternalIPs && d.isEmpty)
        #expect(o.externalIPsDisabledBy == "featureGates.AllowServiceExternalIPs=false")
        let on = try config("featureGates: {AllowServiceExternalIPs: true}\n")
        #expect(NodeOptions.merge(config: on, flags: NodeOptionFlags(), systemHostname: "h").0.allowExternalIPs)
    }

    @Test("--allow-external-ips is honoured with --config and wins over the gate, without an 'ignored' warning")
    func flagWinsOverTheConfigFileGate() throws {
        let c = try config("featureGates: {AllowServiceExternalIPs: false}\n")
        var flags = NodeOptionFlags(config: "kp.yaml")
        flags.allowExternalIPs = true
        let (o, d) = NodeOptions.merge(config: c, configFile: "kp.yaml", flags: flags, systemHostname: "h")
        #expect(o.allowExternalIPs && d.isEmpty)
        flags.allowExternalIPs = false
        let (off, _) = NodeOptions.merge(config: try config("mode: nftables\n"), flags: flags, systemHostname: "h")
        #expect(off.externalIPsDisabledBy == "--allow-external-ips=false")
    }

    @Test func featureGatesFlagWithoutConfig() {
        let flags = NodeOptionFlags(featureGates: "AllowServiceExternalIPs=false")
        let (o, d) = NodeOptions.merge(config: nil, flags: flags, systemHostname: "h")
        #expect(o.externalIPsDisabledBy == "--feature-gates AllowServiceExternalIPs=false" && d.isEmpty)
    }
}

/// `--nodeport-addresses` keywords: `primary`, `all` (every local address) and `localhost`
/// (kube-proxy 1.37's alpha localhost NodePorts, which Sluice refuses).
@Suite struct NodePortAddressKeywordTests {
    @Test func keywordsParseCaseInsensitively() {
        #expect(NodePortAddressSelector(" ALL ") == .all)
        #expect(NodePortAddressSelector("Localhost") == .localhost)
        #expect(NodePortAddressSelector("primary") == .primary)
        #expect(NodePortAddressSelector("everything") == nil)
        #expect(NodePortAddressSelector("127.0.0.1") == nil)
    }

    @Test("all is every local address of both families")
    func allFromTheFlag() {
        let (o, d) = NodeOptions.merge(config: nil, flags: NodeOptionFlags(nodePortAddresses: ["all"]), systemHostname: "h")
        #expect(o.nodePortAddresses == [.all] && d.isEmpty)
        let (c, _) = NodeContext.resolve(options: o, node: nil, serviceCIDRs: [], serviceFamilies: [.ipv4, .ipv6])
        #expect(c.families.map(\.family) == [.ipv4, .ipv6])
        #expect(c.families.allSatisfy { $0.nodePortAddresses == .all })
    }

    @Test("localhost from a flag: an error naming the flag and the reason; it selects no address (never primary)")
    func localhostFromTheFlag() {
        let (o, d) = NodeOptions.merge(config: nil, flags: NodeOptionFlags(nodePortAddresses: ["localhost"]), systemHostname: "h")
        #expect(d.count == 1)
        #expect(d.first?.isError == true)
        let line = d.first?.description ?? ""
        #expect(line.hasPrefix("--nodeport-addresses: \"localhost\" is not supported: "), "\(line)")
        #expect(line.contains("route_localnet") && line.contains("127.0.0.1"), "\(line)")
        #expect(o.effectiveNodePortAddresses == [.localhost])
        var withIP = o
        withIP.nodeIPs = [ip("192.168.10.11")]
        let (c, _) = NodeContext.resolve(options: withIP, node: nil, serviceCIDRs: [])
        #expect(c.context(for: .ipv4)?.nodePortAddresses == .ips([]))
    }

    @Test("localhost in the config file: the error names the file and field; other entries still apply")
    func localhostFromTheConfigFile() throws {
        let text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nnodePortAddresses: [localhost, primary]\n"
        let config = try #require(KubeProxyConfiguration.parse(text: text, file: "kp.yaml").0)
        let (merged, d) = NodeOptions.merge(config: config, configFile: "kp.yaml", flags: NodeOptionFlags(), systemHostname: "h")
        #expect(d.map(\.description) == ["kp.yaml: KubeProxyConfiguration: nodePortAddresses: "
                                          + NodeOptionsParser.localhostNotSupported])
        #expect(d.allSatisfy { $0.isError })
        var o = merged
        o.nodeIPs = [ip("192.168.10.11")]
        let (c, _) = NodeContext.resolve(options: o, node: nil, serviceCIDRs: [])
        #expect(c.context(for: .ipv4)?.nodePortAddresses == .ips([ip("192.168.10.11")]))
    }
}

/// `--traffic-counters` (Sluice only, no config-file field): off by default, honoured with
/// `--config` without an "ignored" warning (also when the file cannot be read), and carried
/// into every family's context.
@Suite struct TrafficCountersOptionTests {
    @Test func offByDefaultAndOnWithTheFlag() {
        #expect(!NodeOptions.merge(config: nil, flags: NodeOptionFlags(), systemHostname: "h").0.trafficCounters)
        var flags = NodeOptionFlags()
        flags.trafficCounters = true
        let (o, d) = NodeOptions.merge(config: nil, flags: flags, systemHostname: "h")
        #expect(o.trafficCounters && d.isEmpty)
    }

    @Test func honouredWithConfig() throws {
        let text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\n"
        let c = try #require(KubeProxyConfiguration.parse(text: text, file: "kp.yaml").0)
        var flags = NodeOptionFlags(config: "kp.yaml")
        flags.trafficCounters = true
        let (o, d) = NodeOptions.merge(config: c, configFile: "kp.yaml", flags: flags, systemHostname: "h")
        #expect(o.trafficCounters && d.isEmpty, "\(d)")
        flags.config = "/nonexistent/kp.yaml"
        #expect(NodeOptions.load(flags: flags, systemHostname: "h").0.trafficCounters)
    }

    @Test func reachesEveryFamilyContext() {
        var options = NodeOptions(nodeName: "x", nodeIPs: [IPAddress("10.0.0.1")!, IPAddress("fd00::1")!])
        #expect(NodeContext.resolve(options: options, node: nil, serviceCIDRs: []).0.families.allSatisfy { !$0.trafficCounters })
        options.trafficCounters = true
        let (c, _) = NodeContext.resolve(options: options, node: nil, serviceCIDRs: [])
        #expect(c.families.count == 2 && c.families.allSatisfy(\.trafficCounters))
    }
}
