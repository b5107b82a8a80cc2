import Foundation
import SluiceCompiler
import SluiceDaemon
import SluiceIR
import SluiceModel
import Testing

@Suite("Daemon state (no kernel)")
struct ProxyStateTests {
    func objects(_ yaml: String, file: String = "m.yaml") -> [ProxyObjectKey: SourcedObject?] {
        let loaded = ManifestLoader().parse(text: yaml, file: file)
        var out: [ProxyObjectKey: SourcedObject?] = [:]
        for s in loaded.objects.services { out[ProxyObject.service(s.object).key] = SourcedObject(.service(s.object), file: file) }
        for s in loaded.objects.endpointSlices { out[ProxyObject.endpointSlice(s.object).key] = SourcedObject(.endpointSlice(s.object), file: file) }
        return out
    }

    @Test("incremental updates equal the batch compile after every step; a slice change re-plans one service")
    func incrementalMatchesBatch() {
        var state = ProxyState(options: testOptions())
        var all: [String: String] = [:]
        var lastText: [String: String] = [:]
        func step(_ name: String, _ yaml: String?) -> ProxyState.Outcome {
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
        var state = ProxyState(options: testOptions())
        var changes = objects(serviceYAML("good", clusterIP: "10.96.0.20"))
        for (k, v) in objects(serviceYAML("bad", clusterIP: "10.96.0.300")) { changes[k] = v }
        let out = state.apply(changes)
        #expect(out.diagnostics.contains { $0.isError && $0.description.contains("Service default/bad") })
        #expect(state.accepted.keys.map(\.name) == ["good"])
    }

    @Test("healthCheckNodePort targets follow local ready endpoints")
    func healthCheckTargets() {
        var state = ProxyState(options: testOptions())
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
