import Crypto
import SluiceModel

/// Chain names exactly as upstream kube-proxy's iptables mode computes them
/// (`pkg/proxy/iptables/proxier.go`: `portProtoHash`, `servicePortPolicyClusterChain`,
/// `servicePortPolicyLocalChainName`, `serviceFirewallChainName`, `serviceExternalChainName`,
/// `servicePortEndpointChainName`).
///
/// Every per-service name is a fixed prefix plus the first 16 characters of the RFC 4648
/// standard base32 encoding of `sha256(servicePortName + protocol [+ endpoint])`, where
/// `servicePortName` is `ns/svc:port` (`ns/svc` when the port is unnamed), `protocol` is the
/// lower-case protocol (`tcp`, `udp`, `sctp`) and `endpoint` is `ip:port` (`[ip]:port` for
/// IPv6). Names stay within iptables' 28-character chain-name limit.
public enum IptablesChainName {
    /// `KUBE-SERVICES` (nat and filter).
    public static let services = "KUBE-SERVICES"
    /// `KUBE-EXTERNAL-SERVICES` (filter).
    public static let externalServices = "KUBE-EXTERNAL-SERVICES"
    /// `KUBE-NODEPORTS` (nat and filter).
    public static let nodePorts = "KUBE-NODEPORTS"
    /// `KUBE-POSTROUTING` (nat).
    public static let postrouting = "KUBE-POSTROUTING"
    /// `KUBE-MARK-MASQ` (nat).
    public static let markMasq = "KUBE-MARK-MASQ"
    /// `KUBE-FORWARD` (filter).
    public static let forward = "KUBE-FORWARD"
    /// `KUBE-PROXY-FIREWALL` (filter): loadBalancerSourceRanges drops.
    public static let proxyFirewall = "KUBE-PROXY-FIREWALL"
    /// `KUBE-FIREWALL` (filter): kubelet's anti-martian rule, only with localhost NodePorts.
    public static let kubeletFirewall = "KUBE-FIREWALL"

    /// Prefixes of the per-service and per-endpoint nat chains (upstream `isServiceChainName`).
    public static let serviceChainPrefixes = ["KUBE-SVC-", "KUBE-SVL-", "KUBE-SEP-", "KUBE-FW-", "KUBE-EXT-"]

    /// Whether `name` is a per-service or per-endpoint chain that this emitter owns.
    public static func isServiceChain(_ name: String) -> Bool {
        serviceChainPrefixes.contains { name.hasPrefix($0) }
    }

    /// Upstream `portProtoHash`: 16 base32 characters of `sha256(servicePortName + protocol)`.
    public static func portProtoHash(_ servicePortName: String, _ proto: String) -> String {
        hash16(servicePortName + proto)
    }

    /// `KUBE-SVC-…`: dispatch to endpoints for `Cluster` traffic policy.
    public static func clusterPolicy(_ name: ServicePortName) -> String {
        "KUBE-SVC-" + portProtoHash(name.description, name.proto.lowercased)
    }

    /// `KUBE-SVL-…`: dispatch to local endpoints for `Local` traffic policy.
    public static func localPolicy(_ name: ServicePortName) -> String {
        "KUBE-SVL-" + portProtoHash(name.description, name.proto.lowercased)
    }

    /// `KUBE-FW-…`: loadBalancerSourceRanges filtering for LoadBalancer IPs.
    public static func firewall(_ name: ServicePortName) -> String {
        "KUBE-FW-" + portProtoHash(name.description, name.proto.lowercased)
    }

    /// `KUBE-EXT-…`: external-destination traffic (NodePort, externalIPs, LB IPs).
    public static func external(_ name: ServicePortName) -> String {
        "KUBE-EXT-" + portProtoHash(name.description, name.proto.lowercased)
    }

    /// `KUBE-SEP-…`: one endpoint of a service port; `endpoint` is `ip:port` or `[ip]:port`.
    public static func endpoint(_ name: ServicePortName, _ endpoint: String) -> String {
        "KUBE-SEP-" + hash16(name.description + name.proto.lowercased + endpoint)
    }

    /// `KUBE-SEP-…` for a planned endpoint.
    public static func endpoint(_ name: ServicePortName, _ endpoint: WeightedEndpoint) -> String {
        self.endpoint(name, endpoint.description)
    }

    /// First 16 characters of base32(sha256(text)).
    static func hash16(_ text: String) -> String {
        let digest = SHA256.hash(data: Array(text.utf8))
        return String(base32Encode(Array(digest)).prefix(16))
    }
}

/// RFC 4648 §6 base32 with the standard alphabet and `=` padding (Go's
/// `base32.StdEncoding.EncodeToString`).
public func base32Encode(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 4) / 5 * 8)
    var index = 0
    while index < bytes.count {
        let chunk = bytes[index..<min(index + 5, bytes.count)]
        var block = [UInt8](repeating: 0, count: 5)
        for (i, b) in chunk.enumerated() { block[i] = b }
        let bits = block.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        // 5 bytes → 8 symbols; a partial chunk of n bytes yields ceil(8n/5) symbols.
        let symbols = (chunk.count * 8 + 4) / 5
        for s in 0..<8 {
            if s < symbols {
                out.append(alphabet[Int((bits >> UInt64(35 - 5 * s)) & 0x1f)])
            } else {
                out.append(UInt8(ascii: "="))
            }
        }
        index += 5
    }
    return String(decoding: out, as: UTF8.self)
}
