import SluiceIR

/// The seam between the sync loop and the kernel: everything the daemon asks of nf_tables
/// and conntrack. `NftablesApplier` is the real one (netlink); `FakeDataplane` behaves like
/// the kernel in memory (atomic transactions, dangling references refused, every
/// transaction recorded) so that the sync loop, the sources, health and metrics are tested
/// without root.
public protocol Dataplane: AnyObject {
    /// What this dataplane believes the kernel holds (without elements when it does not
    /// track them; see `NftablesApplier.tracksElements`).
    var committed: Ruleset { get }
    /// The generation id after this dataplane's last commit (nil before the first).
    var expectedGeneration: UInt32? { get }
    /// Whether nobody else can write the tables (`TableOwnership`): no drift to watch for.
    var ownsTables: Bool { get }
    /// Why ownership was given up after it was taken (an existing table could not be claimed).
    var ownershipLost: String? { get }
    /// The kernel's current generation id (cheap: a changed id means someone wrote).
    func currentGeneration() throws -> UInt32
    /// Reads the tables back and takes them as committed state (restart adoption); returns
    /// foreign content the IR cannot express.
    @discardableResult
    func adopt(tables: [(Family, String)], desired: Ruleset?) throws -> [String]
    /// Takes one table from whatever the kernel holds to `skeleton` plus `elements`,
    /// committing only the difference, without holding the whole table in memory
    /// (`NftablesApplier.reconcile`).
    @discardableResult
    func reconcile(_ skeleton: Table, elements: some ElementSource) throws -> ApplyReport
    /// Commits a transaction computed elsewhere (the O(change) path) as one batch.
    @discardableResult
    func apply(transaction: Transaction) throws -> ApplyReport
    /// Commits the transactions `produce` hands to `send`, in order, each atomically
    /// (a streamed cold start); see `NftablesApplier.applyStreamed`.
    @discardableResult
    func applyStreamed(depth: Int, tables: [(Family, String)],
                       _ produce: (_ send: (Transaction) throws -> Void) throws -> Void) throws -> ApplyReport
    /// Deletes dynamic-set elements `isValid` rejects; returns how many.
    @discardableResult
    func purgeDynamicElements(_ family: Family, _ table: String, set: SetDecl,
                              isValid: ([Datum], [Datum]) -> Bool) throws -> Int
    /// The element counters of a set declared with `counter` (e.g. `service-connections`).
    func readCounters(_ family: Family, _ table: String, set: SetDecl) throws -> [[Datum]: ElementCounter]
    /// The conntrack entries of one family and protocol.
    func conntrackFlows(family: Family, proto: UInt8) throws -> [ConntrackFlow]
    /// Deletes one conntrack entry; false if it was gone already.
    func deleteConntrack(_ flow: ConntrackFlow) throws -> Bool
    /// Deletes the named tables that exist; returns their families.
    func deleteTablesIgnoringMissing(_ tables: [(Family, String)]) throws -> [Family]
}

extension NftablesApplier: Dataplane {
    public func readCounters(_ family: Family, _ table: String, set: SetDecl) throws -> [[Datum]: ElementCounter] {
        try socket.readCounters(family, table, set: set)
    }

    public func conntrackFlows(family: Family, proto: UInt8) throws -> [ConntrackFlow] {
        try socket.conntrackFlows(family: family, proto: proto)
    }

    public func deleteConntrack(_ flow: ConntrackFlow) throws -> Bool {
        try socket.deleteConntrack(flow)
    }
}
