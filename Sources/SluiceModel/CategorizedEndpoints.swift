/// kube-proxy's `CategorizeEndpoints` (`pkg/proxy/topology.go`): which endpoints
/// Cluster-policy and Local-policy traffic use.
///
/// - Cluster endpoints (only when the port uses them): ready endpoints, filtered by topology;
///   if none, serving+terminating endpoints anywhere (topology ignored).
/// - Local endpoints (only when the port uses them): local ready; if none, local
///   serving+terminating. Topology never applies.
/// - `hasAnyEndpoints`: some endpoint is ready, or serving and terminating.
///
/// Topology mode: PreferSameNode when every ready endpoint has node hints and one names this
/// node (the `PreferSameTrafficDistribution` gate is treated as on); else PreferSameZone when
/// every ready endpoint has zone hints and one names this node's zone; else none.
public struct CategorizedEndpoints: Sendable, Hashable {
    public var clusterEndpoints: [Endpoint]
    public var localEndpoints: [Endpoint]
    public var hasAnyEndpoints: Bool
    public var topologyMode: TopologyMode

    /// The hint filter chosen for Cluster endpoints.
    public enum TopologyMode: String, Sendable, Hashable {
        case none = ""
        case preferSameNode = "PreferSameNode"
        case preferSameZone = "PreferSameZone"
    }

    public init(endpoints: [Endpoint], usesClusterEndpoints: Bool, usesLocalEndpoints: Bool,
                nodeName: String, zone: String?) {
        clusterEndpoints = []
        localEndpoints = []
        hasAnyEndpoints = false
        topologyMode = .none
        guard !endpoints.isEmpty else { return }
        if usesClusterEndpoints {
            topologyMode = Self.topologyMode(endpoints, nodeName: nodeName, zone: zone)
            let mode = topologyMode
            clusterEndpoints = Self.kept(endpoints) { $0.ready && Self.available($0, mode: mode, nodeName: nodeName, zone: zone) }
            if clusterEndpoints.isEmpty {
                clusterEndpoints = Self.kept(endpoints) { $0.serving && $0.terminating }
            }
            hasAnyEndpoints = !clusterEndpoints.isEmpty
        }
        guard usesLocalEndpoints else { return }
        hasAnyEndpoints = hasAnyEndpoints || endpoints.contains { $0.ready || ($0.serving && $0.terminating) }
        localEndpoints = Self.kept(endpoints) { $0.isLocal && $0.ready }
        if localEndpoints.isEmpty {
            localEndpoints = Self.kept(endpoints) { $0.isLocal && $0.serving && $0.terminating }
        }
    }

    /// `endpoints.filter(isIncluded)`, sharing `endpoints` when every one is kept (usually
    /// all are ready): no copy of the list.
    static func kept(_ endpoints: [Endpoint], where isIncluded: (Endpoint) -> Bool) -> [Endpoint] {
        guard let first = endpoints.firstIndex(where: { !isIncluded($0) }) else { return endpoints }
        var out = Array(endpoints[..<first])
        out += endpoints[(first + 1)...].filter(isIncluded)
        return out
    }

    /// kube-proxy's `topologyModeFromHints`.
    public static func topologyMode(_ endpoints: [Endpoint], nodeName: String, zone: String?) -> TopologyMode {
        let ready = endpoints.lazy.filter(\.ready)
        guard !ready.isEmpty else { return .none }
        if ready.allSatisfy({ !$0.nodeHints.isEmpty }) && ready.contains(where: { $0.nodeHints.contains(nodeName) }) {
            return .preferSameNode
        }
        if let zone, ready.allSatisfy({ !$0.zoneHints.isEmpty }) && ready.contains(where: { $0.zoneHints.contains(zone) }) {
            return .preferSameZone
        }
        return .none
    }

    /// kube-proxy's `availableForTopology`.
    static func available(_ e: Endpoint, mode: TopologyMode, nodeName: String, zone: String?) -> Bool {
        switch mode {
        case .none: true
        case .preferSameNode: e.nodeHints.contains(nodeName)
        case .preferSameZone: zone.map { e.zoneHints.contains($0) } ?? false
        }
    }
}
