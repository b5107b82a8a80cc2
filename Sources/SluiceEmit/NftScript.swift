import SluiceIR

/// Renders IR as `nft -f` scripts: a whole ruleset in nft's declarative block form, or a
/// transaction as a sequence of `add`/`delete`/`flush` commands.
public enum NftScript {
    /// The whole ruleset, one `table … { … }` block per table, loadable with `nft -f` into a
    /// namespace that does not have the tables yet.
    public static func render(_ ruleset: Ruleset) -> String {
        ruleset.tables.map(render).joined(separator: "\n")
    }

    /// One table in declarative form. Sets come first, then chains in the compiler's
    /// order; elements are sorted.
    public static func render(_ table: Table) -> String {
        var out = "table \(table.family.rawValue) \(table.name) {\n"
        if let c = table.comment { out += "\tcomment \(quoted(c))\n" }
        for set in table.sets {
            out += "\n\t\(set.keyword) \(set.name) {\n"
            for line in set.declarationLines { out += "\t\t\(line)\n" }
            let elems = (table.elements[set.name] ?? [:]).sortedElements(isMap: set.isMap)
            if !elems.isEmpty {
                out += "\t\telements = {\n"
                for (i, e) in elems.enumerated() {
                    out += "\t\t\t\(e.text)\(i == elems.count - 1 ? "" : ",")\n"
                }
                out += "\t\t}\n"
            }
            out += "\t}\n"
        }
        for chain in table.chains {
            out += "\n\tchain \(chain.name) {\n"
            if let base = chain.base { out += "\t\t\(base.text)\n" }
            if let c = chain.comment { out += "\t\tcomment \(quoted(c))\n" }
            for rule in chain.rules { out += "\t\t\(rule)\n" }
            out += "\t}\n"
        }
        out += "}\n"
        return out
    }

    /// A transaction as nft commands, in order; `nft -f` applies it atomically.
    ///
    /// Consecutive rules for one chain are written as a `table … { chain … { rules } }`
    /// block, which appends them: nft 1.0.6 rejects some rules (`dnat ip to <concat> map`)
    /// as standalone `add rule` commands but accepts them in block form.
    public static func render(_ transaction: Transaction) -> String {
        var out = ""
        var pending: (Family, String, String, [Rule])?
        func flushPending() {
            guard let (f, t, chain, rules) = pending else { return }
            out += "table \(f.rawValue) \(t) {\n\tchain \(chain) {\n"
            for rule in rules { out += "\t\t\(rule)\n" }
            out += "\t}\n}\n"
            pending = nil
        }
        for op in transaction.operations {
            if case .addRule(let f, let t, let chain, let rule) = op {
                if let p = pending, p.0 == f, p.1 == t, p.2 == chain {
                    pending?.3.append(rule)
                } else {
                    flushPending()
                    pending = (f, t, chain, [rule])
                }
                continue
            }
            flushPending()
            out += render(op)
        }
        flushPending()
        return out
    }

    /// One operation; element operations produce one line per element so diffs stay readable.
    public static func render(_ op: Operation) -> String {
        switch op {
        case .addTable(let f, let t, let comment):
            if let comment { return "add table \(f.rawValue) \(t) { comment \(quoted(comment)) ; }\n" }
            return "add table \(f.rawValue) \(t)\n"
        case .deleteTable(let f, let t):
            return "delete table \(f.rawValue) \(t)\n"
        case .addChain(let f, let t, let chain):
            var body: [String] = []
            if let base = chain.base {
                body.append("type \(base.type.rawValue) hook \(base.hook.rawValue) priority \(base.priority) ;")
                body.append("policy accept ;")
            }
            if let c = chain.comment { body.append("comment \(quoted(c)) ;") }
            let suffix = body.isEmpty ? "" : " { " + body.joined(separator: " ") + " }"
            return "add chain \(f.rawValue) \(t) \(chain.name)\(suffix)\n"
        case .flushChain(let f, let t, let c):
            return "flush chain \(f.rawValue) \(t) \(c)\n"
        case .deleteChain(let f, let t, let c):
            return "delete chain \(f.rawValue) \(t) \(c)\n"
        case .addRule(let f, let t, let chain, let rule):
            return "add rule \(f.rawValue) \(t) \(chain) \(rule)\n"
        case .addSet(let f, let t, let set):
            return "add \(set.keyword) \(f.rawValue) \(t) \(set.name) { " + set.declarationLines.map { $0 + " ;" }.joined(separator: " ") + " }\n"
        case .deleteSet(let f, let t, let set):
            return "delete \(set.keyword) \(f.rawValue) \(t) \(set.name)\n"
        case .addElements(let f, let t, let set, let elems):
            return elems.map { "add element \(f.rawValue) \(t) \(set.name) { \($0.text) }\n" }.joined()
        case .deleteElements(let f, let t, let set, let elems):
            return elems.map { "delete element \(f.rawValue) \(t) \(set.name) { \(Element($0.key).text) }\n" }.joined()
        }
    }
}
