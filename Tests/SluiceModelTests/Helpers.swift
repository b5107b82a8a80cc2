import Testing
@testable import SluiceModel

/// Parses inline YAML as if it were the file `file`.
func loadYAML(_ yaml: String, file: String = "Rulesets/test.yaml") -> ManifestLoader.Result {
    ManifestLoader().parse(text: yaml, file: file)
}

/// Loads inline YAML and plans it for node `node-a` (unless other options are given).
func planYAML(_ yaml: String, options: NodeOptions = NodeOptions(nodeName: "node-a", nodeIPs: [IPAddress("192.168.10.11")!]),
              file: String = "Rulesets/test.yaml") -> PlanResult {
    let loaded = loadYAML(yaml, file: file)
    #expect(loaded.diagnostics.isEmpty, "unexpected load diagnostics: \(loaded.diagnostics)")
    return ProxyPlanner(options: options).plan(loaded.objects)
}

func ip(_ s: String) -> IPAddress { IPAddress(s)! }
func cidr(_ s: String) -> CIDR { CIDR(s)! }

extension PlanResult {
    func port(_ description: String, family: IPFamily = .ipv4) -> ServicePortPlan? {
        plan.family(family)?.servicePorts.first { $0.name.description == description }
    }

    var descriptions: [String] { diagnostics.map(\.description) }
}

extension Array where Element == WeightedEndpoint {
    var strings: [String] { map(\.description) }
}

/// A minimal ClusterIP service manifest. `spec` lines are indented under `spec:`;
/// `ports` are flow mappings.
func serviceYAML(_ name: String, ns: String = "default", clusterIP: String = "10.96.0.10",
                 spec: [String] = [], ports: [String] = ["{name: http, port: 80, targetPort: 8080}"],
                 status: [String] = []) -> String {
    var lines = ["apiVersion: v1", "kind: Service", "metadata: {name: \(name), namespace: \(ns)}", "spec:",
                 "  clusterIP: \"\(clusterIP)\""]
    lines += spec.map { "  " + $0 }
    lines.append("  ports:")
    lines += ports.map { "  - " + $0 }
    if !status.isEmpty {
        lines.append("status:")
        lines += status.map { "  " + $0 }
    }
    return lines.joined(separator: "\n") + "\n"
}

/// An EndpointSlice manifest; `endpoints` and `ports` are flow mappings.
func sliceYAML(_ name: String, service: String?, ns: String = "default", addressType: String = "IPv4",
               annotations: [String: String] = [:], endpoints: [String],
               ports: [String] = ["{name: http, port: 8080}"]) -> String {
    var lines = ["apiVersion: discovery.k8s.io/v1", "kind: EndpointSlice", "metadata:", "  name: \(name)",
                 "  namespace: \(ns)"]
    if let service { lines.append("  labels: {kubernetes.io/service-name: \(service)}") }
    if !annotations.isEmpty {
        lines.append("  annotations:")
        lines += annotations.sorted { $0.key < $1.key }.map { "    \($0.key): \"\($0.value)\"" }
    }
    lines.append("addressType: \(addressType)")
    lines.append("endpoints:")
    lines += endpoints.map { "  - " + $0 }
    lines.append("ports:")
    lines += ports.map { "  - " + $0 }
    return lines.joined(separator: "\n") + "\n"
}

/// Joins manifests into one multi-document YAML stream.
func docs(_ manifests: String...) -> String { manifests.joined(separator: "---\n") }
