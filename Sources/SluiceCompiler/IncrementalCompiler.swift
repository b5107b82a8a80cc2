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
/// table keeps it; a load (and a batch `Compiler.compile`) visits service ports in name
/// order, so there the first in name order keeps it. Such conflicts come only from invalid
/// input and are reported.
///
/// With `keepsPlans: false` (the `ProxyEngine`, whose planner holds every plan) the compiler
/// keeps no plans: `update(planChanges:)` is told each changed port's old and new plan.
public struct IncrementalCompiler: Sendable {
    public private(set) var context: FamilyContext
    /// Whether the compiler keeps the plan of every service port (see the type's doc).
    public let keepsPlans: Bool
    /// The plan of one service port (nil without `keepsPlans`).
    public func plan(_ name: ServicePortName) -> ServicePortPlan? { planStore[name] }
    /// Number of service ports (0 without `keepsPlans`).
    public var servicePortCount: Int { planStore.count }
    private var planStore = PlanStore()
    /// Service elements per set, packed (see `SetStore`); empty sets are removed.
    private var store: [SetID: SetStore] = [:]
    /// Conflicts seen by the last update.
    public private(set) var lastConflicts: [String] = []
    /// Whether any insert since the last load met a conflict. Until one does, an update
    /// skips the elements a port's old and new fragments share (their counts stay as they
    /// are); after, it removes and re-adds them all, so an element left out for a conflict
    /// is added when its owner leaves in the same update.
    private var conflictsSeen = false
    /// Set declarations by name: they depend only on the context, which never changes.
    private var setDecls: [String: SetDecl] = [:]

    public init(context: FamilyContext, keepsPlans: Bool = true) {
        self.context = context
        self.keepsPlans = keepsPlans
        contextElementCount = Skeleton(context: context, classes: []).contextElements.values.reduce(0) { $0 + $1.count }
    }

    /// Elements the node context puts in the table (node IPs, pod CIDRs, …).
    public private(set) var contextElementCount: Int

    /// Addresses of the stores' heap buffers, for tests that check an update copied no
    /// table-sized storage (a copy-on-write copy moves a buffer to a new address).
    public var storageIdentity: [UInt] {
        var out: [UInt] = store.keys.sorted().flatMap { store[$0]!.storageIdentity }
        out.append(planStore.storageIdentity)
        return out
    }

    var layout: Layout { Layout(context.family) }

    /// The feature classes in use.
    var classes: Set<SetID> {
        Set(store.keys.filter { if case .fixed = $0 { return false }; return true })
    }

    /// The whole table as it stands (O(table); for full diffs, adoption and tests).
    public var table: Table {
        var t = skeleton
        for (set, elems) in store where !elems.isEmpty {
            var m: ElementMap = t.elements[set.name] ?? [:]
            m.reserveCapacity(m.count + elems.count)
            elems.forEach { k, v in m[k] = v }
            t.elements[set.name] = m
        }
        return t
    }

    /// The table without service elements: sets, chains, rules and the node context's
    /// elements. With `serviceElements` it describes the same table as `table`, without
    /// materializing the service elements (a streamed cold start, `NftablesApplier.create`).
    public var skeleton: Table { skeletonTable(classes, context) }

    /// The service elements of every set, produced on demand from the compact store.
    public var serviceElements: ServiceElements { ServiceElements(store: store) }

    /// Number of service elements (all sets).
    public var serviceElementCount: Int { store.values.reduce(0) { $0 + $1.count } }

    /// The table's skeleton without service elements (context elements included).
    func skeletonTable(_ classes: Set<SetID>, _ context: FamilyContext) -> Table {
        let skeleton = Skeleton(context: context, classes: classes)
        return Table(family: skeleton.layout.family, name: Layout.tableName, comment: Layout.tableComment,
                     sets: skeleton.sets, chains: skeleton.chains, elements: skeleton.contextElements)
    }

    /// Replaces the plans of some service ports (`nil` removes one) and returns the
    /// transaction that takes the kernel from the previous state to the new one.
    public mutating func update(_ changes: [ServicePortName: ServicePortPlan?]) -> Transaction {
        var planChanges: [ServicePortName: PlanChange] = [:]
        planChanges.reserveCapacity(changes.count)
        for (name, new) in changes { planChanges[name] = PlanChange(old: planStore[name], new: new) }
        return update(planChanges: planChanges)
    }

    /// Replaces the plans of some service ports, given each one's old plan (nil: not in the
    /// table) and new plan (nil: removed), and returns the transaction.
    public mutating func update(planChanges changes: [ServicePortName: PlanChange]) -> Transaction {
        lastConflicts = []
        let classesBefore = classes
        var deletes: [SetID: [Element]] = [:]
        var adds: [SetID: [Element]] = [:]
        let names = changes.count == 1 ? Array(changes.keys) : changes.keys.sorted()
        if keepsPlans { for name in names { planStore[name] = changes[name]!.new } }
        // Remove old contributions first, then add new ones, so a key moving between
        // service ports in one update is counted correctly.
        if let diffs = packedDiffs(names, changes) {
            for d in diffs { remove(d, into: &deletes) }
            var added: [SetID: [Element]]? = [:]
            for d in diffs { insert(d, into: &added) }
            adds = added!
        } else {
            let fragments = fragmentPairs(names, changes)
            for f in fragments { if let old = f.old { remove(old, into: &deletes) } }
            for f in fragments { if let new = f.new { insert(new, into: &adds) } }
        }
        // Sorted; a key deleted and re-added with the same data cancels out.
        for set in Set(deletes.keys).union(adds.keys) {
            var d = deletes.removeValue(forKey: set) ?? [], a = adds.removeValue(forKey: set) ?? []
            Element.sortCancelling(&d, &a)
            if !d.isEmpty { deletes[set] = d }
            if !a.isEmpty { adds[set] = a }
        }
        return assemble(deletes: deletes, adds: adds, classesBefore: classesBefore, contextBefore: context)
    }

    /// Whether updates may take the packed path (`PackedFragmentDiff`); tests turn it off to
    /// compare both paths.
    var packsUpdates = true

    /// Each port's packed diff, while no conflict was ever seen (see `conflictsSeen`) and
    /// every element packs; nil otherwise.
    private func packedDiffs(_ names: [ServicePortName], _ changes: [ServicePortName: PlanChange]) -> [PackedFragmentDiff]? {
        guard packsUpdates, !conflictsSeen else { return nil }
        var out: [PackedFragmentDiff] = []
        out.reserveCapacity(names.count)
        for name in names {
            let change = changes[name]!
            guard let diff = PackedFragmentDiff(name: name, old: change.old, new: change.new, context: context) else { return nil }
            out.append(diff)
        }
        return out
    }

    /// Each port's old and new fragments; while no conflict was ever seen, only the
    /// elements that differ between them (an element both have keeps its count).
    private func fragmentPairs(_ names: [ServicePortName], _ changes: [ServicePortName: PlanChange])
        -> [(old: ServiceFragment?, new: ServiceFragment?)] {
        names.map { name in
            let change = changes[name]!
            var old = change.old.map { compileFragment($0, context: context) }
            var new = change.new.map { compileFragment($0, context: context) }
            if !conflictsSeen, old != nil, new != nil { ServiceFragment.dropCommon(&old!, &new!) }
            return (old, new)
        }
    }

    /// Takes new NodePort addresses (a list of IPs before and after, never `all`: that
    /// changes rules, hence a reload) and returns the transaction that adds and deletes the
    /// `nodeport-ips` elements that changed. O(addresses): nothing else is touched.
    public mutating func updateNodePortAddresses(_ addresses: NodePortAddresses) -> Transaction {
        precondition(addresses != .all && context.nodePortAddresses != .all, "NodePort addresses .all change rules: reload")
        let old = Skeleton(context: context, classes: []).contextElements[Layout.nodePortIPs] ?? [:]
        context.nodePortAddresses = addresses
        let skeleton = Skeleton(context: context, classes: [])
        let new = skeleton.contextElements[Layout.nodePortIPs] ?? [:]
        contextElementCount += new.count - old.count
        guard let decl = skeleton.sets.first(where: { $0.name == Layout.nodePortIPs }) else { return Transaction([]) }
        let f = layout.family, t = Layout.tableName
        let deleted = old.keys.filter { new[$0] == nil }.map { Element($0) }.sorted()
        let added = new.keys.filter { old[$0] == nil }.map { Element($0) }.sorted()
        var ops: [Operation] = []
        if !deleted.isEmpty { ops.append(.deleteElements(f, t, set: decl, deleted)) }
        if !added.isEmpty { ops.append(.addElements(f, t, set: decl, added)) }
        return Transaction(ops)
    }

    /// Replaces the whole service set (a full resync): the transaction is the diff.
    public mutating func replaceAll(_ servicePorts: [ServicePortPlan]) -> Transaction {
        var changes: [ServicePortName: ServicePortPlan?] = [:]
        for name in planStore.names { changes[name] = .some(nil) }
        for sp in servicePorts { changes[sp.name] = sp }
        return update(changes)
    }

    /// Replaces the whole service set without computing a transaction: for a cold start
    /// that then programs `skeleton` and `serviceElements` (`NftablesApplier.create`), or
    /// diffs `table`. Much cheaper than `replaceAll` for a large set: no element list is
    /// built. `lastConflicts` reports conflicts as `update` does.
    public mutating func load<C: RandomAccessCollection<ServicePortPlan>>(_ servicePorts: C) where C.Index == Int {
        let order = beginLoad(servicePorts)
        var ignored: [SetID: [Element]]? = nil
        for (n, i) in order.enumerated() { _ = loadOne(servicePorts[i], of: order.count, first: n == 0, adds: &ignored) }
    }

    /// Resets the stores for a load; returns the service ports' indices in name order.
    private mutating func beginLoad<C: RandomAccessCollection<ServicePortPlan>>(_ servicePorts: C) -> [Int] where C.Index == Int {
        lastConflicts = []
        conflictsSeen = false
        planStore = PlanStore()
        store = [:]
        let order = Self.uniqueSorted(servicePorts)
        if keepsPlans { planStore.reserve(order.count) }
        return order
    }

    /// Compiles and stores one of `total` service ports of a load (the first sizes the stores:
    /// services are usually alike); returns its element count.
    private mutating func loadOne(_ sp: ServicePortPlan, of total: Int, first: Bool, adds: inout [SetID: [Element]]?) -> Int {
        if keepsPlans { planStore[sp.name] = sp }
        if let packed = PackedFragmentDiff(name: sp.name, old: nil, new: sp, context: context) {
            if first {
                for (set, n) in packed.addedPerSet { store[set, default: SetStore(isMap: set.isMap)].reserve(n * total) }
            }
            insert(packed, into: &adds)
            return packed.added.count
        }
        let fragment = compileFragment(sp, context: context)
        if first {
            for (set, elems) in fragment.elements {
                store[set, default: SetStore(isMap: set.isMap)].reserve(elems.count * total)
            }
        }
        insert(fragment, into: &adds)
        return fragment.elementCount
    }

    /// A streamed cold start: replaces the whole service set like `load` and hands `emit`
    /// the transactions that create the table in the kernel from nothing, one after the
    /// other, each holding the elements of whole service ports only (about
    /// `maxElementsPerTransaction` elements, the first few fewer; a service port is never split). The first
    /// creates the table's skeleton; a later one that brings a new feature class adds its
    /// set and rewrites the chains first, as `update` does. Each transaction applied in
    /// order keeps every intermediate state valid: a service port becomes reachable
    /// together with all its endpoints. Nothing table-sized is built besides the store, so
    /// `emit` can commit each transaction while the next is compiled.
    public mutating func load<C: RandomAccessCollection<ServicePortPlan>>(
        _ servicePorts: C, maxElementsPerTransaction: Int, emit: (Transaction) throws -> Void
    ) rethrows where C.Index == Int {
        let order = beginLoad(servicePorts)
        var stream = LoadStream()
        // The first transactions are small and grow to the limit: the first elements are
        // the slowest to store (each touches a fresh page of the store's reserved tables),
        // and a small first transaction lets the kernel start while they are stored.
        var limit = max(1, maxElementsPerTransaction / 16)
        for (n, i) in order.enumerated() {
            stream.pending += loadOne(servicePorts[i], of: order.count, first: n == 0, adds: &stream.adds)
            if stream.pending >= limit, let tx = nextTransaction(&stream) {
                try emit(tx)
                limit = min(limit * 2, maxElementsPerTransaction)
            }
        }
        if stream.pending > 0 || !stream.created, let tx = nextTransaction(&stream) { try emit(tx) }
    }

    /// What a streamed load has emitted so far, and the elements it has not.
    private struct LoadStream {
        var created = false
        var classesBefore: Set<SetID> = []
        var adds: [SetID: [Element]]? = [:]
        var pending = 0
    }

    /// The next transaction of a streamed load: the skeleton first (or the chain rewrite a new
    /// feature class needs), then the elements gathered since the last one; nil if empty.
    /// (`load` calls `emit` itself: with `emit` called from a local function, a throwing
    /// `emit` — a batch the kernel refused — crashed the process with a bogus arithmetic
    /// overflow trap in `load` instead of propagating the error.)
    private func nextTransaction(_ stream: inout LoadStream) -> Transaction? {
        let f = layout.family, t = Layout.tableName
        let classesAfter = classes
        var ops: [Operation] = []
        if !stream.created {
            ops = create(skeletonTable(classesAfter, context))
            stream.created = true
        } else if classesAfter != stream.classesBefore {
            ops = diff(Ruleset(tables: [skeletonTable(stream.classesBefore, context)]),
                       Ruleset(tables: [skeletonTable(classesAfter, context)])).operations
        }
        stream.classesBefore = classesAfter
        let sets = Skeleton(context: context, classes: classesAfter).sets
        for decl in sets {
            guard let id = store.keys.first(where: { $0.name == decl.name }), var elems = stream.adds?[id], !elems.isEmpty else { continue }
            if decl.flags.contains(.interval) { elems.sort() }
            ops.append(.addElements(f, t, set: decl, elems))
        }
        stream.adds = [:]
        stream.pending = 0
        return ops.isEmpty ? nil : Transaction(ops)
    }

    /// Indices of `servicePorts` in name order; of duplicates the later one wins (as in
    /// `replaceAll`). Sorts indices, not plans, so no copy of the plans is made.
    static func uniqueSorted<C: RandomAccessCollection<ServicePortPlan>>(_ servicePorts: C) -> [Int] where C.Index == Int {
        var order = Array(servicePorts.indices)
        // The planner hands its plans over in name order already: one pass checks it.
        if zip(servicePorts.dropFirst(), servicePorts).allSatisfy({ $1.name < $0.name }) { return order }
        order.sort { a, b in
            let x = servicePorts[a].name, y = servicePorts[b].name
            return x < y || (x == y && a > b)
        }
        var out: [Int] = []
        out.reserveCapacity(order.count)
        for i in order where out.last.map({ servicePorts[$0].name != servicePorts[i].name }) ?? true { out.append(i) }
        return out
    }

    private mutating func remove(_ fragment: ServiceFragment, into deletes: inout [SetID: [Element]]) {
        for (set, elems) in fragment.elements {
            guard var s = store.removeValue(forKey: set) else { continue }
            for (key, data) in elems where s.remove(key, data) == .removed {
                deletes[set, default: []].append(Element(key, set.isMap ? data : nil))
            }
            if !s.isEmpty { store[set] = s }
        }
    }

    /// Takes out what only the old fragment of `diff` had (see `remove(_:into:)`).
    private mutating func remove(_ diff: PackedFragmentDiff, into deletes: inout [SetID: [Element]]) {
        for e in diff.removed {
            let set = diff.sets[Int(e.set)]
            guard let i = store.index(forKey: set) else { continue }
            if store.values[i].remove(packed: e.key, data: e.data) == .removed {
                deletes[set, default: []].append(Self.element(e, set))
            }
            if store.values[i].isEmpty { store.remove(at: i) }
        }
    }

    /// Puts in what only the new fragment of `diff` has (see `insert(_:into:)`).
    private mutating func insert(_ diff: PackedFragmentDiff, into adds: inout [SetID: [Element]]?) {
        for e in diff.added {
            let set = diff.sets[Int(e.set)]
            let result: SetStore.InsertResult
            if let i = store.index(forKey: set) {
                result = store.values[i].insert(packed: e.key, data: e.data)
            } else {
                var s = SetStore(isMap: set.isMap)
                result = s.insert(packed: e.key, data: e.data)
                store[set] = s
            }
            switch result {
            case .added: adds?[set, default: []].append(Self.element(e, set))
            case .counted: break
            case .conflict:
                conflictsSeen = true
                lastConflicts.append("\(diff.name): conflicts in \(set.name) for \(Element(e.key.datums).text); the existing element wins")
            }
        }
    }

    /// The IR element of a packed entry.
    private static func element(_ e: PackedFragmentDiff.Entry, _ set: SetID) -> Element {
        Element(e.key.datums, set.isMap ? Packed(lo: e.data, hi: 0).datums : nil)
    }

    private mutating func insert(_ fragment: ServiceFragment, into adds: inout [SetID: [Element]]) {
        var o: [SetID: [Element]]? = adds
        adds = [:]
        insert(fragment, into: &o)
        adds = o!
    }

    /// Adds a fragment's elements to the store; new elements are appended to `adds` unless
    /// it is nil.
    private mutating func insert(_ fragment: ServiceFragment, into adds: inout [SetID: [Element]]?) {
        for (set, elems) in fragment.elements {
            var s = store.removeValue(forKey: set) ?? SetStore(isMap: set.isMap)
            for (key, data) in elems {
                switch s.insert(key, data) {
                case .added: adds?[set, default: []].append(Element(key, set.isMap ? data : nil))
                case .counted: break
                case .conflict:
                    conflictsSeen = true
                    lastConflicts.append("\(fragment.name): conflicts in \(set.name) for \(Element(key).text); the existing element wins")
                }
            }
            store[set] = s
        }
    }

    /// Orders element operations around skeleton changes: new sets and chains first, element
    /// deletes, rewritten chains, element adds, then removed chains and sets. Each set's
    /// elements come sorted.
    private mutating func assemble(deletes: [SetID: [Element]], adds: [SetID: [Element]],
                                   classesBefore: Set<SetID>, contextBefore: FamilyContext) -> Transaction {
        let f = layout.family, t = Layout.tableName
        let classesAfter = classes
        var skeletonOps: [Operation] = []
        if classesBefore != classesAfter {
            skeletonOps = diff(Ruleset(tables: [skeletonTable(classesBefore, contextBefore)]),
                               Ruleset(tables: [skeletonTable(classesAfter, context)])).operations
        }
        let removedSets = Set(classesBefore.subtracting(classesAfter).map(\.name))
        // Built the first time a set has element operations, then remembered.
        func decl(_ id: SetID) -> SetDecl {
            if let known = setDecls[id.name] { return known }
            for set in Skeleton(context: context, classes: classesAfter.union(classesBefore)).sets where setDecls[set.name] == nil {
                setDecls[set.name] = set
            }
            return setDecls[id.name]!
        }
        var ops: [Operation] = skeletonOps.filter { if case .addSet = $0 { return true }; if case .addChain = $0 { return true }; return false }
        for set in deletes.keys.sorted() where !removedSets.contains(set.name) {
            let elems = deletes[set]!
            if !elems.isEmpty { ops.append(.deleteElements(f, t, set: decl(set), elems)) }
        }
        ops += skeletonOps.filter { if case .flushChain = $0 { return true }; if case .addRule = $0 { return true }; return false }
        for set in adds.keys.sorted() {
            let elems = adds[set]!
            if !elems.isEmpty { ops.append(.addElements(f, t, set: decl(set), elems)) }
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

/// The service elements of an `IncrementalCompiler`, streamed set by set from its compact
/// store (unpacked to IR elements one chunk at a time). A snapshot: later updates to the
/// compiler do not change it.
public struct ServiceElements: ElementSource, Sendable {
    let store: [String: SetStore]

    init(store: [SetID: SetStore]) {
        var byName: [String: SetStore] = [:]
        for (id, s) in store where !s.isEmpty { byName[id.name] = s }
        self.store = byName
    }

    public var setNames: [String] { store.keys.sorted() }

    public func count(of set: String) -> Int { store[set]?.count ?? 0 }

    public func forEachChunk(of set: String, maxCount: Int, _ body: ([Element]) throws -> Void) rethrows {
        guard let s = store[set] else { return }
        let n = max(1, maxCount)
        var chunk: [Element] = []
        chunk.reserveCapacity(min(n, s.count))
        try s.forEach { k, v in
            chunk.append(Element(k, s.isMap ? v : nil))
            if chunk.count == n {
                try body(chunk)
                chunk.removeAll(keepingCapacity: true)
            }
        }
        if !chunk.isEmpty { try body(chunk) }
    }
}

extension SetID {
    /// Endpoint slot maps and nothing else carry data.
    var isMap: Bool {
        if case .endpoints = self { return true }
        return false
    }
}

/// The compiler's service elements by set name (context elements, which no affinity or
/// endpoint set holds, are left out).
extension IncrementalCompiler: ElementLookup {
    public var setNames: [String] { store.keys.map(\.name) }

    private func setStore(named name: String) -> SetStore? {
        store.first { $0.key.name == name }?.value
    }

    public func element(of set: String, key: [Datum]) -> [Datum]? { setStore(named: set)?.lookup(key) }

    public func forEachElement(of set: String, _ body: ([Datum], [Datum]) -> Void) {
        setStore(named: set)?.forEach(body)
    }

    /// Elements of the whole table: the node context's plus the services'.
    public var elementCount: Int { contextElementCount + serviceElementCount }
}
