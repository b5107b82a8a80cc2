import Testing
import SluiceCompiler
import SluiceEmit
import SluiceIR
import SluiceModel

/// `--traffic-counters`: the `service-traffic` set and the `count-traffic` chain, jumped to on
/// `ct status dnat` from the three priority-0 filter base chains; nothing of it without the flag.
struct TrafficCounterTests {
    static func table(trafficCounters: Bool, family: IPFamily = .ipv4) -> Table {
        var plan = Fixtures.overall
        plan.context.trafficCounters = trafficCounters
        if family == .ipv6 {
            plan = FamilyPlan(context: FamilyContext(family: .ipv6, nodeName: "node1", trafficCounters: trafficCounters), servicePorts: [])
        }
        return Compiler.compile(plan).table
    }

    static func rules(_ t: Table, _ chain: String) -> [String] {
        t.chains.first { $0.name == chain }?.rules.map(\.description) ?? []
    }

    @Test func offByDefaultAndAbsentWhenOff() {
        #expect(FamilyContext(family: .ipv4, nodeName: "n").trafficCounters == false)
        #expect(NodeOptions(nodeName: "n").trafficCounters == false)
        let t = Self.table(trafficCounters: false)
        #expect(!t.sets.contains { $0.name == Layout.serviceTraffic })
        #expect(!t.chains.contains { $0.name == Layout.countTraffic })
        let text = NftScript.render(t)
        #expect(!text.contains("service-traffic") && !text.contains("count-traffic"))
    }

    @Test func setIsDeclaredLikeTheConnectionCounters() throws {
        let t = Self.table(trafficCounters: true)
        let set = try #require(t.sets.first { $0.name == Layout.serviceTraffic })
        var connections = Layout(.ipv4).connectionCounters(Layout.serviceConnections)
        connections.name = Layout.serviceTraffic
        connections.comment = "packets and bytes per service IP port"
        #expect(set == connections)
        #expect(set.declarationLines == [
            "typeof ip daddr . meta l4proto . th dport", "flags dynamic,timeout", "timeout 3600s", "size 1048576", "counter",
            "comment \"packets and bytes per service IP port\"",
        ])
    }

    @Test(arguments: [IPFamily.ipv4, .ipv6])
    func chainUpdatesTheSetPerProtocol(_ family: IPFamily) {
        let t = Self.table(trafficCounters: true, family: family)
        let ip = family == .ipv4 ? "ip" : "ip6"
        #expect(Self.rules(t, Layout.countTraffic) == ["tcp", "udp", "sctp"].map {
            "meta l4proto \($0) update @service-traffic { ct original \(ip) daddr . meta l4proto . ct original proto-dst }"
        })
    }

    /// Every packet of a DNATed connection (any ct state) jumps from the forward, input and
    /// output filter chains (one of which every packet traverses); the other chains are as
    /// without the flag.
    @Test func jumpedToFromTheThreeFilterHooksOnCtStatusDnat() {
        let on = Self.table(trafficCounters: true), off = Self.table(trafficCounters: false)
        for chain in ["filter-forward", "filter-input", "filter-output"] {
            #expect(Self.rules(on, chain) == Self.rules(off, chain) + ["ct status dnat jump count-traffic"], "\(chain)")
        }
        let jumping = on.chains.filter { $0.rules.contains { $0.description.contains("jump count-traffic") } }.map(\.name)
        #expect(jumping.sorted() == ["filter-forward", "filter-input", "filter-output"])
        for chain in off.chains {
            #expect(on.chains.first { $0.name == chain.name } == chain || chain.name.hasPrefix("filter-"), "\(chain.name)")
        }
        #expect(on.sets.filter { $0.name != Layout.serviceTraffic } == off.sets)
        #expect(on.validate() == [])
    }

    /// Counters read back are named by service port; the addresses of one port add up, and a
    /// tuple no Service owns stays under its address only.
    @Test func trafficCountsNameAndSumTheCounters() {
        let web = Fixtures.name("shop", "web"), plans = [
            ServicePortPlan(name: web, family: .ipv4, clusterIP: Fixtures.ip("10.96.0.1"), port: 80, nodePort: 30080,
                            externalIPs: [Fixtures.ip("192.0.2.1")]),
        ]
        func key(_ ip: String, _ port: UInt16) -> [Datum] { [Fixtures.ip(ip).datum, .tcp, .port(port)] }
        var counts = TrafficCounts()
        counts.add([key("10.96.0.1", 80): ElementCounter(packets: 10, bytes: 1000),
                    key("192.0.2.1", 80): ElementCounter(packets: 3, bytes: 300),
                    key("192.168.0.2", 30080): ElementCounter(packets: 2, bytes: 200),
                    key("10.96.0.9", 80): ElementCounter(packets: 7, bytes: 700)],
                   services: ServicePortNames(plans: plans))
        #expect(counts.services == [web: ElementCounter(packets: 15, bytes: 1500)])
        #expect(counts.tuples.count == 4)
        #expect(counts.tuples[.init(address: Fixtures.ip("10.96.0.9"), proto: .tcp, port: 80)] == ElementCounter(packets: 7, bytes: 700))
    }
}
