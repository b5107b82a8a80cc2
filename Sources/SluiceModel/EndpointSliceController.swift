/// Kubernetes vocabulary: what kube-controller-manager's EndpointSlice controller makes of a
/// selector Service and the Pods it selects, for manifests that give Pods instead of
/// EndpointSlices. The planner plans the slices it returns like any other (`IncrementalPlanner`
/// uses them for a selector Service that has no EndpointSlice of its own). The rules are the
/// controller's (`pkg/controller/endpointslice`, `podToEndpoint`, `getEndpointPorts`):
/// - one slice per family of the service and per set of resolved ports (pods whose ports
///   resolve alike share a slice), named `<service>-pods-ipv4` (`-ipv6`; `-ipv4-2`, … for
///   further port sets); a pod whose ports resolve to none is in no slice;
/// - a pod is an endpoint of a family when it has an address of that family (`status.podIPs`);
/// - `serving` = the `Ready` condition; `terminating` = `metadata.deletionTimestamp` is set;
///   `ready` = serving and not terminating; with `publishNotReadyAddresses` every pod with an
///   address is ready and serving;
/// - `nodeName` is `spec.nodeName`, `zone` that Node's `topology.kubernetes.io/zone` label;
/// - `spec.trafficDistribution` gives hints (`TrafficDistribution.hints`): `PreferClose` and
///   `PreferSameZone` the endpoint's zone, `PreferSameNode` its node and zone;
/// - a numeric `targetPort` is used as is (absent: the service port); a named one is the pod's
///   container port of that name and the service port's protocol, and a pod without one is
///   left out of that service port.
public enum EndpointSliceController {
    /// The slices of `service` for the `pods` its selector matched (in any order). `zone`
    /// gives a node's zone, nil when the Node or its label is unknown.
    public static func slices(for service: ValidatedService, selection: PodSelection, pods: [ValidatedPod],
                              zone: (String) -> String?) -> [ValidatedEndpointSlice] {
        let pods = pods.sorted { $0.name < $1.name }
        return service.families.sorted().flatMap { family in
            slices(for: service, family: family, selection: selection, pods: pods, zone: zone)
        }
    }

    /// The name of the `group`-th (from 1) derived slice of a family.
    public static func sliceName(service: String, family: IPFamily, group: Int) -> String {
        let base = "\(service)-pods-\(family.rawValue.lowercased())"
        return group == 1 ? base : "\(base)-\(group)"
    }

    /// One family's slices: the pods with an address of it, grouped by their resolved ports.
    private static func slices(for service: ValidatedService, family: IPFamily, selection: PodSelection,
                               pods: [ValidatedPod], zone: (String) -> String?) -> [ValidatedEndpointSlice] {
        var groups: [[ValidatedEndpointSlice.Port]: ValidatedEndpointSlice] = [:]
        var order: [[ValidatedEndpointSlice.Port]] = []
        for pod in pods {
            guard let address = pod.addresses.first(where: { $0.family == family }) else { continue }
            let ports = self.ports(of: service, for: pod)
            guard !ports.isEmpty else { continue }
            if groups[ports] == nil {
                order.append(ports)
                groups[ports] = ValidatedEndpointSlice(
                    sliceName: sliceName(service: service.name.name, family: family, group: order.count),
                    service: service.name, file: service.file, family: family, ports: ports, endpoints: [], pods: [])
            }
            groups[ports]!.endpoints.append(endpoint(pod, address: address, selection: selection, zone: zone))
            groups[ports]!.pods!.append(pod.reference)
        }
        return order.map { groups[$0]! }
    }

    /// The pod's endpoint (`podToEndpoint`).
    static func endpoint(_ pod: ValidatedPod, address: IPAddress, selection: PodSelection,
                         zone: (String) -> String?) -> ValidatedEndpointSlice.Endpoint {
        let publish = selection.publishNotReadyAddresses
        let serving = publish || pod.ready
        let podZone = pod.nodeName.flatMap(zone)
        let hints = selection.trafficDistribution?.hints(node: pod.nodeName, zone: podZone) ?? (zones: [], nodes: [])
        return ValidatedEndpointSlice.Endpoint(
            address: address, ready: publish || (serving && !pod.terminating), serving: serving,
            terminating: pod.terminating, nodeName: pod.nodeName, zone: podZone, zoneHints: hints.zones, nodeHints: hints.nodes)
    }

    /// The service ports the pod serves, with the pod's port numbers (`getEndpointPorts`).
    static func ports(of service: ValidatedService, for pod: ValidatedPod) -> [ValidatedEndpointSlice.Port] {
        service.ports.compactMap { port in
            targetPort(port, on: pod).map { ValidatedEndpointSlice.Port(name: port.name, proto: port.proto, port: $0) }
        }
    }

    /// `podutil.FindPort`: a number as is, a name looked up among the pod's container ports.
    static func targetPort(_ port: ValidatedService.Port, on pod: ValidatedPod) -> UInt16? {
        switch port.targetPort {
        case nil: return port.port
        case .int(let n)?: return UInt16(exactly: n)
        case .string(let name)?:
            if name.isEmpty { return port.port }
            if let n = UInt16(name), n > 0 { return n }
            return pod.port(named: name, proto: port.proto)
        }
    }
}
