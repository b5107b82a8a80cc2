import SluiceTestSupport

/// The API objects of the cluster test as JSON, written the way the cluster's controllers
/// would write them: Nodes as the kubelet registers them, EndpointSlices as the EndpointSlice
/// controller keeps them (one per service, conditions and node names filled in).
enum ClusterManifests {
    /// One pod behind a service: its address, its node and its EndpointSlice conditions.
    struct Endpoint: Sendable, Hashable {
        var address: String
        var node: Int
        var ready = true
        var serving = true
        var terminating = false

        /// Ready (serving, not terminating).
        static func ready(_ address: String, on node: Int) -> Endpoint { Endpoint(address: address, node: node) }

        /// Not ready yet (a pod still starting).
        func starting() -> Endpoint { with(ready: false, serving: false, terminating: false) }
        /// Terminating and still serving (its grace period).
        func terminatingServing() -> Endpoint { with(ready: false, serving: true, terminating: true) }
        /// Terminating, no longer serving.
        func terminatingStopped() -> Endpoint { with(ready: false, serving: false, terminating: true) }

        private func with(ready: Bool, serving: Bool, terminating: Bool) -> Endpoint {
            var e = self
            e.ready = ready
            e.serving = serving
            e.terminating = terminating
            return e
        }

        var json: String {
            #"{"addresses":["\#(address)"],"conditions":{"ready":\#(ready),"serving":\#(serving),"terminating":\#(terminating)},"#
                + #""nodeName":"node-\#(node)","targetRef":{"kind":"Pod","namespace":"default","name":"pod-\#(address)"}}"#
        }
    }

    /// The ServiceCIDR the services' ClusterIPs come from.
    static let serviceCIDR = #"{"apiVersion":"networking.k8s.io/v1","kind":"ServiceCIDR","metadata":{"name":"kubernetes"},"spec":{"cidrs":["10.96.0.0/16"]}}"#

    /// A Node: its InternalIP on the LAN, its pod CIDR, and `ToBeDeletedByClusterAutoscaler`
    /// when the cluster autoscaler is about to remove it.
    static func node(_ n: ClusterTopology.Node, toBeDeleted: Bool = false) -> String {
        let taints = toBeDeleted ? #","taints":[{"key":"ToBeDeletedByClusterAutoscaler","value":"1733480000","effect":"NoSchedule"}]"# : ""
        return #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"\#(n.name)","labels":{"kubernetes.io/hostname":"\#(n.name)"}},"#
            + #""spec":{"podCIDR":"\#(n.podCIDR)","podCIDRs":["\#(n.podCIDR)"]\#(taints)},"#
            + #""status":{"addresses":[{"type":"InternalIP","address":"\#(n.address)"},{"type":"Hostname","address":"\#(n.name)"}]}}"#
    }

    /// A Service with one TCP port (80 → 8080, `nodePort`): `NodePort` with the Cluster
    /// policy, or with `healthCheckNodePort` a `LoadBalancer` with externalTrafficPolicy Local.
    static func service(_ name: String, clusterIP: String, nodePort: Int, healthCheckNodePort: Int? = nil) -> String {
        let policy = healthCheckNodePort.map { #""type":"LoadBalancer","externalTrafficPolicy":"Local","healthCheckNodePort":\#($0),"# }
            ?? #""type":"NodePort","externalTrafficPolicy":"Cluster","#
        return #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"\#(name)","namespace":"default"},"spec":{\#(policy)"#
            + #""clusterIP":"\#(clusterIP)","clusterIPs":["\#(clusterIP)"],"ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","#
            + #""selector":{"app":"\#(name)"},"#
            + #""ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080,"nodePort":\#(nodePort)}]}}"#
    }

    /// The service's one EndpointSlice.
    static func slice(_ service: String, _ endpoints: [Endpoint]) -> String {
        #"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"\#(service)-1","namespace":"default","#
            + #""labels":{"kubernetes.io/service-name":"\#(service)","endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io"}},"#
            + #""addressType":"IPv4","endpoints":[\#(endpoints.map(\.json).joined(separator: ","))],"#
            + #""ports":[{"name":"http","protocol":"TCP","port":8080}]}"#
    }
}
