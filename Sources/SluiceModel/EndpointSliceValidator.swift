/// Validates one EndpointSlice.
///
/// Whole-slice errors: no name, no `kubernetes.io/service-name` label, unknown
/// `addressType`. A bad `sluice.dev/weight` is reported and the default weight used, so a
/// typo never takes a service's endpoints away. Entry errors (only that entry is dropped, as
/// kube-proxy skips it): a port with a bad number or protocol, an endpoint without a valid
/// first address, whose address is of the other family, or is loopback, multicast,
/// unspecified or broadcast. A port without a number ("all
/// ports") is ignored with a warning, as kube-proxy does. `addressType: FQDN` is ignored.
public struct EndpointSliceValidator: Sendable {
    public static let minWeight = 0
    public static let maxWeight = 1000
    public static let defaultWeight: UInt32 = 1

    public init() {}

    public func validate(_ slice: EndpointSlice, file: String? = nil) -> (EndpointSliceValidationOutcome, [Diagnostic]) {
        var run = EndpointSliceValidationRun(slice: slice, file: file)
        let outcome = run.validate()
        return (outcome, run.diagnostics)
    }

    /// Parses the weight annotation text: an integer 0…1000 (spaces allowed).
    public static func parseWeight(_ text: String) -> UInt32? {
        let t = text.trimmingSpaces
        guard !t.isEmpty, t.allSatisfy(\.isASCIIDigit), t.count <= 4, let v = Int(t),
              (minWeight...maxWeight).contains(v) else { return nil }
        return UInt32(v)
    }
}

/// The state of validating one EndpointSlice.
struct EndpointSliceValidationRun {
    let slice: EndpointSlice
    let ctx: DiagnosticContext
    var diagnostics: [Diagnostic] = []

    init(slice: EndpointSlice, file: String?) {
        self.slice = slice
        self.ctx = DiagnosticContext(file: file, kind: "EndpointSlice", namespace: slice.metadata.namespace ?? "default",
                                     name: slice.metadata.name)
    }

    private mutating func error(_ field: String?, _ message: String) { diagnostics.append(ctx.error(field, message)) }
    private mutating func warning(_ field: String?, _ message: String) { diagnostics.append(ctx.warning(field, message)) }

    mutating func validate() -> EndpointSliceValidationOutcome {
        guard let name = slice.metadata.name, !name.isEmpty else {
            error("metadata.name", "is required")
            return .rejected
        }
        guard let service = slice.serviceName else {
            error("metadata.labels[\"\(WellKnownKeys.serviceName)\"]", "is missing; the slice belongs to no Service")
            return .rejected
        }
        let family: IPFamily
        switch slice.addressType {
        case "IPv4": family = .ipv4
        case "IPv6": family = .ipv6
        case "FQDN": return .ignored
        case let other:
            error("addressType", other.map { "\"\($0)\" is not one of IPv4, IPv6, FQDN" } ?? "is required")
            return .rejected
        }
        var weight = EndpointSliceValidator.defaultWeight
        if let text = slice.metadata.annotation(WellKnownKeys.weight) {
            // A typo must not take every endpoint of the slice away: the default weight is used.
            if let w = EndpointSliceValidator.parseWeight(text) {
                weight = w
            } else {
                error("metadata.annotations[\"\(WellKnownKeys.weight)\"]",
                      "\"\(text)\" is not an integer \(EndpointSliceValidator.minWeight)-\(EndpointSliceValidator.maxWeight); weight \(EndpointSliceValidator.defaultWeight) used")
            }
        }
        return .valid(ValidatedEndpointSlice(sliceName: name, service: service, file: ctx.file, family: family,
                                             ports: validPorts(), endpoints: validEndpoints(family: family),
                                             weight: weight))
    }

    private mutating func validPorts() -> [ValidatedEndpointSlice.Port] {
        var out: [ValidatedEndpointSlice.Port] = []
        for (i, p) in (slice.ports ?? []).enumerated() {
            let field = "ports[\(i)]"
            let protoText = p.protocol.flatMap { $0.isEmpty ? nil : $0 } ?? "TCP"
            guard let proto = L4Protocol(rawValue: protoText) else {
                error("\(field).protocol", "unknown protocol \"\(protoText)\" (expected TCP, UDP or SCTP); port ignored")
                continue
            }
            guard let port = p.port, port != 0 else {
                warning("\(field).port", "no port number (\"all ports\" is not supported by kube-proxy); port ignored")
                continue
            }
            guard (1...65535).contains(port) else {
                error("\(field).port", "\(port) is outside 1-65535; port ignored")
                continue
            }
            out.append(ValidatedEndpointSlice.Port(name: p.name ?? "", proto: proto, port: UInt16(port)))
        }
        return out
    }

    private mutating func validEndpoints(family: IPFamily) -> [ValidatedEndpointSlice.Endpoint] {
        var out: [ValidatedEndpointSlice.Endpoint] = []
        out.reserveCapacity(slice.endpoints?.count ?? 0)   // held for the slice's life: no growth slack
        for (i, e) in (slice.endpoints ?? []).enumerated() {
            guard let first = e.addresses?.first else {
                error("endpoints[\(i)].addresses", "is empty; endpoint ignored")
                continue
            }
            guard let ip = IPAddress(first) else {
                error("endpoints[\(i)].addresses[0]", "\"\(first)\" is not a valid IP address; endpoint ignored")
                continue
            }
            guard ip.family == family else {
                error("endpoints[\(i)].addresses[0]", "\(ip) is not an \(family.rawValue) address (addressType \(family.rawValue)); endpoint ignored")
                continue
            }
            if let reason = ip.specialUseReason {
                error("endpoints[\(i)].addresses[0]", "\(ip) is \(reason), never a pod or node address; endpoint ignored")
                continue
            }
            let c = e.conditions
            out.append(ValidatedEndpointSlice.Endpoint(
                address: ip,
                ready: c?.ready ?? true,
                serving: c?.serving ?? true,
                terminating: c?.terminating ?? false,
                nodeName: e.nodeName.flatMap { $0.isEmpty ? nil : $0 },
                zone: e.zone.flatMap { $0.isEmpty ? nil : $0 },
                zoneHints: (e.hints?.forZones ?? []).compactMap(\.name),
                nodeHints: (e.hints?.forNodes ?? []).compactMap(\.name)))
        }
        return out
    }
}
