import Foundation
import SluiceCompiler
import SluiceDaemon
import SluiceIR
import SluiceModel
import SluiceTestSupport
import Testing

@Suite("Proxy engine (no kernel)")
struct ProxyEngineTests {
    func objects(_ yaml: String, file: String = "m.yaml") -> [ProxyObjectKey: SourcedObject?] {
        let loaded = ManifestLoader().parse(text: yaml, file: file)
        var out: [ProxyObjectKey: SourcedObject?] = [:]
        for s in loaded.objects.services { out[ProxyObject.service(s.object).key] = SourcedObject(.service(s.object), file: file) }
        for s in loaded.objects.endpointSlices { out[ProxyObject.endpointSlice(s.object).key] = SourcedObject(.endpointSlice(s.object), file: file) }
        return out
    }

    @Test("incremental updates equal the batch compile after every step; a slice change re-plans one service")
    func incrementalMatchesBatch() {
        var state = ProxyEngine(options: testOptions())
        var all: [String: String] = [:]
        var lastText: [String: String] = [:]
        func step(_ name: String, _ yaml: String?) -> ProxyEngine.Outcome {
            if let yaml { all[name] = yaml } else { all[name] = nil }
            var changes: [ProxyObjectKey: SourcedObject?] = [:]
            // Re-derive the change set for this one file (a delete removes its objects).
            let previous = yaml == nil ? objects(lastText[name] ?? "") : [:]
            for (k, _) in previous { changes[k] = .some(nil) }
            if let yaml { for (k, v) in objects(yaml) { changes[k] = v } }
            lastText[name] = yaml
            let out = state.apply(changes)
            let text = all.keys.sorted().map { all[$0]! }.joined(separator: "---\n")
            let batch = Pipeline.compile(objects: ManifestLoader().parse(text: text, file: "m.yaml").objects, options: testOptions())
            #expect(diff(state.desiredRuleset, batch.ruleset).isEmpty, "after \(name): incremental differs from batch")
            return out
        }
        let first = step("a-svc", serviceYAML("a", clusterIP: "10.96.0.10"))
        #expect(first.full)
        _ = step("a-eps", sliceYAML("a-1", service: "a", ips: ["10.244.1.1", "10.244.1.2"]))
        _ = step("b-svc", serviceYAML("b", clusterIP: "10.96.0.11", port: 53, targetPort: 53, proto: "UDP"))
        _ = step("b-eps", sliceYAML("b-1", service: "b", ips: ["10.244.2.1"], port: 53, proto: "UDP"))
        let scale = step("a-eps", sliceYAML("a-1", service: "a", ips: ["10.244.1.1", "10.244.1.2", "10.244.1.3"]))
        #expect(!scale.full)
        #expect(scale.replanned == [ServiceName(namespace: "default", name: "a")])
        // 2 → 3 endpoints moves the service to another slot-count map (a skeleton change);
        // replacing an endpoint at the same count touches elements only.
        let swap = step("a-eps", sliceYAML("a-1", service: "a", ips: ["10.244.1.1", "10.244.1.2", "10.244.1.4"]))
        #expect(swap.transaction.isElementsOnly)
        #expect(swap.transaction.objectCount <= 4, "\(swap.transaction)")
        #expect(scale.endpointSliceChanges == 1 && scale.serviceChanges == 0)
        let del = step("b-svc", nil)
        #expect(del.replanned == [ServiceName(namespace: "default", name: "b")])
        _ = step("b-eps", nil)
        // A conflicting service is left out; removing the first one lets it in.
        let conflict = step("c-svc", serviceYAML("c", clusterIP: "10.96.0.10", port: 81))
        #expect(conflict.diagnostics.contains { $0.isError && $0.description.contains("Service default/c") })
        _ = step("a-svc", nil)
        #expect(state.accepted[ServiceName(namespace: "default", name: "c")] != nil)
    }

    @Test("an invalid object is reported by name and left out; the rest is planned")
    func invalidObjectLeftOut() {
        var state = ProxyEngine(options: testOptions())
        var changes = objects(serviceYAML("good", clusterIP: "10.96.0.20"))
        for (k, v) in objects(serviceYAML("bad", clusterIP: "10.96.0.300")) { changes[k] = v }
        let out = state.apply(changes)
        #expect(out.diagnostics.contains { $0.isError && $0.description.contains("Service default/bad") })
        #expect(state.accepted.keys.map(\.name) == ["good"])
    }

    @Test("healthCheckNodePort targets follow local ready endpoints")
    func healthCheckTargets() {
        var state = ProxyEngine(options: testOptions())
        let svc = serviceYAML("lb", clusterIP: "10.96.0.30", extraSpec: ["type: LoadBalancer", "externalTrafficPolicy: Local",
                                                                         "healthCheckNodePort: 32100"],
                              status: ["loadBalancer: {ingress: [{ip: 192.0.2.10}]}"])
        _ = state.apply(objects(svc))
        let name = ServiceName(namespace: "default", name: "lb")
        #expect(state.healthChecks[name] == HealthCheckTarget(port: 32100, localEndpoints: 0))
        _ = state.apply(objects(sliceYAML("lb-1", service: "lb", ips: ["10.244.1.5", "10.244.1.6"], nodeName: nodeName)))
        #expect(state.healthChecks[name] == HealthCheckTarget(port: 32100, localEndpoints: 2))
        #expect(state.noLocalEndpoints["external"] == 0)
        _ = state.apply(objects(sliceYAML("lb-1", service: "lb", ips: ["10.244.1.5"], nodeName: "node-b")))
        #expect(state.healthChecks[name] == HealthCheckTarget(port: 32100, localEndpoints: 0))
        #expect(state.noLocalEndpoints["external"] == 1)
    }
}

@Suite("Manifest directory watcher")
struct ManifestWatcherTests {
    @Test("create, edit, break, delete files → deltas")
    func deltas() throws {
        let dir = try ManifestDir()
        defer { dir.close() }
        var w = ManifestDirectorySource.Watcher(paths: [dir.path])
        #expect(w.poll().delta.isEmpty)
        try dir.write("a.yaml", serviceYAML("a", clusterIP: "10.96.0.10"))
        var d = w.poll().delta
        #expect(d.upserts.keys.map(\.description) == ["Service default/a"])
        #expect(w.poll().changed == false)
        try dir.write("a.yaml", serviceYAML("a", clusterIP: "10.96.0.10", port: 81))
        d = w.poll().delta
        #expect(d.upserts.count == 1 && d.deletes.isEmpty)
        try dir.write("b.yaml", "kind: Service\nmetadata: {name: b\n  broken")
        d = w.poll().delta
        #expect(d.isEmpty && d.diagnostics.contains { $0.description.contains("b.yaml") })
        try dir.write("a2.yaml", serviceYAML("a", clusterIP: "10.96.0.99"))
        d = w.poll().delta
        #expect(d.isEmpty && d.diagnostics.contains { $0.description.contains("duplicate") })
        try dir.remove("a.yaml")
        d = w.poll().delta
        // The duplicate in a2.yaml takes over.
        #expect(d.upserts.count == 1 && d.upserts.values.first?.file?.hasSuffix("a2.yaml") == true)
        try dir.remove("a2.yaml")
        d = w.poll().delta
        #expect(d.deletes.map(\.description) == ["Service default/a"])
    }

    @Test("kube-proxy flag handling of `sluice run`: JSON health bodies")
    func healthBodies() {
        let h = ProxyHealth(healthTimeout: .seconds(60))
        let t0 = Date(timeIntervalSince1970: 1_700_000_000)
        h.updated([.ipv4], at: t0)
        var (status, body) = h.response(healthz: true, at: t0.addingTimeInterval(1))
        #expect(status == 200)
        #expect(body.contains("\"nodeEligible\":true") && body.contains("\"healthy\":true") && body.contains("\"IPv4\":{"))
        h.queued([.ipv4], at: t0.addingTimeInterval(2))
        (status, _) = h.response(healthz: true, at: t0.addingTimeInterval(30))
        #expect(status == 200)
        (status, body) = h.response(healthz: false, at: t0.addingTimeInterval(63))
        #expect(status == 503 && body.contains("\"healthy\":false") && !body.contains("nodeEligible"))
        h.updated([.ipv4], at: t0.addingTimeInterval(64))
        h.setNodeEligible(false)
        (status, _) = h.response(healthz: true, at: t0.addingTimeInterval(65))
        #expect(status == 503)
        (status, _) = h.response(healthz: false, at: t0.addingTimeInterval(65))
        #expect(status == 200)
    }
}


/// Random versions of a small universe of objects: services that may share ClusterIPs and
/// NodePorts (conflicts), slices of 0–4 endpoints on this node or another, this node's Node
/// (zone, pod CIDR) and a ServiceCIDR that may leave services outside it.
struct ObjectUniverse {
    var rng: SeededGenerator

    mutating func pick<T>(_ xs: [T]) -> T { xs[Int.random(in: 0..<xs.count, using: &rng)] }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }

    mutating func service(_ i: Int) -> String {
        var extra: [String] = []
        let nodePort = chance(0.4)
        if nodePort { extra += ["type: NodePort"] }
        if chance(0.3) { extra += ["internalTrafficPolicy: Local"] }
        if nodePort && chance(0.3) { extra += ["externalTrafficPolicy: Local"] }
        if chance(0.2) { extra += ["sessionAffinity: ClientIP"] }
        var yaml = serviceYAML("s\(i)", clusterIP: pick(["10.96.0.1", "10.96.0.2", "10.96.0.3", "10.96.1.4", "10.96.0.5"]),
                               port: pick([80, 443]), proto: pick(["TCP", "UDP"]), extraSpec: extra)
        if nodePort {
            yaml = yaml.replacingOccurrences(of: "protocol:", with: "nodePort: \(pick([30001, 30002, 30003])), protocol:")
        }
        if chance(0.3) {
            let mode = pick(["source-hash", "consistent-hash", "random", "bogus"])
            yaml = yaml.replacingOccurrences(of: "namespace: default}", with: "namespace: default, annotations: {sluice.dev/load-balancing: \(mode)}}")
        }
        return yaml
    }

    mutating func slice(_ i: Int, _ part: String) -> String {
        let n = Int.random(in: 0...4, using: &rng)
        let ips = (0..<n).map { _ in "10.244.\(i).\(Int.random(in: 1...6, using: &rng))" }
        return sliceYAML("s\(i)-\(part)", service: "s\(i)", ips: Array(Set(ips)).sorted(),
                         nodeName: pick([nodeName, "node-b"]), ready: chance(0.8))
    }

    mutating func node() -> String {
        """
        apiVersion: v1
        kind: Node
        metadata:
          name: \(nodeName)
          labels: {topology.kubernetes.io/zone: \(pick(["zone-a", "zone-b"]))}
        spec: {podCIDR: \(pick(["10.244.0.0/24", "10.244.1.0/24"]))}
        status:
          addresses: [{type: InternalIP, address: 10.77.0.1}]

        """
    }

    mutating func serviceCIDR() -> String {
        "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: kubernetes}\nspec: {cidrs: [\(pick(["10.96.0.0/16", "10.96.0.0/24"]))]}\n"
    }

    /// A new version of object `slot` (0–5 services, 6–17 slices, 18 the Node, 19 the ServiceCIDR).
    mutating func version(of slot: Int) -> String {
        switch slot {
        case 0..<6: return service(slot)
        case 6..<18: return slice((slot - 6) / 2, (slot - 6) % 2 == 0 ? "a" : "b")
        case 18: return node()
        default: return serviceCIDR()
        }
    }
}

@Suite("Proxy engine: incremental equals batch (property)")
struct ProxyEnginePropertyTests {
    func objects(_ yaml: String) -> ObjectChanges { ManifestLoader().parse(text: yaml, file: "m.yaml").objects.upsertChanges }

    @Test("random histories of Services, EndpointSlices, the Node and ServiceCIDRs: every transaction reaches the full compile",
          arguments: [1, 2, 3, 4])
    func randomHistories(seed: UInt64) throws {
        try randomHistory(seed: seed, stageChance: 0)
    }

    @Test("random histories where some batches are only staged (planned once the Node is known, compiled by the next apply): the next apply's transaction or reload reaches the full compile",
          arguments: [5, 6, 7])
    func randomStagedHistories(seed: UInt64) throws {
        try randomHistory(seed: seed, stageChance: 0.4)
    }

    @Test("random histories with --nodeport-addresses CIDRs and host addresses changing between batches: every transaction reaches the full compile",
          arguments: [8, 9, 10])
    func randomHostAddressHistories(seed: UInt64) throws {
        try randomHistory(seed: seed, stageChance: 0.2, hostAddressChance: 0.4)
    }

    func randomHistory(seed: UInt64, stageChance: Double, hostAddressChance: Double = 0) throws {
        var universe = ObjectUniverse(rng: SeededGenerator(state: seed))
        var options = testOptions()
        if hostAddressChance > 0 { options.nodePortAddresses = [.cidr(CIDR("10.77.0.0/16")!), .cidr(CIDR("fd00::/8")!)] }
        var engine = ProxyEngine(options: options)
        var hosts: [IPAddress]?
        var narrow = 0
        var current: [Int: String] = [:]
        var kernel = Ruleset()
        for step in 0..<60 {
            // One to three objects change per batch; a third of the changes delete.
            var changes: ObjectChanges = [:]
            for _ in 0..<Int.random(in: 1...3, using: &universe.rng) {
                let slot = Int.random(in: 0..<20, using: &universe.rng)
                if let old = current[slot], universe.chance(0.3) {
                    for k in objects(old).keys { changes[k] = .some(nil) }
                    current[slot] = nil
                } else {
                    let yaml = universe.version(of: slot)
                    if let old = current[slot] { for k in objects(old).keys { changes[k] = .some(nil) } }
                    for (k, v) in objects(yaml) { changes[k] = v }
                    current[slot] = yaml
                }
            }
            if hostAddressChance > 0, universe.chance(hostAddressChance) {
                let pool = ["10.77.0.1", "10.77.5.5", "10.77.6.6", "192.0.2.1", "fd00::7", "127.0.0.1"].map { IPAddress($0)! }
                hosts = pool.filter { _ in universe.chance(0.5) }
                engine.setHostAddresses(hosts)
            }
            if stageChance > 0, step < 59, universe.chance(stageChance) {
                _ = engine.stage(changes)
                continue
            }
            let out = engine.apply(changes)
            if out.nodePortAddressesChanged && !out.full { narrow += 1 }
            if out.full {
                kernel = try kernel.applying(diff(kernel, engine.desiredRuleset))
            } else {
                kernel = try kernel.applying(out.transaction)
            }
            let text = current.keys.sorted().map { current[$0]! }.joined(separator: "---\n")
            let batch = Pipeline.compile(objects: ManifestLoader().parse(text: text, file: "m.yaml").objects, options: options,
                                         hostAddresses: hosts)
            let delta = diff(kernel, batch.ruleset)
            #expect(delta.isEmpty, "seed \(seed) step \(step): the kernel after the transaction differs from a full compile: \(delta)")
            if !delta.isEmpty { return }
        }
        if hostAddressChance > 0 { #expect(narrow > 0, "no batch took the nodeport-ips-only path") }
    }

    @Test("staging plans once this Node is known, defers before; the next apply loads the compilers whole and equals the batch compile")
    func stagingPlansOnceTheNodeIsKnown() {
        func part(_ range: Range<Int>) -> String {
            range.map { i in
                serviceYAML("s\(i)", clusterIP: "10.96.2.\(i + 1)") + "---\n"
                    + sliceYAML("s\(i)-1", service: "s\(i)", ips: ["10.244.\(i).1", "10.244.\(i).2"])
            }.joined(separator: "---\n")
        }
        let node = "apiVersion: v1\nkind: Node\nmetadata: {name: \(nodeName)}\nstatus: {addresses: [{type: InternalIP, address: 10.77.0.1}]}\n"
        var engine = ProxyEngine(options: testOptions())
        // No Node yet: validated and stored, not planned.
        let first = engine.stage(objects(part(0..<3)))
        #expect(!first.full && engine.planner.planned.isEmpty && engine.accepted.count == 3)
        // The Node arrives with the next part: everything staged so far is planned.
        var withNode = objects(part(3..<5))
        for (k, v) in objects(node) { withNode[k] = v }
        let second = engine.stage(withNode)
        #expect(second.full && engine.planner.planned.count == 5 && engine.needsLoad)
        // Later parts are planned as they come, one service each.
        let third = engine.stage(objects(part(5..<7)))
        #expect(!third.full && engine.planner.planned.count == 7 && third.replanned.count == 2)
        // The first apply compiles everything at once.
        let out = engine.apply(objects(part(7..<8)))
        #expect(out.full && !engine.needsLoad && out.transaction.isEmpty)
        let batch = Pipeline.compile(objects: ManifestLoader().parse(text: part(0..<8) + "---\n" + node, file: "m.yaml").objects,
                                     options: testOptions())
        #expect(diff(engine.desiredRuleset, batch.ruleset).isEmpty)
    }

    @Test("staging leaves a Service without EndpointSlices unplanned until its slices come (planned once) or the first apply")
    func stagingWaitsForEndpointsBeforePlanning() {
        let node = "apiVersion: v1\nkind: Node\nmetadata: {name: \(nodeName)}\nstatus: {addresses: [{type: InternalIP, address: 10.77.0.1}]}\n"
        let services = (0..<4).map { serviceYAML("s\($0)", clusterIP: "10.96.3.\($0 + 1)") }
        let slices = (0..<3).map { sliceYAML("s\($0)-1", service: "s\($0)", ips: ["10.244.\($0).1"]) }
        var engine = ProxyEngine(options: testOptions())
        _ = engine.stage(objects(node))
        // The Services part: validated and accepted, none planned yet.
        let first = engine.stage(objects(services.joined(separator: "---\n")))
        #expect(engine.accepted.count == 4 && engine.planner.planned.isEmpty && first.replanned.isEmpty)
        // The slices part: each of s0…s2 is planned once, now.
        let second = engine.stage(objects(slices.joined(separator: "---\n")))
        #expect(second.replanned == Set((0..<3).map { ServiceName(namespace: "default", name: "s\($0)") }))
        // s3 never gets a slice: the first apply plans it (no endpoints: reject).
        let out = engine.apply([:])
        #expect(out.replanned.contains(ServiceName(namespace: "default", name: "s3")) || out.full)
        #expect(engine.planner.planned.count == 4)
        let batch = Pipeline.compile(objects: ManifestLoader().parse(text: (services + slices + [node]).joined(separator: "---\n"),
                                                                     file: "m.yaml").objects, options: testOptions())
        #expect(diff(engine.desiredRuleset, batch.ruleset).isEmpty)
    }

    @Test("a single-service update mutates the compiler's store in place: no table-sized copy")
    func updateCopiesNothing() {
        var engine = ProxyEngine(options: testOptions())
        var changes: ObjectChanges = [:]
        for i in 0..<50 {
            let yaml = serviceYAML("s\(i)", clusterIP: "10.96.2.\(i + 1)") + "---\n"
                + sliceYAML("s\(i)-1", service: "s\(i)", ips: ["10.244.\(i).1", "10.244.\(i).2"])
            for (k, v) in objects(yaml) { changes[k] = v }
        }
        _ = engine.apply(changes)
        let before = engine.compilers[.ipv4]!.storageIdentity
        let out = engine.apply(objects(sliceYAML("s7-1", service: "s7", ips: ["10.244.7.1", "10.244.7.3"])))
        #expect(!out.full && out.transaction.isElementsOnly && !out.transaction.isEmpty)
        #expect(engine.compilers[.ipv4]!.storageIdentity == before, "the update copied a store buffer")
    }

    @Test("--allow-external-ips=false in the daemon's engine: no externalIP element, a notice, and an externalIPs edit commits nothing")
    func externalIPsOff() {
        var options = testOptions()
        options.allowExternalIPs = false
        var engine = ProxyEngine(options: options)
        func service(_ externalIPs: String) -> String {
            serviceYAML("gw", clusterIP: "10.96.3.1", extraSpec: ["externalIPs: [\(externalIPs)]"])
        }
        let first = engine.apply(objects(service("198.51.100.20") + "---\n" + sliceYAML("gw-1", service: "gw", ips: ["10.244.3.1"])))
        #expect(first.diagnostics.map(\.description) == [
            "m.yaml: Service default/gw: spec.externalIPs: 198.51.100.20 ignored: --allow-external-ips=false",
        ])
        let table = engine.desiredRuleset.table(.ip, Layout.tableName)
        let data = Set(table?.elements.values.flatMap { $0.flatMap { $0.key + $0.value } } ?? [])
        #expect(!data.contains(IPAddress("198.51.100.20")!.datum))
        #expect(data.contains(IPAddress("10.96.3.1")!.datum))
        let edit = engine.apply(objects(service("198.51.100.21")))
        #expect(!edit.full && edit.transaction.isEmpty && edit.replanned.isEmpty)
        #expect(edit.diagnostics.map(\.description) == [
            "m.yaml: Service default/gw: spec.externalIPs: 198.51.100.21 ignored: --allow-external-ips=false",
        ])
    }
}
