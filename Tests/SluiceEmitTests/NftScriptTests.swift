import Testing
import SluiceCompiler
import SluiceEmit
import SluiceIR
import SluiceModel
import SluiceTestSupport

/// Transactions rendered as nft commands apply with `nft -f` and reach the same kernel state
/// as the whole-ruleset script.
struct NftScriptTests {
    func plan(endpoints: [Int]) -> FamilyPlan {
        let ctx = FamilyContext(family: .ipv4, nodeName: "n", localDetector: .cidrs([CIDR("10.0.0.0/8")!]),
                                nodePortAddresses: .ips([IPAddress("192.168.0.2")!]), nodeIPs: [IPAddress("192.168.0.2")!])
        return FamilyPlan(context: ctx, servicePorts: endpoints.enumerated().map { i, n in
            ServicePortPlan(name: ServicePortName(service: ServiceName(namespace: "ns", name: "s\(i)"), port: "p", proto: .tcp),
                            family: .ipv4, clusterIP: .v4(0xAC1E_0000 + UInt32(i)), port: 80, nodePort: UInt16(30000 + i),
                            affinityTimeoutSeconds: i == 0 ? 60 : nil,
                            clusterEndpoints: (0..<n).map { WeightedEndpoint(ip: .v4(0x0AB4_0000 + UInt32(i * 16 + $0)), port: 8080) })
        })
    }

    @Test func transactionsApplyAndMatchTheWholeScript() throws {
        try requireKernelTestEnvironment(tools: ["ip", "nft"])
        let before = Ruleset(tables: [Compiler.compile(plan(endpoints: [1, 2, 4])).table])
        // Same classes, other endpoints: an element-only transaction.
        let after = Ruleset(tables: [Compiler.compile(plan(endpoints: [2, 1, 4, 2])).table])
        let createTx = diff(Ruleset(), before)
        let updateTx = diff(before, after)
        #expect(updateTx.isElementsOnly)
        try withNetworkNamespace(label: "txa") { a in
            try withNetworkNamespace(label: "txb") { b in
                try a.runChecked(["nft", "-f", "-"], input: NftScript.render(createTx))
                try a.runChecked(["nft", "-f", "-"], input: NftScript.render(updateTx))
                try b.runChecked(["nft", "-f", "-"], input: NftScript.render(after))
                let listA = try a.runChecked(["nft", "list", "table", "ip", "sluice"]).stdout
                let listB = try b.runChecked(["nft", "list", "table", "ip", "sluice"]).stdout
                #expect(listA == listB)
                #expect(listA.contains("numgen random mod 4"))
            }
        }
    }

    /// A structural transaction (a new slot class) applies from scratch in one script.
    /// (nft 1.0.6 cannot add a rule that uses a `typeof … th dport … numgen` map that already
    /// exists in the kernel — "conflicting protocols specified: ip vs. th" — so applying such
    /// a transaction on top of a loaded table is the netlink layer's job; see docs.)
    @Test func structuralTransactionRendersChainRewrites() throws {
        let before = Ruleset(tables: [Compiler.compile(plan(endpoints: [1, 2])).table])
        let after = Ruleset(tables: [Compiler.compile(plan(endpoints: [2, 4, 3])).table])
        let text = NftScript.render(diff(before, after))
        #expect(text.contains("add map ip sluice endpoints-4"))
        #expect(text.contains("flush chain ip sluice services"))
        #expect(text.contains("numgen random mod 3 map @endpoints-3"))
        #expect(!text.contains("delete table"))
    }
}
