import Foundation
import SluiceIR
@testable import SluiceNetlink
import SluiceTestSupport
import Testing

/// An nf_tables message as the kernel frames it: nlmsghdr (type `10 << 8 | type`), nfgenmsg
/// (`family`), then the attributes (4-byte aligned).
func nftMessage(_ type: UInt16, family: UInt8 = 2, _ attributes: [(UInt16, [UInt8])]) -> [UInt8] {
    var body: [UInt8] = [family, 0, 0, 0]
    for (t, payload) in attributes {
        body += le16(UInt16(4 + payload.count)) + le16(t) + payload
        body += [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
    }
    let length = UInt32(16 + body.count)
    return withUnsafeBytes(of: length.littleEndian, Array.init) + le16(10 << 8 | type) + [0, 0] + [UInt8](repeating: 0, count: 8) + body
}

private func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
private func z(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

/// Where the fuzz seeds live (`Fuzz/corpus/netlink-reply`).
private let corpus: URL = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("Fuzz/corpus/netlink-reply")
}()

@Suite("read-back reply parser: one message at a time, no kernel")
struct ReplyParserTests {
    /// Each is a reproducer of a crash (or an `exit(1)` inside libnftnl) of the message
    /// parser; each must now be a thrown `NetlinkError`. They are also fuzz seeds.
    @Test("malformed replies throw", arguments: [
        // NFTA_TABLE_FLAGS of 2 bytes: libnftnl's "kernel ABI is broken", exit(1).
        ("table-short-flags", nftMessage(0, [(1, z("t")), (2, [0, 0])])),
        // A NEWTABLE without NFTA_TABLE_NAME: String(cString:) of NULL.
        ("table-no-name", nftMessage(0, [(2, [0, 0, 0, 0])])),
        // A chain name that is not NUL-terminated: strdup reads past the message.
        ("chain-unterminated-name", nftMessage(3, [(1, z("t")), (3, Array("abc".utf8))])),
        // A NEWCHAIN without a table.
        ("chain-no-table", nftMessage(3, [(3, z("c"))])),
        // A rule without table or chain.
        ("rule-no-chain", nftMessage(6, [(1, z("t"))])),
        // A set's concatenation of 17 fields overflows libnftnl's field_len[16].
        ("set-concat-17", nftMessage(9, [(1, z("t")), (2, z("s")),
                                        (9, [UInt8](nested(2, Array(repeating: nested(1, nested(1, [0, 0, 0, 4])), count: 17).flatMap { $0 })))])),
        // An expression list holding a `payload` whose NFTA_PAYLOAD_LEN is 1 byte.
        ("rule-short-payload-len", nftMessage(6, [(1, z("t")), (2, z("c")),
                                                 (4, nested(1, nested(1, z("payload")) + nested(2, nested(4, [1]))))])),
        // An expression without NFTA_EXPR_NAME: libnftnl's strcmp of NULL + 4 (found by the fuzzer).
        ("rule-expression-without-name", nftMessage(6, [(1, z("t")), (2, z("c")), (4, nested(1, nested(2, nested(1, [0, 0, 0, 1]))))])),
        // An immediate jump whose verdict has no chain: libnftnl strdups from an uninitialized
        // attribute table (found by the fuzzer).
        ("rule-jump-without-chain", nftMessage(6, [(1, z("t")), (2, z("c")), (4, nested(1, nested(1, z("immediate"))
            + nested(2, nested(1, [0, 0, 0, 0]) + nested(2, nested(2, nested(1, [0xff, 0xff, 0xff, 0xfd]))))))])),
        // A set whose userdata runs into the padding after an unaligned nlmsg_len, with a
        // 2-byte NFTA_SET_FLAGS there: libmnl walks to the aligned end (found by the fuzzer).
        ("set-attribute-in-padding", { var m = nftMessage(9, [(2, z("s")), (3, [0, 0, 0])]); m[0] -= 3; return Array(m.dropLast(3)) }()),
        // A set element with an attribute of type 15: libnftnl's element callback checks types
        // against NFTA_SET_MAX but stores them in a table of NFTA_SET_ELEM_MAX + 1, overwriting
        // its stack (found by the fuzzer: the set pointer came back as 0x83).
        ("element-type-15", nftMessage(12, [(1, z("t")), (2, z("s")), (3, nested(1, nested(15, [0, 0, 0, 0])))])),
        // Shorter than nlmsghdr + nfgenmsg.
        ("truncated", Array(nftMessage(0, [])[0..<16])),
    ])
    func malformed(_ name: String, _ message: [UInt8]) throws {
        #expect(throws: NetlinkError.self) { try ReadBackReply.parse(message, family: .ip, sets: []) }
        if ProcessInfo.processInfo.environment["SLUICE_RECORD_FUZZ_CORPUS"] == "1" {
            try Data(message).write(to: corpus.appendingPathComponent("regression-\(name).bin"))
        }
    }

    @Test("a well-formed table message parses")
    func table() throws {
        let m = nftMessage(0, [(1, z("sluice")), (2, [0, 0, 0, 0])])
        #expect(try ReadBackReply.parse(m, family: .ip, sets: []) == .table(name: "sluice", comment: nil))
    }

    @Test("the committed netlink-reply seeds parse or throw")
    func seeds() throws {
        for file in try FileManager.default.contentsOfDirectory(atPath: corpus.path).sorted() {
            _ = try? ReadBackReply.parse(Array(try Data(contentsOf: corpus.appendingPathComponent(file))), family: .ip, sets: [])
        }
    }
}

/// One netlink attribute: length, type (`NLA_F_NESTED` is not needed by libnftnl), payload, padding.
private func nested(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
    le16(UInt16(4 + payload.count)) + le16(type) + payload + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
}

extension NetlinkKernelTests {
    @Test("kernel replies, one message at a time, rebuild what read-back reads (SLUICE_RECORD_FUZZ_CORPUS=1 records the seeds)")
    func replyMessages() throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "reply") { ns in
            let original = Ruleset(tables: [everyCaseTable(), ip6Table()])
            let applier = try NftablesApplier(namespace: ns.name)
            try applier.apply(original)
            for t in original.tables {
                let messages = try applier.socket.replyMessages(t.family, t.name)
                let expected = try #require(try applier.socket.readTable(t.family, t.name))
                let rebuilt = try rebuild(messages, family: t.family)
                #expect(rebuilt == expected.table, "\(diff(Ruleset(tables: [rebuilt]), Ruleset(tables: [expected.table])).operations)")
                if ProcessInfo.processInfo.environment["SLUICE_RECORD_FUZZ_CORPUS"] == "1" { try record(messages, t.family) }
            }
        }
    }

    /// The table the replies describe, message by message.
    private func rebuild(_ messages: [[UInt8]], family: Family) throws -> Table {
        var table = Table(family: family, name: "")
        for m in messages {
            switch try ReadBackReply.parse(m, family: family, sets: table.sets) {
            case .table(let name, let comment): (table.name, table.comment) = (name, comment)
            case .chain(_, let chain): table.chains.append(chain)
            case .set(let decl): table.sets.append(decl)
            case .rule(_, let chain, let rule): table.chains[table.chains.firstIndex { $0.name == chain }!].rules.append(rule)
            case .elements(let set, let map) where !map.isEmpty: table.elements[set, default: [:]].merge(map) { a, _ in a }
            case .foreign(let what): Issue.record("foreign: \(what)")
            case .elements, .skipped: break   // an empty set's element reply
            }
        }
        return table
    }

    /// Seeds: the table and chains; the sets with each set's elements; the sets with the rules.
    private func record(_ messages: [[UInt8]], _ family: Family) throws {
        func type(_ m: [UInt8]) -> UInt8 { m[4] }
        let sets = messages.filter { type($0) == 9 }
        let seeds: [(String, [[UInt8]])] = [
            ("table-chains", messages.filter { type($0) == 0 || type($0) == 3 }),
            ("sets-elements", sets + messages.filter { type($0) == 12 }),
            ("sets-rules", sets + messages.filter { type($0) == 6 }),
        ]
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
        for (name, parts) in seeds {
            try Data(parts.flatMap { $0 }).write(to: corpus.appendingPathComponent("\(family.rawValue)-\(name).bin"))
        }
    }
}
