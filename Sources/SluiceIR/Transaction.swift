/// A transaction is plain data: an ordered list of (verb, object) operations that the kernel
/// commits atomically. It renders to an `nft -f` script and lowers to one netlink batch.
public enum Operation: Sendable, Hashable, Codable {
    /// `add table <family> <name> { comment "…" ; }`
    case addTable(Family, String, comment: String?)
    /// `delete table <family> <name>`
    case deleteTable(Family, String)
    /// `add chain <family> <table> <name> { [type … hook … priority …; policy accept;] }`
    case addChain(Family, String, Chain)
    /// `flush chain <family> <table> <name>`
    case flushChain(Family, String, String)
    /// `delete chain <family> <table> <name>`
    case deleteChain(Family, String, String)
    /// `add rule <family> <table> <chain> …`
    case addRule(Family, String, chain: String, Rule)
    /// `add set|map <family> <table> <name> { … }`
    case addSet(Family, String, SetDecl)
    /// `delete set|map <family> <table> <name>`
    case deleteSet(Family, String, SetDecl)
    /// `add element <family> <table> <set> { … }`
    case addElements(Family, String, set: SetDecl, [Element])
    /// `delete element <family> <table> <set> { keys… }`
    case deleteElements(Family, String, set: SetDecl, [Element])

    /// How many kernel objects this operation creates, deletes or flushes
    /// (each element counts as one).
    public var objectCount: Int {
        switch self {
        case .addElements(_, _, _, let e), .deleteElements(_, _, _, let e): return e.count
        default: return 1
        }
    }

    /// True for operations that touch only set or map elements.
    public var isElementOperation: Bool {
        switch self {
        case .addElements, .deleteElements: return true
        default: return false
        }
    }
}

/// An ordered, atomic batch of operations.
public struct Transaction: Sendable, Hashable, Codable {
    public var operations: [Operation]

    public init(_ operations: [Operation] = []) { self.operations = operations }

    public var isEmpty: Bool { operations.isEmpty }
    /// Total objects touched (elements counted one by one), as knftables' `NumOperations`.
    public var objectCount: Int { operations.reduce(0) { $0 + $1.objectCount } }
    /// True if every operation is an element add or delete.
    public var isElementsOnly: Bool { operations.allSatisfy(\.isElementOperation) }

    public static func + (a: Transaction, b: Transaction) -> Transaction {
        Transaction(a.operations + b.operations)
    }
}
