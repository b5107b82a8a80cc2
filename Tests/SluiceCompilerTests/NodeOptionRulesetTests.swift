import Foundation
import Testing
import SluiceCompiler
import SluiceEmit
import SluiceIR
import SluiceModel
import SluiceTestSupport

/// Every datum (keys and data) of every element of a table.
func elementData(_ table: Table?) -> Set<Datum> {
    var out = Set<Datum>()
    for (_, elements) in table?.elements ?? [:] {
        for (key, data) in elements { out.formUnion(key + data) }
    }
    return out
}

/// `--allow-external-ips=false` on the `kube-proxy-reference` set, the way `sluice compile`
/// does it: ns2/svc2 has externalIP 192.168.99.22 and LB ingress 1.2.3.4, ns4/svc4 has
/// externalIP 192.168.99.33, ns5/svc5 LB ingress 5.6.7.8.
struct ExternalIPsSwitchTests {
    static let set = "kube-proxy-reference"
    let externalIPs = ["192.168.99.22", "192.168.99.33"].map { IPAddress($0)!.datum }
    let loadBalancerIPs = ["1.2.3.4", "5.6.7.8"].map { IPAddress($0)!.datum }

    static func compile(allowExternalIPs: Bool?) -> CompileResult {
        var flags = NodeOptionFlags(config: RulesetDirectory.config(set))
        flags.allowExternalIPs = allowExternalIPs
        return Pipeline.compile(sources: [RulesetDirectory.path(set)], flags: flags, systemHostname: "golden-node")
    }

    @Test("off: no element names an externalIP (no DNAT, no reject/drop, no firewall); LB IPs keep theirs")
    func offLeavesNoExternalIPElement() {
        let r = Self.compile(allowExternalIPs: false)
        let data = elementData(r.ruleset.table(.ip, Layout.tableName))
        for ip in externalIPs { #expect(!data.contains(ip), "\(ip) still in an element") }
        for ip in loadBalancerIPs { #expect(data.contains(ip), "\(ip) lost its elements") }
        let notices = r.diagnostics.filter { $0.field == "spec.externalIPs" }.map(\.description)
        #expect(notices == [
            "Rulesets/kube-proxy-reference/services.yaml: Service ns2/svc2: spec.externalIPs: 192.168.99.22 ignored: --allow-external-ips=false",
            "Rulesets/kube-proxy-reference/services.yaml: Service ns4/svc4: spec.externalIPs: 192.168.99.33 ignored: --allow-external-ips=false",
        ].map { RulesetDirectory.repositoryRoot + "/" + $0 })
    }

    @Test("off compiles exactly what the same Services without spec.externalIPs compile to when on")
    func offEqualsServicesWithoutExternalIPs() {
        let off = Self.compile(allowExternalIPs: false)
        var objects = ManifestLoader().load(paths: [RulesetDirectory.path(Self.set)]).objects
        for i in objects.services.indices { objects.services[i].object.spec.externalIPs = nil }
        let (on, _) = NodeOptions.load(flags: NodeOptionFlags(config: RulesetDirectory.config(Self.set)), systemHostname: "golden-node")
        #expect(on.allowExternalIPs)
        let stripped = Pipeline.compile(objects: objects, options: on)
        #expect(off.ruleset == stripped.ruleset)
        #expect(renderIptablesRestore(off.plan.families[0]) == renderIptablesRestore(stripped.plan.families[0]))
    }

    @Test("on (given or by default) compiles the reviewed golden, with no notice")
    func onIsTheGolden() throws {
        let golden = try String(contentsOfFile: RulesetDirectory.path(Self.set) + "/expected.nft", encoding: .utf8)
        for allow in [true, nil] as [Bool?] {
            let r = Self.compile(allowExternalIPs: allow)
            #expect(NftScript.render(r.ruleset) == golden)
            #expect(!r.diagnostics.contains { $0.field == "spec.externalIPs" })
        }
    }

    @Test("off: a packet to an externalIP passes untouched; the LB VIP of the same service still DNATs")
    func offPacketsToExternalIPsAreNotTouched() throws {
        let table = try #require(Self.compile(allowExternalIPs: false).ruleset.table(.ip, Layout.tableName))
        let node = NodeEnvironment(localAddresses: [IPAddress("192.168.0.2")!.datum])
        func go(_ dst: String) -> [Outcome] {
            walk(Packet(saddr: IPAddress("10.0.1.5")!.datum, daddr: IPAddress(dst)!.datum, proto: 6, dport: 80,
                        origin: .network(interface: "eth0")), through: table, node: node)
        }
        #expect(go("192.168.99.33").allSatisfy { $0.fate == .accepted && $0.dnat == nil })
        #expect(go("192.168.99.22").allSatisfy { $0.fate == .accepted && $0.dnat == nil })
        #expect(go("1.2.3.4").map { $0.dnat?.address } == [IPAddress("10.180.0.2")!.datum])
    }
}

/// `--nodeport-addresses all` is the match-every-local-address mode of
/// `Rulesets/nodeport-all-addresses` (which spells it `0.0.0.0/0`).
struct NodePortAddressesAllTests {
    static let set = "nodeport-all-addresses"

    @Test("nodePortAddresses: [all] compiles the reviewed nodeport-all-addresses golden")
    func allIsTheMatchAllGolden() throws {
        let path = try #require(RulesetDirectory.config(Self.set))
        var config = try #require(KubeProxyConfiguration.load(path: path).0)
        #expect(config.nodePortAddresses == ["0.0.0.0/0"])
        config.nodePortAddresses = ["all"]
        let (options, diagnostics) = NodeOptions.merge(config: config, configFile: path, flags: NodeOptionFlags(config: path),
                                                       systemHostname: "golden-node")
        #expect(diagnostics.isEmpty)
        let objects = ManifestLoader().load(paths: [RulesetDirectory.path(Self.set)]).objects
        let r = Pipeline.compile(objects: objects, options: options)
        let golden = try String(contentsOfFile: RulesetDirectory.path(Self.set) + "/expected.nft", encoding: .utf8)
        #expect(NftScript.render(r.ruleset) == golden)
        #expect(r.ruleset.table(.ip, Layout.tableName)?.set(named: "nodeport-ips") == nil)
    }

    @Test("--nodeport-addresses all differs from the default (primary) only in how node addresses match")
    func allFromTheFlagUsesFib() throws {
        let dir = RulesetDirectory.path("nodeport")
        let all = Pipeline.compile(sources: [dir], flags: NodeOptionFlags(hostnameOverride: "node-a", nodePortAddresses: ["all"]))
        let primary = Pipeline.compile(sources: [dir], flags: NodeOptionFlags(hostnameOverride: "node-a"))
        let allTable = try #require(all.ruleset.table(.ip, Layout.tableName))
        let primaryTable = try #require(primary.ruleset.table(.ip, Layout.tableName))
        #expect(allTable.set(named: "nodeport-ips") == nil && primaryTable.set(named: "nodeport-ips") != nil)
        #expect(NftScript.render(all.ruleset).contains("fib daddr type local"))
        #expect(!NftScript.render(primary.ruleset).contains("fib daddr type local"))
        #expect(all.diagnostics.filter(\.isError).isEmpty)
    }
}
