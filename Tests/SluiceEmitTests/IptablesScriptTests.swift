import SluiceEmit
import SluiceModel
import Testing

/// The six services of upstream `TestOverallIPTablesRules`.
enum UpstreamOverall {
    static var plan: FamilyPlan {
        IptFix.plan([
            IptFix.port("ns1", "svc1", clusterIP: "172.30.0.41", cluster: [IptFix.ep("10.180.0.1")]),
            IptFix.port("ns2", "svc2", clusterIP: "172.30.0.42", nodePort: 3001, externalIPs: ["192.168.99.22"],
                        lbIPs: ["1.2.3.4"], eTPLocal: true, healthCheckNodePort: 30000,
                        cluster: [IptFix.ep("10.180.0.2")]),
            IptFix.port("ns3", "svc3", clusterIP: "172.30.0.43", nodePort: 3003, cluster: [IptFix.ep("10.180.0.3")]),
            IptFix.port("ns4", "svc4", clusterIP: "172.30.0.44", externalIPs: ["192.168.99.33"],
                        cluster: [IptFix.ep("10.180.0.4"), IptFix.ep("10.180.0.5")], local: [IptFix.ep("10.180.0.5")]),
            IptFix.port("ns5", "svc5", clusterIP: "172.30.0.45", nodePort: 3002, lbIPs: ["5.6.7.8"],
                        sourceRanges: ["203.0.113.0/25"], affinity: 10800, cluster: [IptFix.ep("10.180.0.3")]),
            IptFix.port("ns6", "svc6", clusterIP: "172.30.0.46"),
        ])
    }

    /// Upstream's expected output with localhost NodePorts on, minus the two `-m nfacct`
    /// constructs (which need nfacct counters), plus `--random-fully` (upstream's fake
    /// iptables reports no support for it).
    static let expected = """
        *filter
        :KUBE-NODEPORTS - [0:0]
        :KUBE-SERVICES - [0:0]
        :KUBE-EXTERNAL-SERVICES - [0:0]
        :KUBE-FIREWALL - [0:0]
        :KUBE-FORWARD - [0:0]
        :KUBE-PROXY-FIREWALL - [0:0]
        -A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
        -A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
        -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP
        -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP
        -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP
        -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
        -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
        -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
        -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP
        COMMIT
        *nat
        :KUBE-NODEPORTS - [0:0]
        :KUBE-SERVICES - [0:0]
        :KUBE-EXT-4SW47YFZTEDKD3PK - [0:0]
        :KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
        :KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]
        :KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
        :KUBE-FW-NUKIZ6OKUXPJNT4C - [0:0]
        :KUBE-MARK-MASQ - [0:0]
        :KUBE-POSTROUTING - [0:0]
        :KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
        :KUBE-SEP-I77PXRDZVX7PMWMN - [0:0]
        :KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
        :KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
        :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
        :KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
        :KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
        :KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
        :KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]
        :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
        :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
        -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
        -A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
        -A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
        -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
        -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
        -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
        -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
        -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
        -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
        -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j KUBE-EXT-4SW47YFZTEDKD3PK
        -A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
        -A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C
        -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
        -A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade traffic for ns4/svc4:p80 external destinations" -j KUBE-MARK-MASQ
        -A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVC-4SW47YFZTEDKD3PK
        -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
        -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
        -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
        -A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ
        -A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
        -A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
        -A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
        -A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
        -A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"
        -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
        -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
        -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
        -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
        -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
        -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
        -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
        -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
        -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
        -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
        -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
        -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
        -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
        -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
        -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
        -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
        -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
        -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
        -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
        -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
        -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
        -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
        -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap -j KUBE-SEP-I77PXRDZVX7PMWMN
        -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN
        -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
        -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
        -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
        -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
        COMMIT

        """
}

@Suite("iptables-restore script structure")
struct IptablesScriptTests {
    static let svcChain = IptablesChainName.clusterPolicy(IptFix.name("ns1", "svc1"))
    static let svlChain = IptablesChainName.localPolicy(IptFix.name("ns1", "svc1"))
    static let extChain = IptablesChainName.external(IptFix.name("ns1", "svc1"))
    static let fwChain = IptablesChainName.firewall(IptFix.name("ns1", "svc1"))
    static func sep(_ ip: String, _ port: UInt16 = 80) -> String {
        IptablesChainName.endpoint(IptFix.name("ns1", "svc1"), IptFix.ep(ip, port))
    }

    static func render(_ ports: [ServicePortPlan], context: FamilyContext = IptFix.context(),
                       options: IptablesRestoreOptions = .init()) -> ParsedScript {
        ParsedScript(renderIptablesRestore(IptFix.plan(ports, context: context), options: options))
    }

    @Test("upstream TestOverallIPTablesRules, byte for byte (kube-proxy's --noflush full sync)")
    func upstreamOverall() {
        let out = renderIptablesRestore(UpstreamOverall.plan, onlyServices: nil,
                                        options: .init(localhostNodePorts: true))
        #expect(out == UpstreamOverall.expected)
    }

    @Test("output is byte-stable and independent of input order")
    func deterministic() {
        let plan = UpstreamOverall.plan
        let shuffled = FamilyPlan(context: plan.context, servicePorts: plan.servicePorts.reversed())
        let a = renderIptablesRestore(plan), b = renderIptablesRestore(shuffled)
        #expect(a == b)
        #expect(a == renderIptablesRestore(plan))
    }

    @Test("standalone script: builtin chains and kube-proxy's jump rules")
    func standaloneJumps() {
        let s = Self.render([IptFix.port(cluster: [IptFix.ep("10.180.0.1")])])
        #expect(s.tableOrder == ["filter", "nat"])
        #expect(Array(s.tables["filter"]!.chains.prefix(3)) == ["INPUT", "FORWARD", "OUTPUT"])
        #expect(Array(s.tables["nat"]!.chains.prefix(4)) == ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"])
        #expect(s.rules("filter", "INPUT") == [
            "-m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL",
            "-m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS",
            "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
        ])
        #expect(s.rules("filter", "FORWARD") == [
            "-m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL",
            "-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
            "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
            "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
        ])
        #expect(s.rules("filter", "OUTPUT") == [
            "-m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL",
            "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        ])
        #expect(s.rules("nat", "PREROUTING") == ["-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"])
        #expect(s.rules("nat", "OUTPUT") == ["-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"])
        #expect(s.rules("nat", "POSTROUTING") == ["-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING"])
        // --noflush scripts never touch builtin chains.
        let noflush = ParsedScript(renderIptablesRestore(IptFix.plan([]), onlyServices: nil))
        #expect(!noflush.hasChain("filter", "INPUT") && !noflush.hasChain("nat", "PREROUTING"))
    }

    @Test("masquerade chains use the configured mark bit")
    func masqueradeMark() {
        var ctx = IptFix.context()
        ctx.masqueradeBit = 5
        let s = Self.render([], context: ctx)
        #expect(s.rules("nat", "KUBE-MARK-MASQ") == ["-j MARK --or-mark 0x20"])
        #expect(s.rules("nat", "KUBE-POSTROUTING") == [
            "-m mark ! --mark 0x20/0x20 -j RETURN",
            "-j MARK --xor-mark 0x20",
            "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully",
        ])
        #expect(s.rules("filter", "KUBE-FORWARD").contains(
            "-m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x20/0x20 -j ACCEPT"))
    }

    @Test("ClusterIP: dispatch, off-cluster masquerade, hairpin, DNAT; UDP and SCTP")
    func clusterIP() {
        let s = Self.render([
            IptFix.port(cluster: [IptFix.ep("10.180.0.1", 8080)]),
            IptFix.port("ns2", "dns", portName: "dns", proto: .udp, clusterIP: "172.30.0.10", port: 53,
                        cluster: [IptFix.ep("10.180.0.9", 5353)]),
            IptFix.port("ns2", "dns", portName: "sctp", proto: .sctp, clusterIP: "172.30.0.10", port: 53,
                        cluster: [IptFix.ep("10.180.0.9", 5353)]),
        ])
        #expect(s.rules("nat", "KUBE-SERVICES").first ==
            "-m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j \(Self.svcChain)")
        #expect(s.rules("nat", Self.svcChain) == [
            "-m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ",
            "-m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:8080\" -j \(Self.sep("10.180.0.1", 8080))",
        ])
        #expect(s.rules("nat", Self.sep("10.180.0.1", 8080)) == [
            "-m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ",
            "-m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:8080",
        ])
        let udpSvc = IptablesChainName.clusterPolicy(IptFix.name("ns2", "dns", "dns", .udp))
        #expect(s.rules("nat", "KUBE-SERVICES").contains(
            "-m comment --comment \"ns2/dns:dns cluster IP\" -m udp -p udp -d 172.30.0.10 --dport 53 -j \(udpSvc)"))
        let sctpSep = IptablesChainName.endpoint(IptFix.name("ns2", "dns", "sctp", .sctp), IptFix.ep("10.180.0.9", 5353))
        #expect(s.rules("nat", sctpSep).last == "-m comment --comment ns2/dns:sctp -m sctp -p sctp -j DNAT --to-destination 10.180.0.9:5353")
        // No external chains for a plain ClusterIP service.
        #expect(s.chains("nat", prefix: "KUBE-EXT-").isEmpty && s.chains("nat", prefix: "KUBE-FW-").isEmpty)
        // NodePort tail excludes localhost (no route_localnet, like nftables mode).
        #expect(s.rules("nat", "KUBE-SERVICES").last ==
            "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS")
    }

    @Test("NodePort: KUBE-NODEPORTS to KUBE-EXT, which masquerades (eTP=Cluster)")
    func nodePort() {
        let s = Self.render([IptFix.port(nodePort: 30080, cluster: [IptFix.ep("10.180.0.1")])])
        #expect(s.rules("nat", "KUBE-NODEPORTS") == ["-m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 30080 -j \(Self.extChain)"])
        #expect(s.rules("nat", Self.extChain) == [
            "-m comment --comment \"masquerade traffic for ns1/svc1:p80 external destinations\" -j KUBE-MARK-MASQ",
            "-j \(Self.svcChain)",
        ])
        #expect(s.rules("filter", "KUBE-EXTERNAL-SERVICES").isEmpty)
    }

    @Test("explicit nodeport-addresses: one -d rule per address, loopback skipped")
    func nodePortAddresses() {
        let ctx = IptFix.context(nodePortAddresses: .ips([IptFix.ip("192.168.0.3"), IptFix.ip("127.0.0.1"), IptFix.ip("192.168.0.2")]))
        let s = Self.render([IptFix.port(nodePort: 30080, cluster: [IptFix.ep("10.180.0.1")])], context: ctx)
        let comment = "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\""
        #expect(Array(s.rules("nat", "KUBE-SERVICES").suffix(2)) == [
            "\(comment) -d 192.168.0.2 -j KUBE-NODEPORTS",
            "\(comment) -d 192.168.0.3 -j KUBE-NODEPORTS",
        ])
        // With localhost NodePorts enabled the loopback address is kept and kubelet's
        // anti-martian chain appears.
        let local = Self.render([], context: ctx, options: .init(localhostNodePorts: true))
        #expect(local.rules("nat", "KUBE-SERVICES").first == "\(comment) -d 127.0.0.1 -j KUBE-NODEPORTS")
        #expect(local.hasChain("filter", "KUBE-FIREWALL"))
        #expect(local.rules("filter", "INPUT").first == "-j KUBE-FIREWALL")
        // No addresses: no NodePort dispatch at all.
        let none = Self.render([], context: IptFix.context(nodePortAddresses: .ips([])))
        #expect(none.rules("nat", "KUBE-SERVICES").isEmpty)
    }

    @Test("LoadBalancer with source ranges: KUBE-FW chain and KUBE-PROXY-FIREWALL drop")
    func loadBalancerSourceRanges() {
        let port = IptFix.port(nodePort: 30080, lbIPs: ["5.6.7.8"], sourceRanges: ["203.0.113.0/25", "192.168.0.0/24"],
                               cluster: [IptFix.ep("10.180.0.1")])
        let s = Self.render([port])
        #expect(s.rules("nat", "KUBE-SERVICES").contains(
            "-m comment --comment \"ns1/svc1:p80 loadbalancer IP\" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j \(Self.fwChain)"))
        // The node IP 192.168.0.2 is inside a range, so the LB IP itself is allowed as source.
        #expect(s.rules("nat", Self.fwChain) == [
            "-m comment --comment \"ns1/svc1:p80 loadbalancer IP\" -s 203.0.113.0/25 -j \(Self.extChain)",
            "-m comment --comment \"ns1/svc1:p80 loadbalancer IP\" -s 192.168.0.0/24 -j \(Self.extChain)",
            "-m comment --comment \"ns1/svc1:p80 loadbalancer IP\" -s 5.6.7.8 -j \(Self.extChain)",
            "-m comment --comment \"other traffic to ns1/svc1:p80 will be dropped by KUBE-PROXY-FIREWALL\"",
        ])
        #expect(s.rules("filter", "KUBE-PROXY-FIREWALL") == [
            "-m comment --comment \"ns1/svc1:p80 traffic not accepted by \(Self.fwChain)\" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP",
        ])
        // NodePorts bypass the firewall.
        #expect(s.rules("nat", "KUBE-NODEPORTS") == ["-m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 30080 -j \(Self.extChain)"])
        // Without ranges the LB IP goes straight to KUBE-EXT.
        let open = Self.render([IptFix.port(lbIPs: ["5.6.7.8"], cluster: [IptFix.ep("10.180.0.1")])])
        #expect(open.chains("nat", prefix: "KUBE-FW-").isEmpty)
        #expect(open.rules("nat", "KUBE-SERVICES").contains(
            "-m comment --comment \"ns1/svc1:p80 loadbalancer IP\" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j \(Self.extChain)"))
        #expect(open.rules("filter", "KUBE-PROXY-FIREWALL").isEmpty)
    }

    @Test("externalIPs with eTP=Cluster")
    func externalIPs() {
        let s = Self.render([IptFix.port(externalIPs: ["192.168.99.33", "192.168.99.34"],
                                         cluster: [IptFix.ep("10.180.0.1"), IptFix.ep("10.180.0.2")])])
        let dispatch = s.rules("nat", "KUBE-SERVICES").filter { $0.contains("external IP") }
        #expect(dispatch == [
            "-m comment --comment \"ns1/svc1:p80 external IP\" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j \(Self.extChain)",
            "-m comment --comment \"ns1/svc1:p80 external IP\" -m tcp -p tcp -d 192.168.99.34 --dport 80 -j \(Self.extChain)",
        ])
        #expect(s.rules("nat", Self.extChain).last == "-j \(Self.svcChain)")
    }

    @Test("eTP=Local with local endpoints: short-circuits, then KUBE-SVL")
    func externalLocalWithEndpoints() {
        let s = Self.render([IptFix.port(nodePort: 30080, lbIPs: ["1.2.3.4"], eTPLocal: true, healthCheckNodePort: 30000,
                                         cluster: [IptFix.ep("10.180.0.1"), IptFix.ep("10.180.0.2")],
                                         local: [IptFix.ep("10.180.0.2")])])
        #expect(s.rules("nat", Self.extChain) == [
            "-m comment --comment \"pod traffic for ns1/svc1:p80 external destinations\" -s 10.0.0.0/8 -j \(Self.svcChain)",
            "-m comment --comment \"masquerade LOCAL traffic for ns1/svc1:p80 external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
            "-m comment --comment \"route LOCAL traffic for ns1/svc1:p80 external destinations\" -m addrtype --src-type LOCAL -j \(Self.svcChain)",
            "-j \(Self.svlChain)",
        ])
        #expect(s.rules("nat", Self.svlChain) == ["-m comment --comment \"ns1/svc1:p80 -> 10.180.0.2:80\" -j \(Self.sep("10.180.0.2"))"])
        #expect(s.rules("filter", "KUBE-EXTERNAL-SERVICES").isEmpty)
        #expect(s.rules("filter", "KUBE-NODEPORTS") == [
            "-m comment --comment \"ns1/svc1:p80 health check node port\" -m tcp -p tcp --dport 30000 -j ACCEPT",
        ])
        // Both endpoints have SEP chains, shared by SVC and SVL.
        #expect(s.chains("nat", prefix: "KUBE-SEP-").count == 2)
    }

    @Test("eTP=Local without local endpoints: external traffic dropped in filter")
    func externalLocalWithoutEndpoints() {
        let s = Self.render([IptFix.port(nodePort: 30080, externalIPs: ["192.168.99.22"], lbIPs: ["1.2.3.4"], eTPLocal: true,
                                         cluster: [IptFix.ep("10.180.0.1")])])
        #expect(s.rules("filter", "KUBE-EXTERNAL-SERVICES") == [
            "-m comment --comment \"ns1/svc1:p80 has no local endpoints\" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP",
            "-m comment --comment \"ns1/svc1:p80 has no local endpoints\" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP",
            "-m comment --comment \"ns1/svc1:p80 has no local endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j DROP",
        ])
        // The EXT chain still short-circuits pod and node traffic, but has no fall-through.
        #expect(s.rules("nat", Self.extChain).count == 3)
        #expect(!s.hasChain("nat", Self.svlChain))
        // ClusterIP traffic is unaffected.
        #expect(s.rules("nat", "KUBE-SERVICES").first?.hasSuffix("-j \(Self.svcChain)") == true)
    }

    @Test("iTP=Local: ClusterIP goes to KUBE-SVL, or is dropped without local endpoints")
    func internalLocal() {
        let with = Self.render([IptFix.port(iTPLocal: true, cluster: [IptFix.ep("10.180.0.1"), IptFix.ep("10.180.0.2")],
                                            local: [IptFix.ep("10.180.0.2")])])
        #expect(with.rules("nat", "KUBE-SERVICES").first ==
            "-m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j \(Self.svlChain)")
        #expect(with.rules("nat", Self.svlChain).first ==
            "-m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ")
        // Not externally accessible: the cluster chain is not used at all.
        #expect(!with.hasChain("nat", Self.svcChain))
        #expect(with.chains("nat", prefix: "KUBE-SEP-") == [Self.sep("10.180.0.2")])

        let without = Self.render([IptFix.port(iTPLocal: true, cluster: [IptFix.ep("10.180.0.1")])])
        #expect(without.rules("filter", "KUBE-SERVICES") == [
            "-m comment --comment \"ns1/svc1:p80 has no local endpoints\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j DROP",
        ])
        #expect(without.chains("nat", prefix: "KUBE-SVC-").isEmpty && without.chains("nat", prefix: "KUBE-SVL-").isEmpty)
        #expect(without.chains("nat", prefix: "KUBE-SEP-").isEmpty)
    }

    @Test("session affinity: --rcheck rules before the cascade, --set on DNAT")
    func affinity() {
        let s = Self.render([IptFix.port(affinity: 600, cluster: [IptFix.ep("10.180.0.1"), IptFix.ep("10.180.0.2")])])
        let a = Self.sep("10.180.0.1"), b = Self.sep("10.180.0.2")
        #expect(s.rules("nat", Self.svcChain) == [
            "-m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ",
            "-m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -m recent --name \(a) --rcheck --seconds 600 --reap -j \(a)",
            "-m comment --comment \"ns1/svc1:p80 -> 10.180.0.2:80\" -m recent --name \(b) --rcheck --seconds 600 --reap -j \(b)",
            "-m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -m statistic --mode random --probability 0.5000000000 -j \(a)",
            "-m comment --comment \"ns1/svc1:p80 -> 10.180.0.2:80\" -j \(b)",
        ])
        #expect(s.rules("nat", b).last ==
            "-m comment --comment ns1/svc1:p80 -m recent --name \(b) --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80")
    }

    @Test("masqueradeAll marks all ClusterIP traffic; no detector marks none")
    func masqueradeModes() {
        let all = Self.render([IptFix.port(cluster: [IptFix.ep("10.180.0.1")])], context: IptFix.context(masqueradeAll: true))
        #expect(all.rules("nat", Self.svcChain).first ==
            "-m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-MARK-MASQ")

        let port = IptFix.port(nodePort: 30080, eTPLocal: true, cluster: [IptFix.ep("10.180.0.1")], local: [IptFix.ep("10.180.0.1")])
        let none = Self.render([port], context: IptFix.context(detector: LocalTrafficDetector.none))
        #expect(none.rules("nat", Self.svcChain) == ["-m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -j \(Self.sep("10.180.0.1"))"])
        // No pod short-circuit without a detector; the node-local rules stay.
        #expect(none.rules("nat", Self.extChain).count == 3)
        #expect(!none.rules("nat", Self.extChain).contains { $0.contains("pod traffic") })
        #expect(Self.render([IptFix.port(cluster: [IptFix.ep("10.180.0.1")])],
                            context: IptFix.context(detector: .cidrs([]))).rules("nat", Self.svcChain).count == 1)
    }

    @Test("interface detectors and several pod CIDRs")
    func detectors() {
        let port = IptFix.port(nodePort: 30080, eTPLocal: true, cluster: [IptFix.ep("10.180.0.1")], local: [IptFix.ep("10.180.0.1")])
        let bridge = Self.render([port], context: IptFix.context(detector: .bridgeInterface("cbr0")))
        #expect(bridge.rules("nat", Self.svcChain).first?.hasSuffix("--dport 80 ! -i cbr0 -j KUBE-MARK-MASQ") == true)
        #expect(bridge.rules("nat", Self.extChain).first?.contains(" -i cbr0 -j \(Self.svcChain)") == true)
        let prefix = Self.render([port], context: IptFix.context(detector: .interfaceNamePrefix("veth")))
        #expect(prefix.rules("nat", Self.svcChain).first?.hasSuffix("--dport 80 ! -i veth+ -j KUBE-MARK-MASQ") == true)
        let two = Self.render([port], context: IptFix.context(detector: .cidrs([IptFix.cidr("10.0.0.0/16"), IptFix.cidr("10.1.0.0/16")])))
        #expect(two.rules("nat", Self.svcChain).first?.hasSuffix(
            "--dport 80 ! -s 10.0.0.0/16 -m iprange ! --src-range 10.1.0.0-10.1.255.255 -j KUBE-MARK-MASQ") == true)
        #expect(two.rules("nat", Self.extChain).filter { $0.contains("pod traffic") }.count == 2)
    }

    @Test("no endpoints: REJECT for ClusterIP, external IPs, LB IPs and NodePort; no nat chains")
    func noEndpoints() {
        let s = Self.render([IptFix.port(nodePort: 30080, externalIPs: ["192.168.99.11"], lbIPs: ["1.2.3.4"],
                                         sourceRanges: ["203.0.113.0/25"])])
        let c = "-m comment --comment \"ns1/svc1:p80 has no endpoints\""
        #expect(s.rules("filter", "KUBE-SERVICES") == ["\(c) -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT"])
        #expect(s.rules("filter", "KUBE-EXTERNAL-SERVICES") == [
            "\(c) -m tcp -p tcp -d 192.168.99.11 --dport 80 -j REJECT",
            "\(c) -m tcp -p tcp -d 1.2.3.4 --dport 80 -j REJECT",
            "\(c) -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT",
        ])
        #expect(s.chains("nat", prefix: "KUBE-S").filter { $0 != "KUBE-SERVICES" }.isEmpty)
        #expect(s.chains("nat", prefix: "KUBE-EXT-").isEmpty && s.chains("nat", prefix: "KUBE-FW-").isEmpty)
        #expect(s.rules("nat", "KUBE-NODEPORTS").isEmpty)
        #expect(s.rules("filter", "KUBE-PROXY-FIREWALL").isEmpty)
    }

    @Test("weights: weighted cascade, weight-0 endpoints skipped, all-zero is no endpoints")
    func weights() {
        let s = Self.render([IptFix.port(cluster: [IptFix.ep("10.180.0.1", weight: 3), IptFix.ep("10.180.0.2", weight: 0),
                                                   IptFix.ep("10.180.0.3", weight: 1)])])
        #expect(s.rules("nat", Self.svcChain).dropFirst() == [
            "-m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -m statistic --mode random --probability 0.7500000000 -j \(Self.sep("10.180.0.1"))",
            "-m comment --comment \"ns1/svc1:p80 -> 10.180.0.3:80\" -j \(Self.sep("10.180.0.3"))",
        ])
        #expect(!s.hasChain("nat", Self.sep("10.180.0.2")))

        let zero = Self.render([IptFix.port(nodePort: 30080, cluster: [IptFix.ep("10.180.0.1", weight: 0)])])
        #expect(zero.rules("filter", "KUBE-SERVICES").first?.hasSuffix("-j REJECT") == true)
        #expect(zero.rules("filter", "KUBE-EXTERNAL-SERVICES").count == 1)
        #expect(zero.chains("nat", prefix: "KUBE-SEP-").isEmpty)
    }

    @Test("IPv6: same structure, ip6tables addresses")
    func ipv6() {
        let port = IptFix.port(clusterIP: "fd00:172::41", nodePort: 30080, lbIPs: ["2001:db8::5"], sourceRanges: ["2001:db8:1::/48"],
                               cluster: [IptFix.ep("fd00:10::1"), IptFix.ep("fd00:10::2")])
        let s = Self.render([port], context: IptFix.context(.ipv6))
        let sep1 = Self.sep("fd00:10::1")
        #expect(sep1 == IptablesChainName.endpoint(IptFix.name("ns1", "svc1"), "[fd00:10::1]:80"))
        #expect(s.rules("nat", sep1) == [
            "-m comment --comment ns1/svc1:p80 -s fd00:10::1 -j KUBE-MARK-MASQ",
            "-m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination [fd00:10::1]:80",
        ])
        #expect(s.rules("nat", Self.svcChain).first ==
            "-m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d fd00:172::41 --dport 80 ! -s fd00:10::/64 -j KUBE-MARK-MASQ")
        #expect(s.rules("nat", "KUBE-SERVICES").last?.hasSuffix("-m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS") == true)
        #expect(s.rules("nat", Self.fwChain).first == "-m comment --comment \"ns1/svc1:p80 loadbalancer IP\" -s 2001:db8:1::/48 -j \(Self.extChain)")
        // Localhost NodePorts never apply to IPv6.
        let local = Self.render([port], context: IptFix.context(.ipv6), options: .init(localhostNodePorts: true))
        #expect(!local.hasChain("filter", "KUBE-FIREWALL"))
    }

    @Test("large clusters drop per-endpoint comments")
    func largeClusterMode() {
        let eps = (1...3).map { IptFix.ep("10.180.0.\($0)") }
        let s = Self.render([IptFix.port(cluster: eps)], options: .init(largeClusterEndpointThreshold: 2))
        #expect(s.rules("nat", Self.sep("10.180.0.1")) == [
            "-s 10.180.0.1 -j KUBE-MARK-MASQ", "-m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80",
        ])
        #expect(s.rules("nat", Self.svcChain).last == "-j \(Self.sep("10.180.0.3"))")
        #expect(s.rules("nat", Self.svcChain).first?.contains("cluster IP") == true)
    }

    @Test("partial --noflush sync: changed services' chains, top-level chains whole, stale chains deleted")
    func partialSync() {
        let old = UpstreamOverall.plan
        var ports = old.servicePorts
        // ns4/svc4 loses an endpoint; ns1/svc1 is removed.
        let i4 = ports.firstIndex { $0.name.service.namespace == "ns4" }!
        ports[i4].clusterEndpoints = [IptFix.ep("10.180.0.4")]
        ports[i4].localEndpoints = []
        ports.removeAll { $0.name.service.namespace == "ns1" }
        let new = FamilyPlan(context: old.context, servicePorts: ports)

        #expect(IptablesRestoreRenderer.changedServices(old, new) ==
            [ServiceName(namespace: "ns1", name: "svc1"), ServiceName(namespace: "ns4", name: "svc4")])
        let s = ParsedScript(renderIptablesRestoreUpdate(from: old, to: new))
        let svc4 = IptablesChainName.clusterPolicy(IptFix.name("ns4", "svc4"))
        // Changed service chains are written, unchanged ones are not.
        #expect(s.hasChain("nat", svc4) && s.rules("nat", svc4).count == 2)
        #expect(!s.hasChain("nat", IptablesChainName.clusterPolicy(IptFix.name("ns3", "svc3"))))
        // Top-level chains are written whole, including unchanged services' dispatch rules.
        #expect(s.rules("nat", "KUBE-SERVICES").contains { $0.contains("ns3/svc3:p80 cluster IP") })
        #expect(s.rules("nat", "KUBE-POSTROUTING").count == 3)
        #expect(s.rules("filter", "KUBE-FORWARD").count == 3)
        // Stale chains: declared (flushed) and deleted.
        let stale = ["KUBE-SEP-C6EBXVWJJZMIWKLZ", "KUBE-SEP-SXIVWICOYRO3J4NJ", "KUBE-SVC-XPGD46QRK7WJZT7O"]
        #expect(s.tables["nat"]!.deletions == stale)
        for chain in stale { #expect(s.hasChain("nat", chain) && s.rules("nat", chain).isEmpty) }
        #expect(!s.hasChain("filter", "INPUT"))

        // Explicit form; a deleted chain that is also written is not deleted.
        let explicit = ParsedScript(renderIptablesRestore(new, onlyServices: [ServiceName(namespace: "ns4", name: "svc4")],
                                                          deletedChains: [svc4, "KUBE-SEP-C6EBXVWJJZMIWKLZ"]))
        #expect(explicit.tables["nat"]!.deletions == ["KUBE-SEP-C6EBXVWJJZMIWKLZ"])
        // A context change forces every service's chains.
        var ctx = new.context
        ctx.masqueradeAll = true
        let full = ParsedScript(renderIptablesRestoreUpdate(from: old, to: FamilyPlan(context: ctx, servicePorts: ports)))
        #expect(full.hasChain("nat", IptablesChainName.clusterPolicy(IptFix.name("ns3", "svc3"))))
    }

    @Test("natServiceChains lists exactly the per-service chains of the script")
    func natServiceChains() {
        let plan = UpstreamOverall.plan
        let declared = ParsedScript(renderIptablesRestore(plan)).tables["nat"]!.chains.filter(IptablesChainName.isServiceChain)
        #expect(IptablesRestoreRenderer.natServiceChains(plan) == Set(declared))
        #expect(declared.count == 16)
    }
}
