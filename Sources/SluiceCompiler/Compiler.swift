import SluiceIR
import SluiceModel

/// Output of compiling one family.
public struct CompiledFamily: Sendable {
    public var table: Table
    public var fragments: [ServiceFragment]
    /// Conflicts between services (two services claiming the same key with different data).
    public var diagnostics: [String]
}

/// The pure compiler: a family's plan to that family's table.
public enum Compiler {
    /// Compiles every service port, merges the fragments and wraps them in the skeleton.
    public static func compile(_ plan: FamilyPlan) -> CompiledFamily {
        let fragments = plan.servicePorts.map { compileFragment($0, context: plan.context) }
        return assemble(context: plan.context, fragments: fragments)
    }

    /// Compiles every family of a plan.
    public static func compile(_ plan: ProxyPlan) -> (ruleset: Ruleset, diagnostics: [String]) {
        let compiled = plan.families.map(compile)
        return (Ruleset(tables: compiled.map(\.table)), compiled.flatMap(\.diagnostics))
    }

    /// Merges fragments (in order; on a conflicting map key the first service wins) with the
    /// skeleton their feature classes need.
    public static func assemble(context: FamilyContext, fragments: [ServiceFragment]) -> CompiledFamily {
        var merged: [SetID: ElementMap] = [:]
        var diagnostics: [String] = []
        for (index, fragment) in fragments.enumerated() {
            for (set, elems) in fragment.elements {
                for (key, data) in elems {
                    if let existing = merged[set]?[key] {
                        // Rare: find the earlier owner only when reporting a conflict.
                        if existing != data, let owner = fragments[..<index].first(where: { $0.elements[set]?[key] != nil })?.name {
                            diagnostics.append("\(fragment.name): conflicts with \(owner) in \(set.name) for \(Element(key).text); \(owner) wins")
                        }
                        continue
                    }
                    merged[set, default: [:]][key] = data
                }
            }
        }
        let classes = Set(merged.keys.filter { if case .fixed = $0 { return false }; return true })
        let skeleton = Skeleton(context: context, classes: classes)
        var elements = skeleton.contextElements
        for (set, elems) in merged where !elems.isEmpty {
            elements[set.name, default: [:]].merge(elems) { a, _ in a }
        }
        let table = Table(family: skeleton.layout.family, name: Layout.tableName, comment: Layout.tableComment,
                          sets: skeleton.sets, chains: skeleton.chains, elements: elements)
        return CompiledFamily(table: table, fragments: fragments, diagnostics: diagnostics)
    }
}
