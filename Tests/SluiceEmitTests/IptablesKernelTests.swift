import Foundation
import SluiceEmit
import SluiceModel
import SluiceTestSupport
import Testing

/// One plan to push through the kernel.
struct IptablesKernelScenario: Sendable, CustomStringConvertible {
    var description: String
    var plan: FamilyPlan
    var options: IptablesRestoreOptions = .init()

    var restoreTool: String { plan.context.family == .ipv6 ? "ip6tables-restore" : "iptables-restore" }
    var saveTool: String { plan.context.family == .ipv6 ? "ip6tables-save" : "iptables-save" }

    static let all: [IptablesKernelScenario] = {
        let eps = [IptFix.ep("10.180.0.1"), IptFix.ep("10.180.0.2", weight: 3), IptFix.ep("10.180.0.3", weight: 0)]
        let v6eps = [IptFix.ep("fd00:10::1"), IptFix.ep("fd00:10::2")]
        return [
            .init(description: "upstream overall", plan: UpstreamOverall.plan),
            .init(description: "upstream overall, localhost nodeports", plan: UpstreamOverall.plan,
                  options: .init(localhostNodePorts: true)),
            .init(description: "ClusterIP tcp/udp/sctp", plan: IptFix.plan([
                IptFix.port(cluster: eps),
                IptFix.port("ns2", "dns", portName: "dns", proto: .udp, clusterIP: "172.30.0.10", port: 53,
                            cluster: [IptFix.ep("10.180.0.9", 53)]),
                IptFix.port("ns2", "dns", portName: "sctp", proto: .sctp, clusterIP: "172.30.0.10", port: 53,
                            cluster: [IptFix.ep("10.180.0.9", 53)]),
            ])),
            .init(description: "NodePort, explicit addresses", plan: IptFix.plan(
                [IptFix.port(nodePort: 30080, cluster: eps)],
                context: IptFix.context(nodePortAddresses: .ips([IptFix.ip("192.168.0.2"), IptFix.ip("127.0.0.1")])))),
            .init(description: "LB with source ranges and affinity", plan: IptFix.plan([
                IptFix.port(nodePort: 30080, lbIPs: ["5.6.7.8", "5.6.7.9"], sourceRanges: ["203.0.113.0/25", "192.168.0.0/16"],
                            affinity: 10800, cluster: eps),
            ])),
            .init(description: "externalIPs, eTP=Local with and without local endpoints", plan: IptFix.plan([
                IptFix.port(nodePort: 30080, externalIPs: ["192.168.99.1"], lbIPs: ["1.2.3.4"], eTPLocal: true,
                            healthCheckNodePort: 30000, cluster: eps, local: [IptFix.ep("10.180.0.1")]),
                IptFix.port("ns2", "svc2", clusterIP: "172.30.0.42", nodePort: 30081, externalIPs: ["192.168.99.2"],
                            lbIPs: ["1.2.3.5"], eTPLocal: true, healthCheckNodePort: 30001, cluster: eps),
            ])),
            .init(description: "iTP=Local with and without local endpoints", plan: IptFix.plan([
                IptFix.port(iTPLocal: true, cluster: eps, local: [IptFix.ep("10.180.0.2")]),
                IptFix.port("ns2", "svc2", clusterIP: "172.30.0.42", iTPLocal: true, cluster: eps),
            ])),
            .init(description: "masqueradeAll", plan: IptFix.plan([IptFix.port(nodePort: 30080, cluster: eps)],
                                                                   context: IptFix.context(masqueradeAll: true))),
            .init(description: "no detector", plan: IptFix.plan(
                [IptFix.port(nodePort: 30080, eTPLocal: true, cluster: eps, local: eps)],
                context: IptFix.context(detector: LocalTrafficDetector.none))),
            .init(description: "interface detectors and two CIDRs", plan: IptFix.plan(
                [IptFix.port(nodePort: 30080, eTPLocal: true, cluster: eps, local: eps)],
                context: IptFix.context(detector: .cidrs([IptFix.cidr("10.0.0.0/16"), IptFix.cidr("10.1.0.0/16")])))),
            .init(description: "bridge detector", plan: IptFix.plan(
                [IptFix.port(nodePort: 30080, eTPLocal: true, cluster: eps, local: eps)],
                context: IptFix.context(detector: .interfaceNamePrefix("veth")))),
            .init(description: "no endpoints", plan: IptFix.plan([
                IptFix.port(nodePort: 30080, externalIPs: ["192.168.99.1"], lbIPs: ["1.2.3.4"], sourceRanges: ["10.0.0.0/8"]),
                IptFix.port("ns2", "svc2", clusterIP: "172.30.0.42", cluster: [IptFix.ep("10.180.0.1", weight: 0)]),
            ])),
            .init(description: "large cluster mode", plan: IptFix.plan([IptFix.port(affinity: 60, cluster: eps)]),
                  options: .init(largeClusterEndpointThreshold: 1)),
            .init(description: "IPv6", plan: IptFix.plan([
                IptFix.port(clusterIP: "fd00:172::41", nodePort: 30080, externalIPs: ["2001:db8::9"], lbIPs: ["2001:db8::5"],
                            sourceRanges: ["2001:db8:1::/48"], affinity: 300, cluster: v6eps),
                IptFix.port("ns2", "svc2", clusterIP: "fd00:172::42", nodePort: 30081, lbIPs: ["2001:db8::6"], eTPLocal: true,
                            healthCheckNodePort: 30001, cluster: v6eps, local: [IptFix.ep("fd00:10::2")]),
                IptFix.port("ns3", "svc3", clusterIP: "fd00:172::43"),
            ], context: IptFix.context(.ipv6, detector: .cidrs([IptFix.cidr("fd00:10::/64"), IptFix.cidr("fd00:11::/64")])))),
            .init(description: "IPv6, explicit nodeport addresses", plan: IptFix.plan(
                [IptFix.port(clusterIP: "fd00:172::41", nodePort: 30080, cluster: v6eps)],
                context: IptFix.context(.ipv6, nodePortAddresses: .ips([IptFix.ip("fd00:192::2"), IptFix.ip("::1")])))),
        ]
    }()
}

/// Every script goes through the real `iptables-restore` in a network namespace created for
/// the test; the root namespace's firewall is never touched. These tests need root and fail
/// (never skip) without it.
@Suite("iptables-restore in a network namespace")
struct IptablesKernelTests {
    static let tools = ["ip", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save"]

    @Test("standalone scripts pass --test and load into a fresh namespace", arguments: IptablesKernelScenario.all)
    func standalone(_ scenario: IptablesKernelScenario) throws {
        try requireKernelTestEnvironment(tools: Self.tools)
        let script = renderIptablesRestore(scenario.plan, options: scenario.options)
        try withNetworkNamespace(label: "ipt") { ns in
            try ns.runChecked([scenario.restoreTool, "--test"], input: script)
            try ns.runChecked([scenario.restoreTool], input: script)
            let saved = try ns.runChecked([scenario.saveTool]).stdout
            for (table, declared) in Self.declaredChains(script) {
                for chain in declared {
                    #expect(saved.contains(":\(chain) "), "\(table) chain \(chain) missing after load")
                }
            }
            // Rule count per table survives the round trip.
            #expect(Self.ruleCount(saved) == Self.ruleCount(script))
        }
    }

    @Test("--noflush full syncs pass --test and load", arguments: IptablesKernelScenario.all)
    func noflushFullSync(_ scenario: IptablesKernelScenario) throws {
        try requireKernelTestEnvironment(tools: Self.tools)
        let script = renderIptablesRestore(scenario.plan, onlyServices: nil, options: scenario.options)
        try withNetworkNamespace(label: "iptnf") { ns in
            try ns.runChecked([scenario.restoreTool, "--noflush", "--test"], input: script)
            try ns.runChecked([scenario.restoreTool, "--noflush"], input: script)
            // Loading the same sync again is idempotent (chain lines flush the chains).
            try ns.runChecked([scenario.restoreTool, "--noflush"], input: script)
            #expect(Self.ruleCount(try ns.runChecked([scenario.saveTool]).stdout) == Self.ruleCount(script))
        }
    }

    @Test("real load, then a partial --noflush update, checked with iptables-save")
    func loadAndPartialUpdate() throws {
        try requireKernelTestEnvironment(tools: Self.tools)
        let old = UpstreamOverall.plan
        var ports = old.servicePorts
        let i4 = ports.firstIndex { $0.name.service.namespace == "ns4" }!
        ports[i4].clusterEndpoints = [IptFix.ep("10.180.0.4", weight: 1), IptFix.ep("10.180.0.6", weight: 2)]
        ports[i4].localEndpoints = []
        ports.removeAll { $0.name.service.namespace == "ns1" }
        let new = FamilyPlan(context: old.context, servicePorts: ports)

        try withNetworkNamespace(label: "iptup") { ns in
            try ns.runChecked(["iptables-restore"], input: renderIptablesRestore(old))
            let before = try ns.runChecked(["iptables-save", "-t", "nat"]).stdout
            #expect(before.contains(":KUBE-SVC-XPGD46QRK7WJZT7O "))
            #expect(before.contains(":KUBE-SEP-C6EBXVWJJZMIWKLZ "))
            #expect(before.contains("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"))
            #expect(before.contains("-m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC"))
            #expect(before.contains("-j DNAT --to-destination 10.180.0.3:80"))

            let update = renderIptablesRestoreUpdate(from: old, to: new)
            try ns.runChecked(["iptables-restore", "--noflush", "--test"], input: update)
            try ns.runChecked(["iptables-restore", "--noflush"], input: update)
            let nat = try ns.runChecked(["iptables-save", "-t", "nat"]).stdout
            let filter = try ns.runChecked(["iptables-save", "-t", "filter"]).stdout
            // Removed service and endpoint chains are gone; unchanged services stay.
            #expect(!nat.contains("KUBE-SVC-XPGD46QRK7WJZT7O"))
            #expect(!nat.contains("KUBE-SEP-SXIVWICOYRO3J4NJ"))
            #expect(!nat.contains("KUBE-SEP-C6EBXVWJJZMIWKLZ"))
            #expect(nat.contains(":KUBE-SVC-X27LE4BHSL4DOUIK "))
            #expect(nat.contains("-A KUBE-SEP-OYPFS5VJICHGATKP "))
            // The changed service has its new weighted cascade (1:2 → 1/3 first).
            let newSep = IptablesChainName.endpoint(IptFix.name("ns4", "svc4"), IptFix.ep("10.180.0.6"))
            #expect(nat.contains("--probability 0.33333333349 -j KUBE-SEP-UKSFD7AGPMPPLUHC"))
            #expect(nat.contains("-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment \"ns4/svc4:p80 -> 10.180.0.6:80\" -j \(newSep)"))
            // Jump rules are untouched and not duplicated; the state equals a fresh full load.
            #expect(nat.components(separatedBy: "-j KUBE-POSTROUTING").count == 2)
            #expect(filter.components(separatedBy: "-A INPUT ").count == 4)
            try withNetworkNamespace(label: "iptfr") { fresh in
                try fresh.runChecked(["iptables-restore"], input: renderIptablesRestore(new))
                let freshNat = try fresh.runChecked(["iptables-save", "-t", "nat"]).stdout
                #expect(Self.normalized(freshNat) == Self.normalized(nat))
            }
        }
    }

    @Test("real IPv6 load shows ip6tables forms")
    func ipv6Load() throws {
        try requireKernelTestEnvironment(tools: Self.tools)
        let scenario = IptablesKernelScenario.all.first { $0.description == "IPv6" }!
        try withNetworkNamespace(label: "ip6") { ns in
            try ns.runChecked(["ip6tables-restore"], input: renderIptablesRestore(scenario.plan))
            let nat = try ns.runChecked(["ip6tables-save", "-t", "nat"]).stdout
            #expect(nat.contains("-j DNAT --to-destination [fd00:10::1]:80"))
            #expect(nat.contains("! -d ::1/128"))
            let filter = try ns.runChecked(["ip6tables-save", "-t", "filter"]).stdout
            #expect(filter.contains("\"ns3/svc3:p80 has no endpoints\""))
        }
    }

    /// `table → declared kube chains` of a script.
    static func declaredChains(_ script: String) -> [(String, [String])] {
        let parsed = ParsedScript(script)
        return parsed.tableOrder.map { ($0, parsed.tables[$0]!.chains) }
    }

    static func ruleCount(_ text: String) -> Int {
        text.split(separator: "\n").filter { $0.hasPrefix("-A ") }.count
    }

    /// `iptables-save` output without its timestamped comment lines.
    static func normalized(_ saved: String) -> [String] {
        saved.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }
    }
}
