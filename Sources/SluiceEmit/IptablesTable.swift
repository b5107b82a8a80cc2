/// One table (`*filter` or `*nat`) of an `iptables-restore` script under construction, and
/// its deterministic text form.
///
/// Layout, chosen to be byte-stable and to equal the canonical form of upstream's tests
/// (`sortIPTablesRules` in `pkg/proxy/iptables/proxier_test.go`):
/// 1. `*table`;
/// 2. builtin chain lines (`:INPUT ACCEPT [0:0]` …) in `iptables-save` order, if any;
/// 3. kube chain lines: `KUBE-NODEPORTS`, `KUBE-SERVICES`, then all others sorted by name
///    (chains to be deleted are declared here too, which flushes them);
/// 4. rules grouped by chain in the same order, each chain's rules in insertion order;
/// 5. `-X` lines for deleted chains, sorted;
/// 6. `COMMIT`.
struct IptablesTable {
    /// `filter` or `nat`.
    let name: String
    /// Builtin chains declared with an `ACCEPT` policy (only for standalone scripts).
    private(set) var builtinChains: [String] = []
    /// Rules per chain, without the leading `-A <chain> `.
    private(set) var rules: [String: [String]] = [:]
    /// Kube chains in declaration order (rendered sorted).
    private(set) var chains: Set<String> = []
    /// Chains to flush and delete (`-X`).
    private(set) var deletedChains: Set<String> = []

    init(_ name: String) { self.name = name }

    /// Declares a builtin chain (`:INPUT ACCEPT [0:0]`).
    mutating func declareBuiltin(_ chain: String) {
        if !builtinChains.contains(chain) { builtinChains.append(chain) }
    }

    /// Declares a kube chain (`:KUBE-… - [0:0]`); declaring twice is harmless.
    mutating func declare(_ chain: String) {
        chains.insert(chain)
    }

    /// Appends `-A chain args…`. The chain must be declared (builtin or kube).
    mutating func append(_ chain: String, _ args: [String]) {
        precondition(chains.contains(chain) || builtinChains.contains(chain), "undeclared chain \(chain)")
        rules[chain, default: []].append(args.joined(separator: " "))
    }

    /// Adds every chain and rule of `other` (per-service chains built separately).
    mutating func merge(_ other: IptablesTable) {
        chains.formUnion(other.chains)
        for (chain, lines) in other.rules { rules[chain, default: []].append(contentsOf: lines) }
    }

    /// Schedules `chain` for deletion unless this script writes it.
    mutating func delete(_ chain: String) {
        if !chains.contains(chain) { deletedChains.insert(chain) }
    }

    /// The kube chains in rendering order.
    var orderedChains: [String] {
        let first = [IptablesChainName.nodePorts, IptablesChainName.services].filter { chains.contains($0) || deletedChains.contains($0) }
        let rest = chains.union(deletedChains).subtracting(first).sorted()
        return first + rest
    }

    /// The table's `iptables-restore` text, ending with `COMMIT\n`.
    func render() -> String {
        var out = "*\(name)\n"
        for chain in builtinChains { out += ":\(chain) ACCEPT [0:0]\n" }
        let ordered = orderedChains
        for chain in ordered { out += ":\(chain) - [0:0]\n" }
        for chain in builtinChains + ordered {
            for rule in rules[chain] ?? [] {
                out += rule.isEmpty ? "-A \(chain)\n" : "-A \(chain) \(rule)\n"
            }
        }
        for chain in deletedChains.sorted() { out += "-X \(chain)\n" }
        out += "COMMIT\n"
        return out
    }
}

/// Argument fragments shared by the rule writers.
enum IptablesArgs {
    /// `-m comment --comment "text"` with the quotes upstream writes for comments that
    /// contain spaces (upstream passes these pre-quoted, e.g. `"%s cluster IP"`).
    static func quotedComment(_ text: String) -> [String] {
        ["-m", "comment", "--comment", "\"\(text)\""]
    }

    /// `-m comment --comment text` without quotes, as upstream writes the bare
    /// `ns/svc:port` comments of `KUBE-NODEPORTS` and `KUBE-SEP-` rules.
    static func bareComment(_ text: String) -> [String] {
        ["-m", "comment", "--comment", text]
    }

    /// `-m proto -p proto`.
    static func proto(_ p: String) -> [String] { ["-m", p, "-p", p] }

    /// `-d ip --dport port` after the protocol match, as upstream orders them.
    static func destination(_ ip: String, port: UInt16) -> [String] {
        ["-d", ip, "--dport", String(port)]
    }

    /// `-j target`.
    static func jump(_ target: String) -> [String] { ["-j", target] }
}
