/// nftables vocabulary: a table with its chains, sets and elements, and a ruleset of tables.

/// `table <family> <name> { comment "…"; … }`.
///
/// Chains and sets keep the order the compiler gives them (canonical and deterministic);
/// elements are unordered in memory and sorted when rendered.
public struct Table: Sendable, Hashable, Codable {
    public var family: Family
    public var name: String
    public var comment: String?
    public var sets: [SetDecl]
    public var chains: [Chain]
    /// Elements per set/map name.
    public var elements: [String: ElementMap]

    public init(family: Family, name: String, comment: String? = nil,
                sets: [SetDecl] = [], chains: [Chain] = [], elements: [String: ElementMap] = [:]) {
        self.family = family
        self.name = name
        self.comment = comment
        self.sets = sets
        self.chains = chains
        self.elements = elements
    }

    public func set(named name: String) -> SetDecl? { sets.first { $0.name == name } }
    public func chain(named name: String) -> Chain? { chains.first { $0.name == name } }

    /// Number of elements across all sets and maps.
    public var elementCount: Int { elements.values.reduce(0) { $0 + $1.count } }
    /// Number of rules across all chains.
    public var ruleCount: Int { chains.reduce(0) { $0 + $1.rules.count } }
    /// Number of `jump`/`goto` verdicts in rules (elements never carry them in Sluice).
    public var jumpCount: Int { chains.reduce(0) { $0 + $1.rules.reduce(0) { $0 + $1.chainReferences.count } } }

    /// Structural problems a kernel would reject: dangling chain/set references,
    /// duplicate names, elements for undeclared sets, elements whose arity does not match.
    public func validate() -> [String] {
        var problems: [String] = []
        let chainNames = Set(chains.map(\.name))
        let setNames = Set(sets.map(\.name))
        if chainNames.count != chains.count { problems.append("duplicate chain name in table \(family.rawValue) \(name)") }
        if setNames.count != sets.count { problems.append("duplicate set name in table \(family.rawValue) \(name)") }
        for chain in chains {
            for rule in chain.rules {
                for target in rule.chainReferences where !chainNames.contains(target) {
                    problems.append("chain \(chain.name): jump to missing chain \(target)")
                }
                for set in rule.setReferences where !setNames.contains(set) {
                    problems.append("chain \(chain.name): reference to missing set \(set)")
                }
            }
        }
        for (setName, elems) in elements {
            guard let decl = set(named: setName) else {
                if !elems.isEmpty { problems.append("elements for missing set \(setName)") }
                continue
            }
            for (key, data) in elems {
                if key.count != decl.key.count {
                    problems.append("set \(setName): element key has \(key.count) fields, expected \(decl.key.count)")
                    break
                }
                if let d = decl.data, data.count != d.count {
                    problems.append("map \(setName): element data has \(data.count) fields, expected \(d.count)")
                    break
                }
            }
        }
        return problems
    }
}

/// Everything Sluice owns in the kernel: one table per address family.
public struct Ruleset: Sendable, Hashable, Codable {
    public var tables: [Table]

    public init(tables: [Table] = []) {
        self.tables = tables.sorted { ($0.family, $0.name) < ($1.family, $1.name) }
    }

    public func table(_ family: Family, _ name: String) -> Table? {
        tables.first { $0.family == family && $0.name == name }
    }
}
