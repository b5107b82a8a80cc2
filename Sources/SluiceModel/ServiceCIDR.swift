/// Kubernetes vocabulary: a networking.k8s.io/v1 `ServiceCIDR` (cluster-scoped). The union
/// of all `spec.cidrs` is where ClusterIPs are allocated from; kube-proxy drops traffic to
/// unallocated ClusterIPs inside them.
public struct ServiceCIDR: Sendable, Hashable, Codable {
    public var apiVersion: String?
    public var kind: String?
    public var metadata: ObjectMeta
    public var spec: Spec

    public init(metadata: ObjectMeta, cidrs: [String]) {
        self.apiVersion = "networking.k8s.io/v1"
        self.kind = "ServiceCIDR"
        self.metadata = metadata
        self.spec = Spec(cidrs: cidrs)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try c.decodeIfPresent(String.self, forKey: .apiVersion)
        kind = try c.decodeIfPresent(String.self, forKey: .kind)
        metadata = try c.decode(.metadata, default: ObjectMeta())
        spec = try c.decode(.spec, default: Spec())
    }

    /// `spec`.
    public struct Spec: Sendable, Hashable, Codable {
        /// At most one CIDR per family.
        public var cidrs: [String]?

        public init(cidrs: [String]? = nil) { self.cidrs = cidrs }
    }
}

extension ServiceCIDR {
    /// `spec.cidrs` parsed; a bad entry is dropped with an error diagnostic.
    public func validatedCIDRs(file: String? = nil) -> ([CIDR], [Diagnostic]) {
        let ctx = DiagnosticContext(file: file, kind: "ServiceCIDR", namespace: nil, name: metadata.name)
        var out: [CIDR] = []
        var diagnostics: [Diagnostic] = []
        for (i, text) in (spec.cidrs ?? []).enumerated() {
            guard text.contains("/"), let cidr = CIDR(text) else {
                diagnostics.append(ctx.error("spec.cidrs[\(i)]", "\"\(text)\" is not a valid CIDR; entry ignored"))
                continue
            }
            out.append(cidr)
        }
        return (out, diagnostics)
    }
}
