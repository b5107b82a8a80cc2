/// Validates one Pod for endpoint derivation.
///
/// Whole-pod errors (the pod is left out; every other object keeps working): no name, an
/// address in `status.podIP`/`status.podIPs` that is not an IP address, or one that is never
/// a pod's (loopback, multicast, …). A pod without any address is valid and simply no
/// endpoint yet (a pending pod). Entry warnings (only that port is ignored): a named
/// container port with a bad number or protocol.
public struct PodValidator: Sendable {
    public init() {}

    public func validate(_ pod: Pod, file: String? = nil) -> (ValidatedPod?, [Diagnostic]) {
        var run = PodValidationRun(pod: pod, file: file)
        let pod = run.validate()
        return (pod, run.diagnostics)
    }
}

/// The state of validating one Pod.
struct PodValidationRun {
    let pod: Pod
    let ctx: DiagnosticContext
    var diagnostics: [Diagnostic] = []

    init(pod: Pod, file: String?) {
        self.pod = pod
        self.ctx = DiagnosticContext(file: file, kind: "Pod", namespace: pod.metadata.namespace ?? "default",
                                     name: pod.metadata.name)
    }

    mutating func validate() -> ValidatedPod? {
        guard let name = pod.metadata.name, !name.isEmpty else {
            diagnostics.append(ctx.error("metadata.name", "is required; pod left out"))
            return nil
        }
        guard let addresses = addresses() else { return nil }
        return ValidatedPod(namespace: pod.metadata.namespace ?? "default", name: name, labels: pod.metadata.labels ?? [:],
                            addresses: addresses, ready: pod.isReady, terminating: pod.metadata.deletionTimestamp != nil,
                            nodeName: pod.spec.nodeName.flatMap { $0.isEmpty ? nil : $0 }, namedPorts: namedPorts())
    }

    /// `status.podIPs` (else `status.podIP`), the first of each family; nil (pod left out)
    /// when one is not a usable address.
    private mutating func addresses() -> [IPAddress]? {
        let listed = (pod.status.podIPs ?? []).enumerated().compactMap { i, p in p.ip.map { ("status.podIPs[\(i)].ip", $0) } }
        let texts = listed.isEmpty ? pod.status.podIP.map { [("status.podIP", $0)] } ?? [] : listed
        var out: [IPAddress] = []
        for (field, text) in texts where !text.isEmpty {
            guard let ip = IPAddress(text) else {
                diagnostics.append(ctx.error(field, "\"\(text)\" is not a valid IP address; pod left out"))
                return nil
            }
            if let reason = ip.specialUseReason {
                diagnostics.append(ctx.error(field, "\(ip) is \(reason), never a pod address; pod left out"))
                return nil
            }
            if !out.contains(where: { $0.family == ip.family }) { out.append(ip) }
        }
        return out
    }

    private mutating func namedPorts() -> [ValidatedPod.NamedPort] {
        var out: [ValidatedPod.NamedPort] = []
        for (c, container) in (pod.spec.containers ?? []).enumerated() {
            for (i, p) in (container.ports ?? []).enumerated() {
                guard let name = p.name, !name.isEmpty else { continue }
                let field = "spec.containers[\(c)].ports[\(i)]"
                let protoText = p.protocol.flatMap { $0.isEmpty ? nil : $0 } ?? "TCP"
                guard let proto = L4Protocol(rawValue: protoText) else {
                    diagnostics.append(ctx.warning("\(field).protocol", "unknown protocol \"\(protoText)\"; port ignored"))
                    continue
                }
                guard let number = p.containerPort, (1...65535).contains(number) else {
                    diagnostics.append(ctx.warning("\(field).containerPort", "\(p.containerPort.map(String.init) ?? "missing"): not a port 1-65535; port ignored"))
                    continue
                }
                out.append(ValidatedPod.NamedPort(name: name, proto: proto, port: UInt16(number)))
            }
        }
        return out
    }
}
