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
///
/// Built from the whole table (`init(table:)`, O(table): full syncs) or for the tuples one
/// transaction touched (`init(table:impact:)`, O(change): routine commits; entries of other
/// tuples are left alone).
public struct AffinityValidity: Sendable {
    /// Service tuple → endpoint data reachable from it.
    private var serviceEndpoints: [[Datum]: Set<[Datum]>] = [:]
    /// NodePort tuple → endpoint data.
    private var nodePortEndpoints: [[Datum]: Set<[Datum]>] = [:]
    private var affinityTuples: Set<[Datum]> = []
    private var affinityNodePorts: Set<[Datum]> = []
    /// When set, only entries of these tuples are judged; all others are valid.
    private var restriction: Impact?

    /// The service tuples and NodePort tuples whose affinity entries a transaction may have
    /// made stale: an endpoint slot was deleted, or the tuple left its affinity class.
    public struct Impact: Sendable, Hashable {
        public var serviceTuples: Set<[Datum]> = []
        public var nodePortTuples: Set<[Datum]> = []
        /// A whole endpoint map or affinity class went away: judge every entry.
        public var everything = false
        /// Some tuple left its affinity class (the service lost ClientIP affinity).
        public var leftAClass = false

        public init() {}

        public var isEmpty: Bool { serviceTuples.isEmpty && nodePortTuples.isEmpty && !everything }

        /// What `transaction` can have made stale.
        public init(of transaction: Transaction) {
            for op in transaction.operations {
                switch op {
                case .deleteElements(_, _, let set, let elements):
                    if let kind = Layout.parseEndpointMap(set.name)?.kind {
                        for e in elements {
                            let tuple = Array(e.key.dropLast())       // drop the slot number
                            if kind.isNodePort { nodePortTuples.insert(tuple) } else { serviceTuples.insert(tuple) }
                        }
                    } else if let nodePorts = Self.affinityClass(set.name) {
                        leftAClass = leftAClass || !elements.isEmpty
                        for e in elements {
                            if nodePorts { nodePortTuples.insert(e.key) } else { serviceTuples.insert(e.key) }
                        }
                    }
                case .deleteSet(_, _, let set):
                    if Layout.parseEndpointMap(set.name) != nil || Self.affinityClass(set.name) != nil { everything = true }
                case .deleteTable:
                    everything = true
                default:
                    continue
                }
            }
        }

        /// For an `affinity-<seconds>` class set: false; `affinity-nodeports-<seconds>`: true;
        /// nil for anything else (the dynamic maps themselves included).
        static func affinityClass(_ name: String) -> Bool? {
            let np = Layout.affinityNodePorts + "-", svc = Layout.affinity + "-"
            if name.hasPrefix(np) { return UInt32(name.dropFirst(np.count)) != nil ? true : nil }
            if name.hasPrefix(svc) { return UInt32(name.dropFirst(svc.count)) != nil ? false : nil }
            return nil
        }
    }

    private init() {}

    /// Judges every entry against the whole table.
    public init(table: some ElementLookup) {
        for set in table.setNames {
            guard let nodePorts = Impact.affinityClass(set) else { continue }
            table.forEachElement(of: set) { key, _ in
                if nodePorts { affinityNodePorts.insert(key) } else { affinityTuples.insert(key) }
            }
        }
        // Without affinity tuples every entry is stale: no need to index the endpoint maps.
        guard !affinityTuples.isEmpty || !affinityNodePorts.isEmpty else { return }
        for set in table.setNames {
            guard let kind = Layout.parseEndpointMap(set)?.kind else { continue }
            table.forEachElement(of: set) { key, data in
                let tuple = Array(key.dropLast())          // drop the slot number
                guard kind.isNodePort ? affinityNodePorts.contains(tuple) : affinityTuples.contains(tuple) else { return }
                if kind.isNodePort {
                    nodePortEndpoints[tuple, default: []].insert(data)
                } else {
                    serviceEndpoints[tuple, default: []].insert(data)
                }
            }
        }
    }

    /// Judges only the entries of the tuples in `impact` (O(impact × slot classes)).
    public init(table: some ElementLookup, impact: Impact) {
        if impact.everything {
            self.init(table: table)
            return
        }
        self.init()
        restriction = impact
        for set in table.setNames {
            if let nodePorts = Impact.affinityClass(set) {
                for t in nodePorts ? impact.nodePortTuples : impact.serviceTuples where table.element(of: set, key: t) != nil {
                    if nodePorts { affinityNodePorts.insert(t) } else { affinityTuples.insert(t) }
                }
            }
            if let (kind, _, slots) = Layout.parseEndpointMap(set) {
                for t in kind.isNodePort ? impact.nodePortTuples : impact.serviceTuples {
                    for slot in 0..<slots {
                        guard let data = table.element(of: set, key: t + [.integer(slot)]) else { continue }
                        if kind.isNodePort {
                            nodePortEndpoints[t, default: []].insert(data)
                        } else {
                            serviceEndpoints[t, default: []].insert(data)
                        }
                    }
                }
            }
        }
    }

    /// False when no entry can be stale, so the dynamic maps need not even be read: only
    /// tuples in an affinity class (or that just left one) ever get entries.
    public var mayRejectEntries: Bool {
        guard let restriction else { return true }
        return restriction.everything || restriction.leftAClass || !affinityTuples.isEmpty || !affinityNodePorts.isEmpty
    }

    /// The map each validity check applies to.
    public static let serviceMap = Layout.affinity
    public static let nodePortMap = Layout.affinityNodePorts

    /// `affinity` entry `client . daddr . proto . port : endpoint . port`.
    public func isValidServiceEntry(key: [Datum], data: [Datum]) -> Bool {
        let tuple = Array(key.dropFirst())
        if let restriction, !restriction.serviceTuples.contains(tuple) { return true }
        return affinityTuples.contains(tuple) && serviceEndpoints[tuple]?.contains(data) == true
    }

    /// `affinity-nodeports` entry `client . proto . port : endpoint . port`.
    public func isValidNodePortEntry(key: [Datum], data: [Datum]) -> Bool {
        let tuple = Array(key.dropFirst())
        if let restriction, !restriction.nodePortTuples.contains(tuple) { return true }
        return affinityNodePorts.contains(tuple) && nodePortEndpoints[tuple]?.contains(data) == true
    }
}

/// Read access to a table's elements by set name: an IR `Table`, or an
/// `IncrementalCompiler`'s packed store (the daemon keeps no other copy).
public protocol ElementLookup {
    /// Names of the sets that may hold elements.
    var setNames: [String] { get }
    /// The data of `key` in `set` (empty for a plain set's element); nil if absent.
    func element(of set: String, key: [Datum]) -> [Datum]?
    func forEachElement(of set: String, _ body: ([Datum], [Datum]) -> Void)
}

extension Table: ElementLookup {
    public var setNames: [String] { sets.map(\.name) }
    public func element(of set: String, key: [Datum]) -> [Datum]? { elements[set]?[key] }
    public func forEachElement(of set: String, _ body: ([Datum], [Datum]) -> Void) {
        for (k, v) in elements[set] ?? [:] { body(k, v) }
    }
}
