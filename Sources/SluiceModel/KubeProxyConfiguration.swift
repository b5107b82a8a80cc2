import Foundation
import Yams

/// kube-proxy's `--config` file: `apiVersion: kubeproxy.config.k8s.io/v1alpha1`,
/// `kind: KubeProxyConfiguration`, YAML or JSON. Only the fields a node proxy uses are
/// decoded; unknown fields are ignored. Durations are kept as text (`30s`, `1m0s`) and
/// parsed by `NodeOptions.merge`.
public struct KubeProxyConfiguration: Sendable, Hashable, Codable {
    public static let apiVersion = "kubeproxy.config.k8s.io/v1alpha1"
    public static let kind = "KubeProxyConfiguration"

    public var apiVersion: String?
    public var kind: String?
    public var featureGates: [String: Bool]?
    public var clientConnection: ClientConnection?
    public var hostnameOverride: String?
    public var bindAddress: String?
    public var healthzBindAddress: String?
    public var metricsBindAddress: String?
    public var bindAddressHardFail: Bool?
    public var enableProfiling: Bool?
    /// `iptables`, `ipvs`, `nftables`; Sluice always programs nftables.
    public var mode: String?
    public var iptables: IPTables?
    public var nftables: NFTables?
    public var detectLocalMode: String?
    public var detectLocal: DetectLocal?
    /// Comma-separated, at most one CIDR per family.
    public var clusterCIDR: String?
    public var nodePortAddresses: [String]?
    public var oomScoreAdj: Int?
    public var conntrack: Conntrack?
    public var configSyncPeriod: String?
    public var portRange: String?

    public init(featureGates: [String: Bool]? = nil, clientConnection: ClientConnection? = nil,
                hostnameOverride: String? = nil, bindAddress: String? = nil, mode: String? = nil,
                iptables: IPTables? = nil, nftables: NFTables? = nil, detectLocalMode: String? = nil,
                detectLocal: DetectLocal? = nil, clusterCIDR: String? = nil, nodePortAddresses: [String]? = nil) {
        self.apiVersion = Self.apiVersion
        self.kind = Self.kind
        self.featureGates = featureGates
        self.clientConnection = clientConnection
        self.hostnameOverride = hostnameOverride
        self.bindAddress = bindAddress
        self.mode = mode
        self.iptables = iptables
        self.nftables = nftables
        self.detectLocalMode = detectLocalMode
        self.detectLocal = detectLocal
        self.clusterCIDR = clusterCIDR
        self.nodePortAddresses = nodePortAddresses
    }

    /// `clientConnection`.
    public struct ClientConnection: Sendable, Hashable, Codable {
        public var kubeconfig: String?
        public var contentType: String?
        public var acceptContentTypes: String?
        public var qps: Double?
        public var burst: Int?

        public init(kubeconfig: String? = nil) { self.kubeconfig = kubeconfig }
    }

    /// `iptables` (its `masqueradeAll`/`masqueradeBit`/sync periods are honoured when the
    /// `nftables` section does not set them and `mode` is not `nftables`).
    public struct IPTables: Sendable, Hashable, Codable {
        public var masqueradeBit: Int?
        public var masqueradeAll: Bool?
        public var localhostNodePorts: Bool?
        public var syncPeriod: String?
        public var minSyncPeriod: String?

        public init(masqueradeBit: Int? = nil, masqueradeAll: Bool? = nil) {
            self.masqueradeBit = masqueradeBit
            self.masqueradeAll = masqueradeAll
        }
    }

    /// `nftables`.
    public struct NFTables: Sendable, Hashable, Codable {
        public var masqueradeBit: Int?
        public var masqueradeAll: Bool?
        public var syncPeriod: String?
        public var minSyncPeriod: String?

        public init(masqueradeBit: Int? = nil, masqueradeAll: Bool? = nil, syncPeriod: String? = nil,
                    minSyncPeriod: String? = nil) {
            self.masqueradeBit = masqueradeBit
            self.masqueradeAll = masqueradeAll
            self.syncPeriod = syncPeriod
            self.minSyncPeriod = minSyncPeriod
        }
    }

    /// `detectLocal` (`clusterCIDRs` is the v1alpha2 spelling of `clusterCIDR`).
    public struct DetectLocal: Sendable, Hashable, Codable {
        public var bridgeInterface: String?
        public var interfaceNamePrefix: String?
        public var clusterCIDRs: [String]?

        public init(bridgeInterface: String? = nil, interfaceNamePrefix: String? = nil) {
            self.bridgeInterface = bridgeInterface
            self.interfaceNamePrefix = interfaceNamePrefix
        }
    }

    /// `conntrack` (host sysctls; durations as text).
    public struct Conntrack: Sendable, Hashable, Codable {
        public var maxPerCore: Int?
        public var min: Int?
        public var tcpEstablishedTimeout: String?
        public var tcpCloseWaitTimeout: String?
        public var tcpBeLiberal: Bool?
        public var udpTimeout: String?
        public var udpStreamTimeout: String?
    }

    /// Parses a configuration document (YAML or JSON). Returns nil plus an error diagnostic
    /// when the text is not a KubeProxyConfiguration; a foreign `apiVersion` is a warning.
    public static func parse(text: String, file: String? = nil) -> (KubeProxyConfiguration?, [Diagnostic]) {
        let kind = Self.kind
        let config: KubeProxyConfiguration
        do {
            config = try YAMLDecoder().decode(KubeProxyConfiguration.self, from: text)
        } catch let error as DecodingError {
            let (field, message) = describeDecodingError(error)
            return (nil, [Diagnostic(file: file, kind: kind, field: field, message: message)])
        } catch {
            return (nil, [Diagnostic(file: file, kind: kind, message: describeParseError(error, lineOffset: 0))])
        }
        var diagnostics: [Diagnostic] = []
        if config.kind != kind {
            return (nil, [Diagnostic(file: file, kind: kind, field: "kind",
                                     message: "expected \(kind), found \(config.kind.map { "\"\($0)\"" } ?? "none")")])
        }
        if config.apiVersion != Self.apiVersion {
            diagnostics.append(Diagnostic(severity: .warning, file: file, kind: kind, field: "apiVersion",
                                          message: "\(config.apiVersion ?? "none") is not \(Self.apiVersion); reading it as v1alpha1"))
        }
        return (config, diagnostics)
    }

    /// Reads and parses a `--config` file.
    public static func load(path: String) -> (KubeProxyConfiguration?, [Diagnostic]) {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            return (nil, [Diagnostic(file: path, kind: kind, message: "cannot read file")])
        }
        return parse(text: text, file: path)
    }
}
