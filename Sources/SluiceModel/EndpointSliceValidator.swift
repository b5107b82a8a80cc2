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
        validate(slice, file: file, sharingPlacements: ValidatedEndpointSlice.Placement.make)
    }

    /// Gives the placement of an endpoint with these `nodeName`, `zone`, zone hints and node
    /// hints (nil when all are empty).
    public typealias PlacementSharing = (_ nodeName: String?, _ zone: String?, _ zoneHints: [String], _ nodeHints: [String])
        -> ValidatedEndpointSlice.Placement?

    /// `validate(_:file:)`, each kept endpoint's placement taken from `share` as the endpoint
    /// is built (the planner's `NameInterner`: one shared placement per distinct value, with
    /// no second pass that would copy the endpoints).
    public func validate(_ slice: EndpointSlice, file: String? = nil,
                         sharingPlacements share: PlacementSharing) -> (EndpointSliceValidationOutcome, [Diagnostic]) {
        var run = EndpointSliceValidationRun(slice: slice, file: file)
        let outcome = run.validate(slice, sharingPlacements: share)
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

/// The state of validating one EndpointSlice (the slice itself is passed along, borrowed:
/// a stored copy would retain each of its strings, arrays and dictionaries once more).
struct EndpointSliceValidationRun {
    let ctx: DiagnosticContext
    var diagnostics: [Diagnostic] = []

    init(slice: EndpointSlice, file: String?) {
        self.ctx = DiagnosticContext(file: file, kind: "EndpointSlice", namespace: slice.metadata.namespace ?? "default",
                                     name: slice.metadata.name)
    }

    private mutating func error(_ field: String?, _ message: String) { diagnostics.append(ctx.error(field, message)) }
    private mutating func warning(_ field: String?, _ message: String) { diagnostics.append(ctx.warning(field, message)) }

    mutating func validate(_ slice: EndpointSlice, sharingPlacements share: EndpointSliceValidator.PlacementSharing) -> EndpointSliceValidationOutcome {
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
                                             ports: validPorts(slice), endpoints: validEndpoints(slice, family: family, sharingPlacements: share),
                                             weight: weight))
    }

    private mutating func validPorts(_ slice: EndpointSlice) -> [ValidatedEndpointSlice.Port] {
        var out: [ValidatedEndpointSlice.Port] = []
        for (i, p) in (slice.ports ?? []).enumerated() {
            var field: String { "ports[\(i)]" }   // built for a diagnostic only
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

    private mutating func validEndpoints(_ slice: EndpointSlice, family: IPFamily,
                                         sharingPlacements share: EndpointSliceValidator.PlacementSharing) -> [ValidatedEndpointSlice.Endpoint] {
        var out: [ValidatedEndpointSlice.Endpoint] = []
        let endpoints = slice.endpoints ?? []
        out.reserveCapacity(endpoints.count)   // held for the slice's life: no growth slack
        for i in endpoints.indices {
            // Fields are read in place (`endpoints[i]`), not from a copy of each endpoint.
            guard let first = endpoints[i].addresses?.first else {
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
            let c = endpoints[i].conditions
            out.append(ValidatedEndpointSlice.Endpoint(
                address: ip,
                ready: c?.ready ?? true,
                serving: c?.serving ?? true,
                terminating: c?.terminating ?? false,
                placement: share(endpoints[i].nodeName.flatMap { $0.isEmpty ? nil : $0 },
                                 endpoints[i].zone.flatMap { $0.isEmpty ? nil : $0 },
                                 endpoints[i].hints?.forZones?.compactMap(\.name) ?? [],
                                 endpoints[i].hints?.forNodes?.compactMap(\.name) ?? [])))
        }
        return out
    }
}
