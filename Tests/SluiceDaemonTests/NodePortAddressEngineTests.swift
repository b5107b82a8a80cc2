import Foundation
import SluiceCompiler
import SluiceDaemon
import SluiceIR
import SluiceModel
import SluiceNetlink
import Testing

/// The host's addresses change while services exist: only `nodeport-ips` elements move.
@Suite("NodePort addresses from the host (no kernel)")
struct NodePortAddressEngineTests {
    static let options = NodeOptions(nodeName: nodeName, nodePortAddresses: [.cidr(CIDR("10.88.0.0/16")!)],
                                     nodeIPs: [IPAddress("10.77.0.1")!])

    static let manifests = serviceYAML("web", clusterIP: "10.96.0.10", nodePort: 30080) + "---\n" + sliceYAML("web-1", service: "web", ips: ["10.244.1.1", "10.244.1.2"])
        + "---\n" + serviceYAML("db", clusterIP: "10.96.0.11", port: 5432, targetPort: 5432)

    func objects() -> ObjectChanges { ManifestLoader().parse(text: Self.manifests, file: "m.yaml").objects.upsertChanges }

    func ips(_ texts: [String]) -> [IPAddress] { texts.map { IPAddress($0)! } }

    /// The batch compile of the same objects with `hosts` as the host's addresses.
    func batch(_ hosts: [String]) -> Ruleset {
        Pipeline.compile(objects: ManifestLoader().parse(text: Self.manifests, file: "m.yaml").objects,
                         options: Self.options, hostAddresses: ips(hosts)).ruleset
    }

    /// The set names a transaction touches, and its element count.
    func touched(_ tx: Transaction) -> (sets: Set<String>, elements: Int, onlyElements: Bool) {
        var sets = Set<String>(), n = 0, onlyElements = true
        for op in tx.operations {
            switch op {
            case .addElements(_, _, let s, let e), .deleteElements(_, _, let s, let e):
                sets.insert(s.name)
                n += e.count
            default:
                onlyElements = false
            }
        }
        return (sets, n, onlyElements)
    }

    @Test("an address added, then one removed: one nodeport-ips element each, nothing re-planned")
    func addressChangeTouchesOnlyNodePortIPs() throws {
        var engine = ProxyEngine(options: Self.options, hostAddresses: ips(["10.77.0.1", "10.88.0.1", "127.0.0.1"]))
        #expect(engine.apply(objects()).full)
        #expect(diff(engine.desiredRuleset, batch(["10.77.0.1", "10.88.0.1"])).isEmpty)
        let storage = engine.compilers[.ipv4]!.storageIdentity

        engine.setHostAddresses(ips(["10.77.0.1", "10.88.0.1", "10.88.5.5"]))
        let added = engine.apply([:])
        #expect(!added.full && added.nodePortAddressesChanged && added.replanned.isEmpty)
        let a = touched(added.transaction)
        #expect(a.sets == [Layout.nodePortIPs] && a.elements == 1 && a.onlyElements, "\(added.transaction)")
        #expect(added.transaction.operations.count == 1)
        if case .addElements(_, _, _, let e)? = added.transaction.operations.first { #expect(e.map(\.text) == ["10.88.5.5"]) }
        #expect(diff(engine.desiredRuleset, batch(["10.77.0.1", "10.88.0.1", "10.88.5.5"])).isEmpty)
        #expect(engine.compilers[.ipv4]!.storageIdentity == storage, "the service stores were copied")

        engine.setHostAddresses(ips(["10.77.0.1", "10.88.5.5"]))
        let removed = engine.apply([:])
        let r = touched(removed.transaction)
        #expect(!removed.full && r.sets == [Layout.nodePortIPs] && r.elements == 1 && r.onlyElements, "\(removed.transaction)")
        if case .deleteElements(_, _, _, let e)? = removed.transaction.operations.first { #expect(e.map(\.text) == ["10.88.0.1"]) }
        #expect(diff(engine.desiredRuleset, batch(["10.77.0.1", "10.88.5.5"])).isEmpty)
        #expect(engine.elementCount(.ipv4) == engine.desiredRuleset.tables[0].elementCount)

        // An address outside the CIDRs changes nothing; the same set again neither.
        engine.setHostAddresses(ips(["10.77.0.1", "10.88.5.5", "192.0.2.1"]))
        #expect(engine.apply([:]).transaction.operations.isEmpty)
    }

    @Test("an address change together with a service change: one transaction, both parts")
    func addressChangeWithServiceChange() throws {
        var engine = ProxyEngine(options: Self.options, hostAddresses: ips(["10.88.0.1"]))
        _ = engine.apply(objects())
        engine.setHostAddresses(ips(["10.88.0.2"]))
        let key = ProxyObjectKey(kind: .service, namespace: "default", name: "db")
        let deletion: ObjectChanges = [key: nil]
        let out = engine.apply(deletion)
        #expect(!out.full && out.nodePortAddressesChanged)
        #expect(out.replanned == [ServiceName(namespace: "default", name: "db")])
        #expect(touched(out.transaction).sets.contains(Layout.nodePortIPs))
        let text = Self.manifests.components(separatedBy: "---\n").dropLast().joined(separator: "---\n")
        let want = Pipeline.compile(objects: ManifestLoader().parse(text: text, file: "m.yaml").objects,
                                    options: Self.options, hostAddresses: ips(["10.88.0.2"])).ruleset
        #expect(diff(engine.desiredRuleset, want).isEmpty)
    }

    @Test("addresses set while staging the first state are used by the first load")
    func addressesBeforeFirstSync() {
        var engine = ProxyEngine(options: Self.options)
        _ = engine.stage(objects())
        engine.setHostAddresses(ips(["10.88.7.7"]))
        #expect(engine.apply([:]).full)
        #expect(diff(engine.desiredRuleset, batch(["10.88.7.7"])).isEmpty)
    }

    @Test("the sync loop commits an address change as nodeport-ips elements only (fake dataplane)")
    func syncLoopCommitsElementsOnly() async throws {
        let dir = try ManifestDir()
        defer { dir.close() }
        try dir.write("m.yaml", Self.manifests)
        let fake = FakeDataplane()
        var c = DaemonConfiguration(options: Self.options, sources: [ManifestDirectorySource(paths: [dir.path], interval: .milliseconds(50))],
                                    healthzBindAddress: nil, metricsBindAddress: nil, hostAddresses: nil)
        c.followHostAddresses = false
        c.dataplane = { fake }
        c.watchCommits = false
        try await withDaemon(c) { daemon in
            _ = try await waitUntil("first sync") { await daemon.commits() >= 1 }
            let before = await daemon.commits()
            daemon.receiveHostAddresses(ips(["10.88.3.3"]))
            _ = try await waitUntil("address change committed") { await daemon.commits() > before }
            let last = try #require(fake.transactions.last)
            let t = touched(last)
            #expect(t.sets == [Layout.nodePortIPs] && t.elements == 1 && t.onlyElements, "\(last)")
            #expect(fake.committed.table(.ip, Layout.tableName)?.elements[Layout.nodePortIPs]?.count == 1)
        }
    }
}
