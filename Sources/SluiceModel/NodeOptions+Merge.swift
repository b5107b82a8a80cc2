extension NodeOptions {
    /// kube-proxy's precedence: when a `--config` file is given its values are used and the
    /// flags are ignored, except `--hostname-override` (and `--master`, and Sluice's own
    /// `--node-ip` / `--service-node-port-range` / `--traffic-counters`, which have no config-file field). Ignored
    /// flags that were set produce a warning.
    ///
    /// Pure: the caller loads the config file (`KubeProxyConfiguration.load`) and supplies the
    /// OS hostname. Invalid values produce error diagnostics (kube-proxy would refuse to
    /// start) and fall back to the default for that setting.
    public static func merge(config: KubeProxyConfiguration?, configFile: String? = nil, flags: NodeOptionFlags,
                             systemHostname: String?) -> (NodeOptions, [Diagnostic]) {
        var raw: RawNodeOptions
        var diagnostics: [Diagnostic] = []
        if let config {
            raw = RawNodeOptions(config: config)
            for flag in flags.configurableFlagsSet {
                diagnostics.append(Diagnostic(severity: .warning, field: flag,
                                              message: "ignored because a config file is given (--config)"))
            }
        } else {
            raw = RawNodeOptions(flags: flags)
        }
        raw.applyAlwaysHonouredFlags(flags)
        var parser = NodeOptionsParser(configFile: config == nil ? nil : (configFile ?? flags.config))
        var options = parser.parse(raw, systemHostname: systemHostname)
        if let name = flags.serviceProxyName?.trimmingCharacters(in: .whitespaces), !name.isEmpty {
            options.serviceProxyName = name
        }
        options.trafficCounters = flags.trafficCounters ?? false
        return (options, diagnostics + parser.diagnostics)
    }

    /// Loads `flags.config` (if any) and merges. Convenience for the executable.
    public static func load(flags: NodeOptionFlags,
                            systemHostname: String? = NodeOptions.systemHostname()) -> (NodeOptions, [Diagnostic]) {
        guard let path = flags.config else { return merge(config: nil, flags: flags, systemHostname: systemHostname) }
        let (config, loadDiagnostics) = KubeProxyConfiguration.load(path: path)
        guard let config else {
            var honoured = NodeOptionFlags(hostnameOverride: flags.hostnameOverride, nodeIPs: flags.nodeIPs,
                                           serviceNodePortRange: flags.serviceNodePortRange, master: flags.master)
            honoured.serviceProxyName = flags.serviceProxyName
            honoured.allowExternalIPs = flags.allowExternalIPs
            honoured.trafficCounters = flags.trafficCounters
            let (options, diagnostics) = merge(config: nil, flags: honoured, systemHostname: systemHostname)
            return (options, loadDiagnostics + diagnostics)
        }
        let (options, diagnostics) = merge(config: config, configFile: path, flags: flags, systemHostname: systemHostname)
        return (options, loadDiagnostics + diagnostics)
    }
}

/// Parses raw settings into `NodeOptions`, collecting one diagnostic per bad value.
struct NodeOptionsParser {
    /// Set when the settings come from a config file (diagnostics then name it).
    let configFile: String?
    var diagnostics: [Diagnostic] = []

    init(configFile: String?) { self.configFile = configFile }

    private mutating func report(_ field: String, _ message: String, severity: Diagnostic.Severity = .error) {
        let fromFile = !field.hasPrefix("--")
        diagnostics.append(Diagnostic(severity: severity, file: fromFile ? configFile : nil,
                                      kind: fromFile ? KubeProxyConfiguration.kind : nil, field: field, message: message))
    }

    mutating func parse(_ raw: RawNodeOptions, systemHostname: String?) -> NodeOptions {
        let override = raw.hostnameOverride.map { $0.value.trimmingSpaces.lowercased() }.flatMap { $0.isEmpty ? nil : $0 }
        var o = NodeOptions(nodeName: NodeOptions.nodeName(hostnameOverride: override, systemHostname: systemHostname),
                            hostnameOverride: override)
        if o.nodeName.isEmpty { report("--hostname-override", "node name is empty: no hostname override and no OS hostname") }
        o.clusterCIDRs = parseClusterCIDRs(raw.clusterCIDRs)
        o.nodePortAddresses = parseNodePortAddresses(raw.nodePortAddresses)
        o.masqueradeAll = raw.masqueradeAll ?? false
        if let bit = raw.masqueradeBit {
            if (0...31).contains(bit.value) { o.masqueradeBit = bit.value } else { report(bit.field, "\(bit.value) is outside 0-31") }
        }
        o.nodeIPs = parseNodeIPs(raw.nodeIPs)
        o.bindAddress = parseBindAddress(raw.bindAddress)
        if let r = raw.nodePortRange {
            if let range = PortRange(r.value) { o.nodePortRange = range } else {
                report(r.field, "\"\(r.value)\" is not a port range like 30000-32767")
            }
        }
        parseDetectLocal(raw, into: &o)
        o.proxyMode = raw.proxyMode
        if let mode = raw.proxyMode, !mode.isEmpty, mode != "nftables" {
            report(configFile == nil ? "--proxy-mode" : "mode", "\"\(mode)\" ignored: Sluice always programs nftables", severity: .warning)
        }
        if let h = raw.healthzBindAddress, !h.isEmpty { o.healthzBindAddress = h }
        if let m = raw.metricsBindAddress, !m.isEmpty { o.metricsBindAddress = m }
        if let d = parseDuration(raw.syncPeriod, positive: true) { o.syncPeriod = d }
        if let d = parseDuration(raw.minSyncPeriod, positive: false) { o.minSyncPeriod = d }
        if let d = parseDuration(raw.configSyncPeriod, positive: true) { o.configSyncPeriod = d }
        o.featureGates = raw.featureGates
        if let text = raw.featureGatesText { o.featureGates = parseFeatureGates(text) }
        (o.allowExternalIPs, o.allowExternalIPsSetting) = allowExternalIPs(raw, gates: o.featureGates)
        o.kubeconfig = raw.kubeconfig.flatMap { $0.isEmpty ? nil : $0 }
        o.master = raw.master.flatMap { $0.isEmpty ? nil : $0 }
        return o
    }

    /// At most one CIDR per family (kube-proxy: "a single CIDR or a dual-stack pair").
    private mutating func parseClusterCIDRs(_ raw: RawSetting<[String]>?) -> [CIDR] {
        guard let raw else { return [] }
        var out: [CIDR] = []
        for text in raw.value where !text.trimmingSpaces.isEmpty {
            guard let cidr = CIDR(text), text.contains("/") else {
                report(raw.field, "\"\(text.trimmingSpaces)\" is not a valid CIDR")
                continue
            }
            if let existing = out.first(where: { $0.family == cidr.family }) {
                report(raw.field, "\(cidr) ignored: only one \(cidr.family.rawValue) CIDR is allowed (already \(existing))")
                continue
            }
            out.append(cidr)
        }
        return out
    }

    private mutating func parseNodePortAddresses(_ raw: RawSetting<[String]>?) -> [NodePortAddressSelector] {
        guard let raw else { return [] }
        var out: [NodePortAddressSelector] = []
        for text in raw.value where !text.trimmingSpaces.isEmpty {
            guard let selector = NodePortAddressSelector(text) else {
                report(raw.field, "\"\(text.trimmingSpaces)\" is not a CIDR or one of primary, all, localhost")
                continue
            }
            if selector == .localhost { report(raw.field, Self.localhostNotSupported) }
            if !out.contains(selector) { out.append(selector) }
        }
        return out
    }

    /// Why the `localhost` keyword is refused (docs/operations.md, "NodePort addresses").
    static let localhostNotSupported = "\"localhost\" is not supported: Sluice never serves NodePorts on 127.0.0.1 or ::1 "
        + "(a DNAT to loopback needs route_localnet, which nftables mode refuses, CVE-2020-8558; kube-proxy 1.37's "
        + "alpha localhost NodePorts are a userspace TCP forwarder); the entry selects no address"

    private mutating func parseNodeIPs(_ raw: RawSetting<[String]>?) -> [IPAddress] {
        guard let raw else { return [] }
        var out: [IPAddress] = []
        for text in raw.value.flatMap({ $0.split(separator: ",").map(String.init) }) {
            guard let ip = IPAddress(text), !ip.isUnspecified else {
                report(raw.field, "\"\(text.trimmingSpaces)\" is not a valid node IP")
                continue
            }
            if !out.contains(ip) { out.append(ip) }
        }
        return out
    }

    private mutating func parseBindAddress(_ raw: RawSetting<String>?) -> IPAddress? {
        guard let raw, !raw.value.trimmingSpaces.isEmpty else { return nil }
        guard let ip = IPAddress(raw.value) else {
            report(raw.field, "\"\(raw.value)\" is not a valid IP address")
            return nil
        }
        return ip
    }

    private mutating func parseDetectLocal(_ raw: RawNodeOptions, into o: inout NodeOptions) {
        o.podBridgeInterface = raw.podBridgeInterface.flatMap { $0.isEmpty ? nil : $0 }
        o.podInterfaceNamePrefix = raw.podInterfaceNamePrefix.flatMap { $0.isEmpty ? nil : $0 }
        guard let modeSetting = raw.detectLocalMode, !modeSetting.value.isEmpty else { return }
        guard let mode = DetectLocalMode(rawValue: modeSetting.value) else {
            let allowed = DetectLocalMode.allCases.map(\.rawValue).joined(separator: ", ")
            report(modeSetting.field, "\"\(modeSetting.value)\" is not one of \(allowed)")
            return
        }
        let fromFile = configFile != nil
        if mode == .bridgeInterface && o.podBridgeInterface == nil {
            report(fromFile ? "detectLocal.bridgeInterface" : "--pod-bridge-interface",
                   "must be set when detect-local-mode is BridgeInterface")
            return
        }
        if mode == .interfaceNamePrefix && o.podInterfaceNamePrefix == nil {
            report(fromFile ? "detectLocal.interfaceNamePrefix" : "--pod-interface-name-prefix",
                   "must be set when detect-local-mode is InterfaceNamePrefix")
            return
        }
        o.detectLocalMode = mode
    }

    private mutating func parseDuration(_ raw: RawSetting<String>?, positive: Bool) -> Duration? {
        guard let raw, !raw.value.isEmpty else { return nil }
        guard let d = GoDuration.parse(raw.value) else {
            report(raw.field, "\"\(raw.value)\" is not a duration like 30s or 1m0s")
            return nil
        }
        if d < .zero || (positive && d == .zero) {
            report(raw.field, "\(raw.value) must be \(positive ? "greater than" : "at least") 0")
            return nil
        }
        return d
    }

    /// `--allow-external-ips` if given, else the feature gate `AllowServiceExternalIPs`
    /// (config file or `--feature-gates`), else true; with the name of the deciding setting.
    private func allowExternalIPs(_ raw: RawNodeOptions, gates: [String: Bool]) -> (Bool, String) {
        if let flag = raw.allowExternalIPs { return (flag.value, flag.field) }
        let gate = Self.allowExternalIPsGate
        let setting = raw.featureGatesText != nil ? "--feature-gates \(gate)" : "featureGates.\(gate)"
        if let value = gates[gate] { return (value, setting) }
        return (true, "--allow-external-ips")
    }

    /// kube-proxy's feature gate for externalIPs (KEP-5707).
    static let allowExternalIPsGate = "AllowServiceExternalIPs"

    private mutating func parseFeatureGates(_ raw: RawSetting<String>) -> [String: Bool] {
        var gates: [String: Bool] = [:]
        for entry in raw.value.split(separator: ",") {
            let kv = entry.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces }
            guard kv.count == 2, !kv[0].isEmpty, let value = Bool(kv[1].lowercased()) else {
                report(raw.field, "\"\(entry)\" is not Name=true|false")
                continue
            }
            gates[kv[0]] = value
        }
        return gates
    }
}
