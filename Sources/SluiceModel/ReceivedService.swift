/// What `IncrementalPlanner` keeps of a Service it received, instead of the object: enough to
/// validate it again for other ServiceCIDRs (the one input of `ServiceValidator` that changes
/// while the planner runs) with the outcome and diagnostics that validating the object again
/// would give, and to tell a re-delivered Service from a changed one.
///
/// The ServiceCIDR check is the last check on each ClusterIP; it rejects the whole Service with
/// one error, for the first ClusterIP (in spec order) outside every CIDR of its family, and
/// changes nothing else. So a Service that is valid without it is kept validated (`valid`): for
/// any CIDRs it is that same validated Service with the same diagnostics, or it is rejected
/// with that one error (on a valid Service no check before it reports anything). A Service
/// rejected even without it is kept as received: other CIDRs may stop it at an earlier
/// ClusterIP instead of at a later check, and only the object tells which error comes.
enum ReceivedService: Sendable, Hashable {
    /// Valid but for the ServiceCIDR check.
    case valid(ValidatedService, ServiceValidationNotes)
    /// ExternalName or headless: decided before any ClusterIP check, with no diagnostic.
    case skipped(SkippedService)
    /// Rejected without the ServiceCIDR check: kept as received (such Services are few).
    case rejected(Service, file: String?)
    /// Another proxy's (outside `ProxyPlanner.matchesProxySelector`): never validated.
    case ignored
}

/// What validating a valid Service again needs besides its validated form: whether its
/// ClusterIPs came from `spec.clusterIPs` (an error then names `spec.clusterIPs[i]`, else
/// `spec.clusterIP`), and the validation's diagnostics (warnings, entries left out), which
/// every validation reports again.
struct ServiceValidationNotes: Sendable, Hashable {
    var listsClusterIPs: Bool
    var diagnostics: [Diagnostic]
}

extension ServiceValidator {
    /// The form `IncrementalPlanner` keeps of a Service of its proxy: validated without the
    /// ServiceCIDR check, which `validate(_:)` runs.
    func receive(_ service: Service, file: String?) -> ReceivedService {
        var withoutCIDRs = self
        withoutCIDRs.serviceCIDRs = []
        let (outcome, diagnostics) = withoutCIDRs.validate(service, file: file)
        switch outcome {
        case .valid(let v):
            let listed = !(service.spec.clusterIPs ?? []).isEmpty
            return .valid(v, ServiceValidationNotes(listsClusterIPs: listed, diagnostics: diagnostics))
        case .skipped(let s):
            assert(diagnostics.isEmpty, "a skipped Service has no diagnostic")
            return .skipped(s)
        case .rejected:
            return .rejected(service, file: file)
        }
    }

    /// What validating the received Service with this validator's ServiceCIDRs gives: the
    /// same outcome and diagnostics as `validate(_:file:)` of the object. Nil for another
    /// proxy's Service.
    func validate(_ received: ReceivedService) -> (ServiceValidationOutcome, [Diagnostic])? {
        switch received {
        case .valid(let service, let notes): checkServiceCIDRs(service, notes)
        case .skipped(let s): (.skipped(s), [])
        case .rejected(let service, let file): validate(service, file: file)
        case .ignored: nil
        }
    }

    /// The ServiceCIDR check of a Service that passed every other check.
    private func checkServiceCIDRs(_ service: ValidatedService,
                                   _ notes: ServiceValidationNotes) -> (ServiceValidationOutcome, [Diagnostic]) {
        for (i, ip) in service.clusterIPs.enumerated() {
            guard let message = serviceCIDRError(ip) else { continue }
            let field = notes.listsClusterIPs ? "spec.clusterIPs[\(i)]" : "spec.clusterIP"
            let ctx = DiagnosticContext(file: service.file, kind: "Service", namespace: service.name.namespace,
                                        name: service.name.name)
            return (.rejected, [ctx.error(field, message)])
        }
        return (.valid(service), notes.diagnostics)
    }
}
