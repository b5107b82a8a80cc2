/// Validates one Service on its own (cross-service checks live in `ServiceConflictChecker`).
///
/// Whole-object errors (the Service is left out, as the API server would refuse it): bad or
/// duplicate ClusterIPs, ClusterIP outside every ServiceCIDR of its family, port numbers,
/// protocols, duplicate ports, nodePort outside the node-port range, bad affinity timeout,
/// unknown type / policy values. Entry errors (only the entry is dropped, as kube-proxy does
/// with an event): bad `externalIPs`, LB ingress IPs and `loadBalancerSourceRanges`.
/// With externalIPs disabled (`--allow-external-ips=false`) a Service's `spec.externalIPs`
/// are left out whole, with one warning, as if the field were empty.
public struct ServiceValidator: Sendable {
    /// `--service-node-port-range`.
    public var nodePortRange: PortRange
    /// Every ServiceCIDR (all families). A ClusterIP must lie inside one of its family's
    /// CIDRs when any CIDR of that family is given.
    public var serviceCIDRs: [CIDR]
    /// nil: `spec.externalIPs` are proxied. Else the setting that turned them off
    /// (`NodeOptions.externalIPsDisabledBy`, e.g. `--allow-external-ips=false`), named in the warning.
    public var externalIPsDisabledBy: String?

    public init(nodePortRange: PortRange = .defaultNodePortRange, serviceCIDRs: [CIDR] = [],
                externalIPsDisabledBy: String? = nil) {
        self.nodePortRange = nodePortRange
        self.serviceCIDRs = serviceCIDRs
        self.externalIPsDisabledBy = externalIPsDisabledBy
    }

    /// `sessionAffinityConfig.clientIP.timeoutSeconds` default and bounds.
    public static let defaultAffinityTimeout = 10800
    public static let maxAffinityTimeout = 86400

    public func validate(_ service: Service, file: String? = nil) -> (ServiceValidationOutcome, [Diagnostic]) {
        var run = ServiceValidationRun(service: service, file: file, validator: self)
        let outcome = run.validate()
        return (outcome, run.diagnostics)
    }

    /// The error for a ClusterIP outside every ServiceCIDR of its family (nil: inside one,
    /// or no CIDR of its family is given). The last check on each ClusterIP.
    func serviceCIDRError(_ ip: IPAddress) -> String? {
        let familyCIDRs = serviceCIDRs.filter { $0.family == ip.family }
        guard !familyCIDRs.isEmpty && !familyCIDRs.contains(where: { $0.contains(ip) }) else { return nil }
        return "\(ip) is outside every ServiceCIDR (\(familyCIDRs.map(\.description).joined(separator: ", ")))"
    }
}

/// The state of validating one Service.
struct ServiceValidationRun {
    let service: Service
    let spec: Service.Spec
    let validator: ServiceValidator
    let ctx: DiagnosticContext
    var diagnostics: [Diagnostic] = []

    init(service: Service, file: String?, validator: ServiceValidator) {
        self.service = service
        var spec = service.spec
        if validator.externalIPsDisabledBy != nil { spec.externalIPs = nil }
        self.spec = spec
        self.validator = validator
        self.ctx = DiagnosticContext(file: file, kind: "Service", namespace: service.serviceName.namespace,
                                     name: service.metadata.name)
    }

    private mutating func error(_ field: String?, _ message: String) { diagnostics.append(ctx.error(field, message)) }
    private mutating func warning(_ field: String?, _ message: String) { diagnostics.append(ctx.warning(field, message)) }

    mutating func validate() -> ServiceValidationOutcome {
        guard let name = service.metadata.name, !name.isEmpty else {
            error("metadata.name", "is required")
            return .rejected
        }
        guard let type = validateType() else { return .rejected }
        if type == .externalName {
            return .skipped(SkippedService(service: service.serviceName, reason: .externalName, target: spec.externalName))
        }
        let rawIPs = clusterIPTexts()
        if rawIPs.first?.text == "None" {
            return .skipped(SkippedService(service: service.serviceName, reason: .headless))
        }
        if rawIPs.isEmpty {
            warning("spec.clusterIP", "not set (the API server allocates it); the service is not proxied")
            return .rejected
        }
        var affinityTimeout: UInt32?
        var healthCheckNodePort: UInt16?
        guard let clusterIPs = validateClusterIPs(rawIPs),
              let ports = validatePorts(type: type),
              validateAffinity(&affinityTimeout),
              let policies = validatePolicies(type: type) else { return .rejected }
        if type == .loadBalancer && policies.externalLocal {
            guard validateHealthCheckNodePort(&healthCheckNodePort) else { return .rejected }
        }
        reportIgnoredExternalIPs()
        return .valid(ValidatedService(
            name: service.serviceName, file: ctx.file, type: type, clusterIPs: clusterIPs, ports: ports,
            externalIPs: validExternalIPs(), loadBalancerVIPs: validLoadBalancerVIPs(),
            loadBalancerSourceRanges: validSourceRanges(), affinityTimeoutSeconds: affinityTimeout,
            externalPolicyLocal: policies.externalLocal, internalPolicyLocal: policies.internalLocal,
            healthCheckNodePort: healthCheckNodePort, loadBalancing: validLoadBalancing()))
    }

    /// `sluice.dev/load-balancing`; an unknown value is a warning and falls back to `random`.
    private mutating func validLoadBalancing() -> LoadBalancing {
        guard let text = service.metadata.annotation(WellKnownKeys.loadBalancing) else { return .random }
        if let mode = LoadBalancing(rawValue: text.trimmingSpaces.lowercased()) { return mode }
        let known = LoadBalancing.allCases.map(\.rawValue).joined(separator: ", ")
        warning("metadata.annotations[\"\(WellKnownKeys.loadBalancing)\"]", "\"\(text)\" is not one of \(known); random used")
        return .random
    }

    private mutating func validateType() -> ServiceType? {
        guard let text = spec.type, !text.isEmpty else { return .clusterIP }
        guard let type = ServiceType(rawValue: text) else {
            error("spec.type", "\"\(text)\" is not one of ClusterIP, NodePort, LoadBalancer, ExternalName")
            return nil
        }
        return type
    }

    /// `(field, text)` pairs: `spec.clusterIPs`, else `spec.clusterIP`.
    private func clusterIPTexts() -> [(field: String, text: String)] {
        if let ips = spec.clusterIPs, !ips.isEmpty {
            return ips.enumerated().map { ("spec.clusterIPs[\($0.offset)]", $0.element.trimmingSpaces) }
        }
        if let ip = spec.clusterIP?.trimmingSpaces, !ip.isEmpty { return [("spec.clusterIP", ip)] }
        return []
    }

    private mutating func validateClusterIPs(_ raw: [(field: String, text: String)]) -> [IPAddress]? {
        var ips: [IPAddress] = []
        for (field, text) in raw {
            guard let ip = IPAddress(text) else {
                error(field, "\"\(text)\" is not a valid IP address")
                return nil
            }
            if let reason = ip.specialUseReason {
                error(field, "\(ip) is \(reason), never a ClusterIP; the service is not proxied")
                return nil
            }
            if ips.contains(where: { $0.family == ip.family }) {
                error(field, "\(ip): a service has at most one \(ip.family.rawValue) ClusterIP")
                return nil
            }
            if let message = validator.serviceCIDRError(ip) {
                error(field, message)
                return nil
            }
            ips.append(ip)
        }
        return ips
    }

    private mutating func validatePorts(type: ServiceType) -> [ValidatedService.Port]? {
        let specPorts = spec.ports ?? []
        var out: [ValidatedService.Port] = []
        for (i, p) in specPorts.enumerated() {
            let field = "spec.ports[\(i)]"
            guard let proto = validateProtocol(p.protocol, field: "\(field).protocol"),
                  let port = validatePortNumber(p.port, field: "\(field).port") else { return nil }
            let name = p.name ?? ""
            if name.isEmpty && specPorts.count > 1 {
                error("\(field).name", "is required when the service has more than one port")
                return nil
            }
            if let other = out.first(where: { $0.port == port && $0.proto == proto }) {
                error(field, "duplicate port \(port)/\(proto.rawValue) (also spec.ports[\(other.index)])")
                return nil
            }
            if !name.isEmpty, let other = out.first(where: { $0.name == name }) {
                error("\(field).name", "duplicate name \"\(name)\" (also spec.ports[\(other.index)])")
                return nil
            }
            if case .int(let target)? = p.targetPort, !(1...65535).contains(target) {
                error("\(field).targetPort", "\(target) is outside 1-65535")
                return nil
            }
            guard let nodePort = validateNodePort(p.nodePort, type: type, field: "\(field).nodePort") else { return nil }
            let np = nodePort == 0 ? nil : UInt16(nodePort)
            if let np, let other = out.first(where: { $0.nodePort == np && $0.proto == proto }) {
                error("\(field).nodePort", "\(np)/\(proto.rawValue) is also used by spec.ports[\(other.index)]")
                return nil
            }
            out.append(ValidatedService.Port(index: i, name: name, proto: proto, port: port, nodePort: np,
                                             targetPort: p.targetPort))
        }
        return out
    }

    private mutating func validateProtocol(_ text: String?, field: String) -> L4Protocol? {
        guard let text, !text.isEmpty else { return .tcp }
        guard let proto = L4Protocol(rawValue: text) else {
            error(field, "unknown protocol \"\(text)\" (expected TCP, UDP or SCTP)")
            return nil
        }
        return proto
    }

    private mutating func validatePortNumber(_ port: Int?, field: String) -> UInt16? {
        guard let port else {
            error(field, "is required")
            return nil
        }
        guard (1...65535).contains(port) else {
            error(field, "\(port) is outside 1-65535")
            return nil
        }
        return UInt16(port)
    }

    /// 0 means none; nil means invalid.
    private mutating func validateNodePort(_ nodePort: Int?, type: ServiceType, field: String) -> Int? {
        guard let nodePort, nodePort != 0 else { return 0 }
        guard type == .nodePort || type == .loadBalancer else {
            warning(field, "\(nodePort) ignored: only NodePort and LoadBalancer services have node ports")
            return 0
        }
        guard (1...65535).contains(nodePort) else {
            error(field, "\(nodePort) is outside 1-65535")
            return nil
        }
        guard validator.nodePortRange.contains(nodePort) else {
            error(field, "\(nodePort) is outside the node port range \(validator.nodePortRange)")
            return nil
        }
        return nodePort
    }

    /// Sets `timeout` for ClientIP affinity; false means invalid.
    private mutating func validateAffinity(_ timeout: inout UInt32?) -> Bool {
        switch spec.sessionAffinity ?? "None" {
        case "None", "":
            return true
        case "ClientIP":
            let seconds = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? ServiceValidator.defaultAffinityTimeout
            guard (1...ServiceValidator.maxAffinityTimeout).contains(seconds) else {
                error("spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                      "\(seconds) is outside 1-\(ServiceValidator.maxAffinityTimeout)")
                return false
            }
            timeout = UInt32(seconds)
            return true
        case let other:
            error("spec.sessionAffinity", "\"\(other)\" is not one of None, ClientIP")
            return false
        }
    }

    private mutating func validatePolicies(type: ServiceType) -> (externalLocal: Bool, internalLocal: Bool)? {
        guard let eTP = policy(spec.externalTrafficPolicy, field: "spec.externalTrafficPolicy"),
              let iTP = policy(spec.internalTrafficPolicy, field: "spec.internalTrafficPolicy") else { return nil }
        // apiservice.ExternallyAccessible: eTP only matters when the service is reachable from outside.
        let externallyAccessible = type == .loadBalancer || type == .nodePort
            || (type == .clusterIP && !(spec.externalIPs ?? []).isEmpty)
        return (externallyAccessible && eTP, iTP)
    }

    /// true = Local; nil = invalid.
    private mutating func policy(_ text: String?, field: String) -> Bool? {
        switch text ?? "Cluster" {
        case "Cluster", "", "Global": return false
        case "Local": return true
        case let other:
            error(field, "\"\(other)\" is not one of Cluster, Local")
            return nil
        }
    }

    /// Sets `port`; false means invalid. A missing port is only a warning (kube-proxy logs
    /// an error and serves no health check).
    private mutating func validateHealthCheckNodePort(_ port: inout UInt16?) -> Bool {
        guard let hc = spec.healthCheckNodePort, hc != 0 else {
            warning("spec.healthCheckNodePort", "not set on a LoadBalancer service with externalTrafficPolicy Local")
            return true
        }
        guard (1...65535).contains(hc) else {
            error("spec.healthCheckNodePort", "\(hc) is outside 1-65535")
            return false
        }
        port = UInt16(hc)
        return true
    }

    /// One warning when externalIPs are disabled and the Service has some (they are left
    /// out: `spec` has none).
    private mutating func reportIgnoredExternalIPs() {
        guard let setting = validator.externalIPsDisabledBy,
              let ips = service.spec.externalIPs, !ips.isEmpty else { return }
        warning("spec.externalIPs", "\(ips.joined(separator: ", ")) ignored: \(setting)")
    }

    private mutating func validExternalIPs() -> [IPAddress] {
        var out: [IPAddress] = []
        for (i, text) in (spec.externalIPs ?? []).enumerated() {
            guard let ip = IPAddress(text) else {
                error("spec.externalIPs[\(i)]", "\"\(text)\" is not a valid IP address; entry ignored")
                continue
            }
            if let reason = ip.specialUseReason {
                error("spec.externalIPs[\(i)]", "\(ip) is \(reason); entry ignored")
                continue
            }
            if !out.contains(ip) { out.append(ip) }
        }
        return out
    }

    private mutating func validLoadBalancerVIPs() -> [IPAddress] {
        var out: [IPAddress] = []
        for (i, ingress) in (service.status.loadBalancer?.ingress ?? []).enumerated() {
            guard let text = ingress.ip, !text.isEmpty else { continue }  // hostname-only ingress
            switch ingress.ipMode ?? "VIP" {
            case "VIP": break
            case "Proxy": continue  // the load balancer proxies: kube-proxy does not program it
            case let other:
                warning("status.loadBalancer.ingress[\(i)].ipMode", "\"\(other)\" is not VIP; entry ignored")
                continue
            }
            guard let ip = IPAddress(text) else {
                error("status.loadBalancer.ingress[\(i)].ip", "\"\(text)\" is not a valid IP address; entry ignored")
                continue
            }
            if let reason = ip.specialUseReason {
                error("status.loadBalancer.ingress[\(i)].ip", "\(ip) is \(reason); entry ignored")
                continue
            }
            if !out.contains(ip) { out.append(ip) }
        }
        return out
    }

    private mutating func validSourceRanges() -> [CIDR] {
        var out: [CIDR] = []
        for (i, text) in (spec.loadBalancerSourceRanges ?? []).enumerated() {
            guard text.contains("/"), let cidr = CIDR(text) else {
                error("spec.loadBalancerSourceRanges[\(i)]", "\"\(text)\" is not a valid CIDR; entry ignored")
                continue
            }
            if !out.contains(cidr) { out.append(cidr) }
        }
        return out
    }
}
