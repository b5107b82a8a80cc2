import SluiceIR

/// Which ClientIP-affinity entries are still valid for a compiled table.
///
/// The datapath fills the dynamic maps `affinity` (`client . service IP . proto . port →
/// endpoint . port`) and `affinity-nodeports` (`client . proto . NodePort → endpoint . port`)
/// itself, so they are not part of the compiled state. When an endpoint leaves a service (or
/// the service loses affinity), kube-proxy deletes that endpoint's affinity set at once;
/// Sluice deletes the entries this type rejects (see `NftablesApplier.purgeDynamicElements`).
/// An entry is valid while its service tuple is in an `affinity-<seconds>` class and its
/// endpoint is still one of the tuple's slot endpoints.
public struct AffinityValidity: Sendable {
    /// Service tuple → endpoint data reachable from it.
    private var serviceEndpoints: [[Datum]: Set<[Datum]>] = [:]
    /// NodePort tuple → endpoint data.
    private var nodePortEndpoints: [[Datum]: Set<[Datum]>] = [:]
    private var affinityTuples: Set<[Datum]> = []
    private var affinityNodePorts: Set<[Datum]> = []

    public init(table: Table) {
        for set in table.sets {
            let elems = table.elements[set.name] ?? [:]
            if set.name.hasPrefix("affinity-nodeports-") {
                affinityNodePorts.formUnion(elems.keys)
            } else if set.name.hasPrefix("affinity-") {
                affinityTuples.formUnion(elems.keys)
            }
            for kind in Layout.EndpointMapKind.allCases where set.name.hasPrefix(kind.rawValue + "-")
                && Int(set.name.dropFirst(kind.rawValue.count + 1)) != nil {
                for (key, data) in elems {
                    let tuple = Array(key.dropLast())          // drop the slot number
                    if kind.isNodePort {
                        nodePortEndpoints[tuple, default: []].insert(data)
                    } else {
                        serviceEndpoints[tuple, default: []].insert(data)
                    }
                }
            }
        }
    }

    /// The map each validity check applies to.
    public static let serviceMap = Layout.affinity
    public static let nodePortMap = Layout.affinityNodePorts

    /// `affinity` entry `client . daddr . proto . port : endpoint . port`.
    public func isValidServiceEntry(key: [Datum], data: [Datum]) -> Bool {
        let tuple = Array(key.dropFirst())
        return affinityTuples.contains(tuple) && serviceEndpoints[tuple]?.contains(data) == true
    }

    /// `affinity-nodeports` entry `client . proto . port : endpoint . port`.
    public func isValidNodePortEntry(key: [Datum], data: [Datum]) -> Bool {
        let tuple = Array(key.dropFirst())
        return affinityNodePorts.contains(tuple) && nodePortEndpoints[tuple]?.contains(data) == true
    }
}
