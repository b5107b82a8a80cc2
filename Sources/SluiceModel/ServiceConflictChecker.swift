/// The cross-service pass: two services may not claim the same ClusterIP, nor the same
/// NodePort for the same protocol. Services are visited in `namespace/name` order and the
/// later claimant is rejected as a whole (with one diagnostic).
///
/// A daemon can keep a `ServiceConflictChecker` and re-run `check` on the full list after
/// a change; it is a single O(services) pass over small dictionaries.
public struct ServiceConflictChecker: Sendable {
    public init() {}

    public func check(_ services: [ValidatedService]) -> (accepted: [ValidatedService], diagnostics: [Diagnostic]) {
        var clusterIPOwner: [IPAddress: ServiceName] = [:]
        var nodePortOwner: [NodePortKey: ServiceName] = [:]
        var accepted: [ValidatedService] = []
        var diagnostics: [Diagnostic] = []
        for service in services.sorted(by: { $0.name < $1.name }) {
            if let conflict = firstConflict(service, clusterIPOwner: clusterIPOwner, nodePortOwner: nodePortOwner) {
                diagnostics.append(conflict)
                continue
            }
            for ip in service.clusterIPs { clusterIPOwner[ip] = service.name }
            for port in service.ports {
                if let np = port.nodePort { nodePortOwner[NodePortKey(port: np, proto: port.proto)] = service.name }
            }
            accepted.append(service)
        }
        return (accepted, diagnostics)
    }

    private struct NodePortKey: Hashable {
        var port: UInt16
        var proto: L4Protocol
    }

    private func firstConflict(_ service: ValidatedService, clusterIPOwner: [IPAddress: ServiceName],
                               nodePortOwner: [NodePortKey: ServiceName]) -> Diagnostic? {
        let ctx = DiagnosticContext(file: service.file, kind: "Service", namespace: service.name.namespace,
                                    name: service.name.name)
        for ip in service.clusterIPs {
            if let owner = clusterIPOwner[ip] {
                return ctx.error(service.clusterIPField(ip), "\(ip) is already the ClusterIP of Service \(owner)")
            }
        }
        for port in service.ports {
            guard let np = port.nodePort, let owner = nodePortOwner[NodePortKey(port: np, proto: port.proto)] else { continue }
            return ctx.error("spec.ports[\(port.index)].nodePort",
                             "\(np)/\(port.proto.rawValue) is already a node port of Service \(owner)")
        }
        return nil
    }
}
