import Foundation
import SluiceEmit
import SluiceIR
import SluiceNetlink
import SluiceTestSupport
import Testing

@Suite("Netlink datapath", .serialized)
struct NetlinkKernelTests {
    /// Programs `tables` through netlink in one namespace and `script` through `nft -f` in
    /// another; `nft list table` must print the same text for every table.
    func assertSameListing(_ tables: [Table], script: String) throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "nl") { viaNetlink in
            try withNetworkNamespace(label: "nft") { viaNft in
                let applier = try NftablesApplier(namespace: viaNetlink.name)
                try applier.apply(Ruleset(tables: tables))
                try viaNft.runChecked(["nft", "-f", "-"], input: script)
                for t in tables {
                    let ours = try listTable(viaNetlink, t.family, t.name)
                    let theirs = try listTable(viaNft, t.family, t.name)
                    #expect(ours == theirs, "nft list differs for \(t.family) \(t.name)\n--- netlink:\n\(ours)\n--- nft -f:\n\(theirs)")
                    if ours != theirs {
                        try? ours.write(toFile: "/tmp/sluice-\(t.name)-netlink.txt", atomically: true, encoding: .utf8)
                        try? theirs.write(toFile: "/tmp/sluice-\(t.name)-nft.txt", atomically: true, encoding: .utf8)
                        try? script.write(toFile: "/tmp/sluice-\(t.name)-script.nft", atomically: true, encoding: .utf8)
                    }
                    let ourDebug = try listTable(viaNetlink, t.family, t.name, debug: true)
                    let theirDebug = try listTable(viaNft, t.family, t.name, debug: true)
                    if ourDebug != theirDebug {
                        try? ourDebug.write(toFile: "/tmp/sluice-\(t.name)-netlink.dbg", atomically: true, encoding: .utf8)
                        try? theirDebug.write(toFile: "/tmp/sluice-\(t.name)-nft.dbg", atomically: true, encoding: .utf8)
                    }
                    #expect(ourDebug == theirDebug, "netlink expressions differ for \(t.family) \(t.name)\n--- netlink:\n\(ourDebug)\n--- nft -f:\n\(theirDebug)")
                }
            }
        }
    }

    @Test("every IR case lowers exactly as nft -f does (ip)")
    func everyCaseIPv4() throws {
        try assertSameListing([everyCaseTable()], script: everyCaseScript)
    }

    @Test("netlink and NftScript.render agree on every IR case")
    func everyCaseAgainstEmitter() throws {
        let tables = [everyCaseTable(), ip6Table()]
        try assertSameListing(tables, script: NftScript.render(Ruleset(tables: tables)))
    }

    @Test("every IR case lowers exactly as nft -f does (ip6)")
    func everyCaseIPv6() throws {
        try assertSameListing([ip6Table()], script: ip6Script)
    }
}
