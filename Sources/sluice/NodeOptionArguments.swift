import ArgumentParser
import SluiceModel

/// Node context flags, under kube-proxy's option names.
struct NodeOptionArguments: ParsableArguments {
    @Option(name: .customLong("config"), help: "A KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) file. When given, the flags below are ignored except --hostname-override, --node-ip, --service-node-port-range, --service-proxy-name, --allow-external-ips and --traffic-counters, as in kube-proxy.",
            completion: .file())
    var config: String?

    @Option(name: .customLong("hostname-override"), help: "This node's name (decides which endpoints are local). Default: the host name.")
    var hostnameOverride: String?

    @Option(name: .customLong("cluster-cidr"), help: "Pod network CIDRs, comma separated, at most one per family. Traffic from outside them to a ClusterIP is masqueraded.")
    var clusterCIDR: String?

    @Option(name: .customLong("nodeport-addresses"), help: "CIDRs, 'primary' or 'all', selecting the node addresses that accept NodePorts (repeatable or comma separated). Default: primary (the node's InternalIPs). 'all' means every local address of both families, 0.0.0.0/0 and ::/0 every local address of theirs. 'localhost' is refused (no NodePorts on loopback).",
            completion: .list(["primary", "all"]))
    var nodePortAddresses: [String] = []

    @Flag(name: .customLong("masquerade-all"), help: "Masquerade all traffic to ClusterIPs.")
    var masqueradeAll = false

    @Option(name: .customLong("node-ip"), help: "A node address (repeatable); overrides the Node object's addresses.")
    var nodeIPs: [String] = []

    @Option(name: .customLong("service-node-port-range"), help: "Valid NodePort range. Default: 30000-32767.")
    var serviceNodePortRange: String?

    @Option(name: .customLong("service-proxy-name"), help: "Proxy only Services and EndpointSlices labelled service.kubernetes.io/service-proxy-name=NAME (default: only unlabelled ones, as kube-proxy), so Sluice can run beside kube-proxy.")
    var serviceProxyName: String?

    @Option(name: .customLong("allow-external-ips"),
            help: ArgumentHelp("Program Services' spec.externalIPs (default true; wins over the AllowServiceExternalIPs feature gate). false: externalIPs get no rules at all and each such Service is reported; LoadBalancer ingress IPs are not affected.",
                               valueName: "true|false"),
            completion: .list(["true", "false"]))
    var allowExternalIPs: Bool?

    @Flag(name: .customLong("traffic-counters"), help: "Count packets and bytes per service address in the kernel (both directions of every proxied connection; set service-traffic, metrics sluice_service_packets_total and sluice_service_bytes_total, columns in sluice top). Off by default: it costs a set update per proxied packet.")
    var trafficCounters = false

    @Option(name: .customLong("detect-local-mode"), help: "How pod traffic is recognized: ClusterCIDR (default), NodeCIDR, BridgeInterface, InterfaceNamePrefix.",
            completion: .list(DetectLocalMode.allCases.map(\.rawValue)))
    var detectLocalMode: String?

    @Option(name: .customLong("pod-bridge-interface"), help: "Bridge interface for --detect-local-mode=BridgeInterface.",
            completion: .networkInterfaces)
    var podBridgeInterface: String?

    @Option(name: .customLong("pod-interface-name-prefix"), help: "Interface prefix for --detect-local-mode=InterfaceNamePrefix.")
    var podInterfaceNamePrefix: String?

    @Option(name: .customLong("masquerade-bit"), help: "Bit of the packet mark used to flag masquerading (default 14).")
    var masqueradeBit: Int?

    var flags: NodeOptionFlags {
        var f = NodeOptionFlags(config: config, hostnameOverride: hostnameOverride, clusterCIDR: clusterCIDR,
                        nodePortAddresses: nodePortAddresses.isEmpty ? nil : nodePortAddresses,
                        masqueradeAll: masqueradeAll ? true : nil, masqueradeBit: masqueradeBit,
                        nodeIPs: nodeIPs, serviceNodePortRange: serviceNodePortRange,
                        detectLocalMode: detectLocalMode, podBridgeInterface: podBridgeInterface,
                        podInterfaceNamePrefix: podInterfaceNamePrefix)
        f.serviceProxyName = serviceProxyName
        f.allowExternalIPs = allowExternalIPs
        f.trafficCounters = trafficCounters ? true : nil
        return f
    }
}

extension CompletionKind {
    /// The named network namespaces (`ip netns`' directory), for `--netns`.
    static var networkNamespaces: CompletionKind { .shellCommand("ls /run/netns 2>/dev/null") }
    /// The node's network interfaces, for `--pod-bridge-interface`.
    static var networkInterfaces: CompletionKind { .shellCommand("ls /sys/class/net 2>/dev/null") }
}
