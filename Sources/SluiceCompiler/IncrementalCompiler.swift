import SluiceIR
import SluiceModel

/// Keeps one family's compiled state and turns service changes into transactions whose
/// size is proportional to the change, not to the table.
///
/// It stores the plan of every service port and one reference-counted element store; a
/// service port's old elements are recomputed from its old plan (compiling is a pure
/// function), so fragments are never kept. Element keys shared by several service ports
/// (a hairpin pair, a ClusterIP with several ports) are counted, and leave the kernel only
/// with their last user.
///
/// If two service ports claim one map key with different data, the one already in the
/// table keeps it (a batch `Compiler.compile` keeps the first in name order instead); such
/// conflicts come only from invalid input and are reported.
public struct IncrementalCompiler: Sendable {
    public private(set) var context: FamilyContext
    public private(set) var plans: [ServicePortName: ServicePortPlan] = [:]
    private var store: [SetID: [[Datum]: StoredElement]] = [:]
    /// Conflicts seen by the last update.
    public private(set) var lastConflicts: [String] = []

    struct StoredElement: Sendable {
        var data: [Datum]
        var count: Int
    }

    public init(context: FamilyContext) {
        self.context = context
    }

    var layout: Layout { Layout(context.family) }

    /// The feature classes in use.
    var classes: Set<SetID> {
        Set(store.keys.filter { if case .fixed = $0 { return false }; return true })
    }

    /// The whole table as it stands (O(table); for full diffs, adoption and tests).
    public var table: Table {
        let skeleton = Skeleton(context: context, classes: classes)
        var elements = skeleton.contextElements
        for (set, elems) in store where !elems.isEmpty {
            var m: ElementMap = elements[set.name] ?? [:]
            m.reserveCapacity(m.count + elems.count)
            for (k, v) in elems { m[k] = v.data }
            elements[set.name] = m
        }
        return Table(family: skeleton.layout.family, name: Layout.tableName, comment: Layout.tableComment,
                     sets: skeleton.sets, chains: skeleton.chains, elements: elements)
    }

    /// The table's skeleton without service elements (context elements included).
    func skeletonTable(_ classes: Set<SetID>, _ context: FamilyContext) -> Table {
        let skeleton = Skeleton(context: context, classes: classes)
        return Table(family: skeleton.layout.family, name: Layout.tableName, comment: Layout.tableComment,
                     sets: skeleton.sets, chains: skeleton.chains, elements: skeleton.contextElements)
    }

    /// Replaces the plans of some service ports (`nil` removes one) and returns the
    /// transaction that takes the kernel from the previous state to the new one.
    public mutating func update(_ changes: [ServicePortName: ServicePortPlan?]) -> Transaction {
        lastConflicts = []
        let classesBefore = classes
        var deletes: [SetID: [Element]] = [:]
        var adds: [SetID: [Element]] = [:]
        // Remove old contributions first, then add new ones, so a key moving between
        // service ports in one update is counted correctly.
        for name in changes.keys.sorted() {
            if let old = plans[name] { remove(compileFragment(old, context: context), into: &deletes) }
        }
        for name in changes.keys.sorted() {
            if let new = changes[name] ?? nil {
                plans[name] = new
                insert(compileFragment(new, context: context), into: &adds, deletes: &deletes)
            } else {
                plans[name] = nil
            }
        }
        // A key deleted and re-added with the same data cancels out.
        for (set, dels) in deletes {
            guard let a = adds[set] else { continue }
            let addSet = Set(a)
            let delSet = Set(dels)
            deletes[set] = dels.filter { !addSet.contains($0) }
            adds[set] = a.filter { !delSet.contains($0) }
        }
        return assemble(deletes: deletes, adds: adds, classesBefore: classesBefore, contextBefore: context)
    }

    /// Replaces the whole service set (a full resync): the transaction is the diff.
    public mutating func replaceAll(_ servicePorts: [ServicePortPlan]) -> Transaction {
        var changes: [ServicePortName: ServicePortPlan?] = [:]
        for name in plans.keys { changes[name] = .some(nil) }
        for sp in servicePorts { changes[sp.name] = sp }
        return update(changes)
    }

    /// Changes the node context (recompiles everything; the transaction is a full diff).
    public mutating func setContext(_ newContext: FamilyContext) -> Transaction {
        let before = table
        context = newContext
        let all = plans
        plans = [:]
        store = [:]
        for sp in all.values.sorted(by: { $0.name < $1.name }) {
            var ignoredAdds: [SetID: [Element]] = [:]
            var ignoredDeletes: [SetID: [Element]] = [:]
            insert(compileFragment(sp, context: newContext), into: &ignoredAdds, deletes: &ignoredDeletes)
            plans[sp.name] = sp
        }
        return diff(Ruleset(tables: [before]), Ruleset(tables: [table]))
    }

    private mutating func remove(_ fragment: ServiceFragment, into deletes: inout [SetID: [Element]]) {
        for (set, elems) in fragment.elements {
            for (key, data) in elems {
                guard var stored = store[set]?[key], stored.data == data else { continue }
                stored.count -= 1
                if stored.count == 0 {
                    store[set]?[key] = nil
                    if store[set]?.isEmpty == true { store[set] = nil }
                    deletes[set, default: []].append(Element(key, set.isMap ? data : nil))
                } else {
                    store[set]?[key] = stored
                }
            }
        }
    }

    private mutating func insert(_ fragment: ServiceFragment, into adds: inout [SetID: [Element]], deletes: inout [SetID: [Element]]) {
        for (set, elems) in fragment.elements {
            for (key, data) in elems {
                if var stored = store[set]?[key] {
                    if stored.data == data {
                        stored.count += 1
                        store[set]?[key] = stored
                    } else {
                        lastConflicts.append("\(fragment.name): conflicts in \(set.name) for \(Element(key).text); the existing element wins")
                    }
                    continue
                }
                store[set, default: [:]][key] = StoredElement(data: data, count: 1)
                adds[set, default: []].append(Element(key, set.isMap ? data : nil))
            }
        }
    }

    /// Orders element operations around skeleton changes: new sets and chains first, element
    /// deletes, rewritten chains, element adds, then removed chains and sets.
    private func assemble(deletes: [SetID: [Element]], adds: [SetID: [Element]],
                          classesBefore: Set<SetID>, contextBefore: FamilyContext) -> Transaction {
        let f = layout.family, t = Layout.tableName
        let classesAfter = classes
        var skeletonOps: [Operation] = []
        if classesBefore != classesAfter {
            skeletonOps = diff(Ruleset(tables: [skeletonTable(classesBefore, contextBefore)]),
                               Ruleset(tables: [skeletonTable(classesAfter, context)])).operations
        }
        let removedSets = Set(classesBefore.subtracting(classesAfter).map(\.name))
        func decl(_ id: SetID) -> SetDecl {
            let sets = Skeleton(context: context, classes: classesAfter.union(classesBefore)).sets
            return sets.first { $0.name == id.name }!
        }
        var ops: [Operation] = skeletonOps.filter { if case .addSet = $0 { return true }; if case .addChain = $0 { return true }; return false }
        for set in deletes.keys.sorted() where !removedSets.contains(set.name) {
            let elems = deletes[set]!
            if !elems.isEmpty { ops.append(.deleteElements(f, t, set: decl(set), elems.sorted())) }
        }
        ops += skeletonOps.filter { if case .flushChain = $0 { return true }; if case .addRule = $0 { return true }; return false }
        for set in adds.keys.sorted() {
            let elems = adds[set]!
            if !elems.isEmpty { ops.append(.addElements(f, t, set: decl(set), elems.sorted())) }
        }
        ops += skeletonOps.filter {
            switch $0 {
            case .deleteChain, .deleteSet: return true
            default: return false
            }
        }
        // Flushes of chains that are deleted come out of `diff` before their delete; keep them.
        return Transaction(ops)
    }
}

extension SetID {
    /// Endpoint slot maps and nothing else carry data.
    var isMap: Bool {
        if case .endpoints = self { return true }
        return false
    }
}
