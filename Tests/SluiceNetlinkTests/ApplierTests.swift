import Foundation
import SluiceIR
import SluiceNetlink
import SluiceTestSupport
import Testing

/// A Sluice-shaped table: a dispatch set, an endpoint-slot map and a rule using both.
func slotTable(endpoints: Int, family: Family = .ip) -> Table {
    let key: [Expr] = [.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport), .numgenRandom(mod: 1)]
    var slots: ElementMap = [:]
    var services: ElementMap = [:]
    for i in 0..<endpoints {
        let vip = ip4("10.96.0.0") + UInt32(i / 100)
        let port = UInt16(1000 + i % 100)
        slots[[.ipv4(vip), .tcp, .port(port), .integer(0)]] = [.ipv4(ip4("10.128.0.0") + UInt32(i)), .port(8080)]
        services[[.ipv4(vip), .tcp, .port(port)]] = []
    }
    return Table(family: family, name: "sluice", sets: [
        SetDecl(name: "services", key: [.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport)]),
        SetDecl(name: "slots", key: key, data: [.payload(.ipDaddr), .payload(.thDport)]),
    ], chains: [
        Chain(name: "prerouting", base: BaseChainSpec(type: .nat, hook: .prerouting, priority: -100), rules: [
            Rule([.lookup(.concat([.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport)]), set: "services", negated: false),
                  .dnatMap(.ip, key: .concat(key), map: "slots")]),
        ]),
        Chain(name: "output", base: BaseChainSpec(type: .nat, hook: .output, priority: -100), rules: [
            Rule([.lookup(.concat([.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport)]), set: "services", negated: false),
                  .dnatMap(.ip, key: .concat(key), map: "slots")]),
        ]),
    ], elements: ["slots": slots, "services": services])
}

extension NetlinkKernelTests {
    @Test("read-back round trip: diff(readBack, original) is empty")
    func readBackRoundTrip() throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "rb") { ns in
            var v4 = everyCaseTable()
            // A data-map lookup inside a match: no nft syntax for it, but the IR has it.
            v4.chains[1].rules.append(Rule([.match(.mapLookup(key: .concat([.meta(.l4proto), .payload(.thDport)]), map: "np"),
                                                   .eq, .datum(.ipv4(ip4("10.9.9.9")))), .verdict(.accept)]))
            let original = Ruleset(tables: [v4, ip6Table()])
            let applier = try NftablesApplier(namespace: ns.name)
            try applier.apply(original)
            var readBack: [Table] = []
            for t in original.tables {
                let rb = try #require(try applier.socket.readTable(t.family, t.name))
                #expect(rb.foreign.isEmpty, "foreign: \(rb.foreign)")
                readBack.append(rb.table)
            }
            let tx = diff(Ruleset(tables: readBack), original)
            #expect(tx.isEmpty, "diff not empty: \(tx.operations)")
            #expect(try applier.socket.readTable(.ip, "absent") == nil)
        }
    }

    @Test("adoption: a new applier reads the table back and reconciles without flushing")
    func adoption() throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "adopt") { ns in
            let desired = Ruleset(tables: [slotTable(endpoints: 50)])
            try NftablesApplier(namespace: ns.name).apply(desired)
            let restarted = try NftablesApplier(namespace: ns.name)
            let foreign = try restarted.adopt(tables: [(.ip, "sluice")])
            #expect(foreign.isEmpty)
            #expect(try restarted.apply(desired).isNoOp)
            var changed = desired.tables[0]
            changed.elements["slots"]![[.ipv4(ip4("10.96.0.0")), .tcp, .port(1000), .integer(0)]] = [.ipv4(ip4("10.200.0.1")), .port(9090)]
            let report = try restarted.apply(Ruleset(tables: [changed]))
            #expect(report.transaction.isElementsOnly)
            #expect(report.batches.count == 1)
        }
    }

    @Test("a single endpoint change is sent as element messages only")
    func elementOnlyCommit() throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "elem") { ns in
            let applier = try NftablesApplier(namespace: ns.name)
            var table = slotTable(endpoints: 20)
            let first = try applier.apply(Ruleset(tables: [table]))
            #expect(first.batches.count == 1)
            #expect(try applier.apply(Ruleset(tables: [table])).isNoOp, "unchanged state must send nothing")

            // Replace one endpoint: delete + add of one map element.
            table.elements["slots"]![[.ipv4(ip4("10.96.0.0")), .tcp, .port(1003), .integer(0)]] = [.ipv4(ip4("10.200.0.9")), .port(8080)]
            let report = try applier.apply(Ruleset(tables: [table]))
            let batch = try #require(report.batches.first)
            #expect(report.batches.count == 1)
            #expect(batch.messages == 2)
            #expect(batch.elementMessages == batch.messages)
            #expect(Set(batch.messageTypes).isSubset(of: [UInt16(NFT_MSG_DELSETELEM_), UInt16(NFT_MSG_NEWSETELEM_)]))
            let listed = try ns.runChecked(["nft", "list", "map", "ip", "sluice", "slots"]).stdout
            #expect(listed.contains("10.200.0.9 . 8080"))

            // Add one endpoint: a single NEWSETELEM.
            table.elements["slots"]![[.ipv4(ip4("10.99.0.1")), .tcp, .port(80), .integer(0)]] = [.ipv4(ip4("10.200.0.10")), .port(80)]
            let add = try applier.apply(Ruleset(tables: [table]))
            #expect(add.messages == 1 && add.elementMessages == 1)
        }
    }

    @Test("element lists above 64 KiB split into several messages; a 200k-element map applies", .tags(.large))
    func largeElementLists() throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "big") { ns in
            let applier = try NftablesApplier(namespace: ns.name, maxElementsPerBatch: 1_000_000)
            let t20k = slotTable(endpoints: 20_000)
            let r = try applier.apply(Ruleset(tables: [t20k]))
            #expect(r.batches.count == 1)
            #expect(r.elementMessages > 2, "20k elements need several NEWSETELEM messages, got \(r.elementMessages)")
            let count = try ns.runChecked(["sh", "-c", "nft list map ip sluice slots | grep -o ' : 10[.]128' | wc -l"]).stdout
            #expect(Int(count.trimmingCharacters(in: .whitespacesAndNewlines)) == 20_000)

            var clock = ContinuousClock.now
            func lap(_ what: String) { print("  \(what): \(ContinuousClock.now - clock)"); clock = .now }
            let t200k = slotTable(endpoints: 200_000)
            lap("build IR")
            let big = try applier.apply(Ruleset(tables: [t200k]))
            lap("apply")
            #expect(big.bytes > 212_992, "batch must exceed the default sndbuf")
            let services = try ns.runChecked(["sh", "-c", "nft list set ip sluice services | grep -o ' . tcp . ' | wc -l"]).stdout
            #expect(Int(services.trimmingCharacters(in: .whitespacesAndNewlines)) == 200_000)
            lap("nft list")
            let rb = try #require(try applier.socket.readTable(.ip, "sluice"))
            lap("read back")
            #expect(rb.table.elements["slots"]?.count == 200_000)
            #expect(rb.table.elements["services"]?.count == 200_000)
            print("200k-element map: \(big.messages) messages, \(big.bytes) bytes, \(big.batches.map(\.iovecs)) iovecs, "
                  + "build \(big.batches.map(\.buildSeconds)) s, kernel \(big.batches.map(\.kernelSeconds)) s")
        }
    }

    @Test("chunked cold start: skeleton first, slot elements before dispatch elements, bounded batches")
    func chunkedColdStart() throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "chunk") { ns in
            let applier = try NftablesApplier(namespace: ns.name, maxElementsPerBatch: 5_000, elementOrder: ["slots", "services"])
            let table = slotTable(endpoints: 12_000)
            let report = try applier.apply(Ruleset(tables: [table]))
            #expect(report.batches.count >= 6)
            #expect(report.batches[0].elementMessages == 0, "first batch is the skeleton")
            // Every element batch stays bounded; slot batches come before service batches.
            let elementTypes = report.batches.dropFirst().filter { $0.elementMessages > 0 }
            #expect(elementTypes.count >= 5)
            let rb = try #require(try applier.socket.readTable(.ip, "sluice"))
            #expect(diff(Ruleset(tables: [rb.table]), Ruleset(tables: [table])).isEmpty)
            // The default order (no elementOrder) derives the same from how rules use the sets.
            applier.elementOrder = []
            let chunks = applier.chunked(diff(Ruleset(), Ruleset(tables: [table])), desired: Ruleset(tables: [table]))
            let setOrder = chunks.flatMap { $0 }.compactMap { op -> String? in
                if case .addElements(_, _, let s, _) = op { return s.name }
                return nil
            }
            #expect(setOrder.firstIndex(of: "services")! > setOrder.lastIndex(of: "slots")!)
            #expect(chunks.allSatisfy { $0.reduce(0) { $0 + ($1.isElementOperation ? $1.objectCount : 0) } <= 5_000 })
        }
    }

    @Test("streamed cold start (create): bounded batches, slot elements first, same table as apply; untracked elements", arguments: [true, false])
    func streamedCreate(tracksElements: Bool) throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "create") { ns in
            let applier = try NftablesApplier(namespace: ns.name, maxElementsPerBatch: 5_000, tracksElements: tracksElements)
            let table = slotTable(endpoints: 12_000)
            let report = try applier.create(table.withoutElements, elements: TableElements(table))
            #expect(report.batches.count >= 6)
            #expect(report.batches[0].elementMessages == 0, "first batch is the skeleton")
            let rb = try #require(try applier.socket.readTable(.ip, "sluice"))
            #expect(diff(Ruleset(tables: [rb.table]), Ruleset(tables: [table])).isEmpty)
            #expect(applier.committed.table(.ip, "sluice")?.elementCount == (tracksElements ? 24_000 : 0))
            #expect(applier.committed.table(.ip, "sluice")?.chains == table.chains)

            // An element transaction updates the kernel (and, if tracked, the committed state).
            let key: [Datum] = [.ipv4(ip4("10.96.0.0")), .tcp, .port(1000), .integer(0)]
            let old = table.elements["slots"]![key]!
            let decl = table.set(named: "slots")!
            let tx = Transaction([.deleteElements(.ip, "sluice", set: decl, [Element(key, old)]),
                                  .addElements(.ip, "sluice", set: decl, [Element(key, [.ipv4(ip4("10.200.0.7")), .port(9090)])])])
            try applier.apply(transaction: tx)
            #expect(try ns.runChecked(["nft", "list", "map", "ip", "sluice", "slots"]).stdout.contains("10.200.0.7 . 9090"))

            // A full apply diffs against the kernel's elements when they are not tracked.
            var desired = table
            desired.elements["services"]![[.ipv4(ip4("10.2.2.2")), .tcp, .port(80)]] = []
            let full = try applier.apply(Ruleset(tables: [desired]))
            #expect(full.transaction.isElementsOnly)
            #expect(full.transaction.objectCount == 3, "\(full.transaction.operations)")
            #expect(try applier.apply(Ruleset(tables: [desired])).isNoOp)

            // create() on a table the applier already has falls back to a diff.
            let again = try applier.create(desired.withoutElements, elements: TableElements(desired))
            #expect(again.isNoOp)
        }
    }

    @Test("a transaction referencing a missing set is rejected atomically and names the IR operation")
    func errorMapping() throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "err") { ns in
            let socket = try NetlinkSocket(namespace: ns.name)
            let ops: [SluiceIR.Operation] = [
                .addTable(.ip, "sluice", comment: nil),
                .addChain(.ip, "sluice", Chain(name: "c")),
                .addRule(.ip, "sluice", chain: "c", Rule([.verdict(.accept)])),
                .addRule(.ip, "sluice", chain: "c", Rule([.lookup(.payload(.ipDaddr), set: "missing", negated: false), .verdict(.accept)])),
                .addRule(.ip, "sluice", chain: "c", Rule([.verdict(.drop)])),
            ]
            let known = Ruleset(tables: [Table(family: .ip, name: "sluice", sets: [SetDecl(name: "missing", key: [.payload(.ipDaddr)])])])
            let error = #expect(throws: NetlinkError.self) { try socket.commit(ops, known: [known]) }
            #expect(error?.kind == .kernel)
            #expect(error?.errnoName == "ENOENT")
            #expect(error?.irOperation == ops[3])
            #expect(error?.operation == "NFT_MSG_NEWRULE")
            #expect("\(error!)".contains("add rule ip sluice c"))
            // Nothing was committed.
            let tables = try ns.runChecked(["nft", "list", "tables"]).stdout
            #expect(!tables.contains("sluice"))

            let jumpOps: [SluiceIR.Operation] = [
                .addTable(.ip, "sluice", comment: nil),
                .addChain(.ip, "sluice", Chain(name: "c")),
                .addRule(.ip, "sluice", chain: "c", Rule([.verdict(.jump("nowhere"))])),
            ]
            let jumpError = #expect(throws: NetlinkError.self) { try socket.commit(jumpOps) }
            #expect(jumpError?.irOperation == jumpOps[2])
            #expect(try ns.runChecked(["nft", "list", "tables"]).stdout.isEmpty)
        }
    }

    @Test("the generation id moves when someone else writes; the applier notices and reconciles")
    func generationCheck() throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "gen") { ns in
            let applier = try NftablesApplier(namespace: ns.name)
            var table = slotTable(endpoints: 3)
            try applier.apply(Ruleset(tables: [table]))
            let before = try applier.currentGeneration()
            #expect(applier.expectedGeneration == before)
            try ns.runChecked(["nft", "add", "element", "ip", "sluice", "services", "{ 10.1.1.1 . tcp . 99 }"])
            let after = try applier.currentGeneration()
            #expect(after != before)

            // The next apply carries the stale generation, is refused, re-reads and reconciles:
            // the foreign element disappears, the new one is added.
            table.elements["services"]![[.ipv4(ip4("10.2.2.2")), .tcp, .port(80)]] = []
            let report = try applier.apply(Ruleset(tables: [table]))
            #expect(report.transaction.operations.contains { op in
                if case .deleteElements(_, _, let s, let e) = op { return s.name == "services" && e.count == 1 }
                return false
            })
            let listed = try ns.runChecked(["nft", "list", "set", "ip", "sluice", "services"]).stdout
            #expect(!listed.contains("10.1.1.1"))
            #expect(listed.contains("10.2.2.2"))
        }
    }

    @Test("cleanup deletes own tables and kube-proxy tables, ignoring missing ones")
    func cleanup() throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "clean") { ns in
            try ns.runChecked(["nft", "add", "table", "ip", "kube-proxy"])
            let applier = try NftablesApplier(namespace: ns.name)
            try applier.apply(Ruleset(tables: [slotTable(endpoints: 2)]))
            #expect(try applier.deleteKubeProxyTables() == [.ip])
            #expect(try applier.deleteKubeProxyTables().isEmpty)
            try applier.deleteOwnTables()
            #expect(try ns.runChecked(["nft", "list", "tables"]).stdout.isEmpty)
        }
    }
}

// NFT_MSG_* numbers for assertions (tests do not import the C module).
let NFT_MSG_NEWSETELEM_ = 12
let NFT_MSG_DELSETELEM_ = 14

extension Tag {
    @Tag static var large: Self
}

extension NetlinkKernelTests {
    @Test("reconcile (restart, drift): only the element difference is committed, set by set, in bounded batches; a new set is added")
    func reconcileCommitsTheDifference() throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "reconcile") { ns in
            let table = slotTable(endpoints: 12_000)
            try NftablesApplier(namespace: ns.name).apply(Ruleset(tables: [table]))

            // A restarted process that holds no elements reconciles against what it wants.
            let restarted = try NftablesApplier(namespace: ns.name, maxElementsPerBatch: 5_000, tracksElements: false)
            try restarted.adopt(tables: [(.ip, "sluice")])
            #expect(restarted.committed.table(.ip, "sluice")?.elementCount == 0, "adoption keeps the structure only")
            #expect(try restarted.reconcile(table.withoutElements, elements: TableElements(table)).isNoOp)

            var want = table
            let key: [Datum] = [.ipv4(ip4("10.96.0.0")), .tcp, .port(1000), .integer(0)]
            want.elements["slots"]![key] = [.ipv4(ip4("10.200.0.9")), .port(9090)]
            want.elements["services"]![[.ipv4(ip4("10.96.0.1")), .tcp, .port(1001)]] = nil
            want.sets.append(SetDecl(name: "extra", key: [.payload(.ipDaddr)]))
            want.elements["extra"] = [[.ipv4(ip4("10.1.1.1"))]: []]
            let report = try restarted.reconcile(want.withoutElements, elements: TableElements(want))
            let ops = report.transaction.operations
            #expect(!ops.contains { if case .deleteTable = $0 { return true }; if case .flushChain = $0 { return true }; return false })
            #expect(report.transaction.objectCount == 1 + 2 + 1 + 1, "set + slot delete/add + service delete + extra element: \(ops)")
            let rb = try #require(try restarted.socket.readTable(.ip, "sluice"))
            #expect(diff(Ruleset(tables: [rb.table]), Ruleset(tables: [want])).isEmpty)

            // Drift: someone flushes the slot map; reconcile puts back 12k elements in bounded batches.
            try ns.runChecked(["nft", "flush", "map", "ip", "sluice", "slots"])
            let repair = try restarted.reconcile(want.withoutElements, elements: TableElements(want))
            #expect(repair.batches.count >= 3, "12k elements in batches of ≤ 5k: \(repair.batches.count)")
            let after = try #require(try restarted.socket.readTable(.ip, "sluice"))
            #expect(diff(Ruleset(tables: [after.table]), Ruleset(tables: [want])).isEmpty)
        }
    }
}
