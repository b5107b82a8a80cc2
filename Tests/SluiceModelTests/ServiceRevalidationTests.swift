import Testing
@testable import SluiceModel

/// The planner keeps no Service object (`ReceivedService`), yet a ServiceCIDR change validates
/// every Service again exactly as a fresh plan of the same objects does: same services
/// accepted, same plans, same diagnostics.
@Suite struct ServiceRevalidationTests {
    let options = NodeOptions(nodeName: "node-a", nodeIPs: [ip("192.168.10.11")])

    /// Inside 10.96.0.0/24 (a), inside only 10.96.0.0/16 (b–e), headless (f). c's ClusterIPs
    /// come from `spec.clusterIPs` (its IPv4 one second), d has an entry error of its own and
    /// e is rejected for its port: both ways the CIDR check decides which error is reported.
    let services = docs(
        serviceYAML("a", clusterIP: "10.96.0.10"),
        serviceYAML("b", clusterIP: "10.96.1.10"),
        serviceYAML("c", clusterIP: "fd00:10:96::5", spec: ["clusterIPs: [\"fd00:10:96::5\", \"10.96.1.11\"]"]),
        serviceYAML("d", clusterIP: "10.96.1.12", spec: ["externalIPs: [\"bogus\"]"]),
        serviceYAML("e", clusterIP: "10.96.1.13", ports: ["{name: http, port: 70000}"]),
        serviceYAML("f", clusterIP: "None"))

    func serviceCIDR(_ cidr: String) -> String {
        "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: kubernetes}\nspec: {cidrs: [\(cidr)]}\n"
    }

    /// A fresh plan of the services with these ServiceCIDR manifests.
    func fresh(_ cidrs: [String]) -> PlanResult {
        ProxyPlanner(options: options).plan(loadYAML(([services] + cidrs).joined(separator: "---\n")).objects)
    }

    /// The planner agrees with a fresh plan; `diagnostics` (one apply's) are the fresh plan's
    /// Service diagnostics, in any order.
    func expectSame(_ planner: IncrementalPlanner, _ diagnostics: [Diagnostic], as want: PlanResult) {
        #expect(planner.accepted.values.sorted { $0.name < $1.name } == want.services)
        #expect(planner.servicePorts(.ipv4) == want.plan.family(.ipv4)?.servicePorts)
        #expect(Set(planner.skipped.values) == Set(want.plan.skipped))
        let serviceDiagnostics = want.diagnostics.filter { $0.kind == "Service" }
        #expect(diagnostics.map(\.description).sorted() == serviceDiagnostics.map(\.description).sorted())
    }

    @Test("no Service object is kept, valid or not")
    func noServiceObjectIsKept() {
        var planner = IncrementalPlanner(options: options)
        _ = planner.apply(changes(docs(services, serviceCIDR("10.96.0.0/24"))))
        #expect(planner.accepted.count == 1)
        #expect(!planner.objects.keys.contains { $0.kind == .service })
        #expect(planner.objects.keys.contains { $0.kind == .serviceCIDR })
    }

    @Test("narrowing the ServiceCIDRs rejects the services outside, widening brings them back, each time as a fresh plan")
    func serviceCIDRChangesRevalidateBothWays() {
        var planner = IncrementalPlanner(options: options)
        let first = planner.apply(changes(docs(services, serviceCIDR("10.96.0.0/16"))))
        expectSame(planner, first.diagnostics, as: fresh([serviceCIDR("10.96.0.0/16")]))
        #expect(planner.accepted.count == 4)

        let narrowed = planner.apply(changes(serviceCIDR("10.96.0.0/24")))
        let narrow = fresh([serviceCIDR("10.96.0.0/24")])
        expectSame(planner, narrowed.diagnostics, as: narrow)
        #expect(planner.accepted.keys.map(\.name) == ["a"])
        #expect(narrow.descriptions.contains(
            "Rulesets/test.yaml: Service default/c: spec.clusterIPs[1]: 10.96.1.11 is outside every ServiceCIDR (10.96.0.0/24)"))
        #expect(narrow.descriptions.contains(
            "Rulesets/test.yaml: Service default/e: spec.clusterIP: 10.96.1.13 is outside every ServiceCIDR (10.96.0.0/24)"))

        let widened = planner.apply(changes(serviceCIDR("10.96.0.0/16")))
        expectSame(planner, widened.diagnostics, as: fresh([serviceCIDR("10.96.0.0/16")]))
        #expect(Set(planner.accepted.keys.map(\.name)) == ["a", "b", "c", "d"])

        _ = planner.apply(changes(serviceCIDR("10.96.0.0/24")))
        let deletion: ObjectChanges = [ProxyObjectKey(kind: .serviceCIDR, name: "kubernetes"): nil]
        let removed = planner.apply(deletion)
        expectSame(planner, removed.diagnostics, as: fresh([]))
    }

    @Test("Services delivered again unchanged (a relist) change nothing, whether valid, outside the ServiceCIDRs, rejected or skipped")
    func unchangedServicesDeliveredAgainChangeNothing() {
        var planner = IncrementalPlanner(options: options)
        _ = planner.apply(changes(docs(services, serviceCIDR("10.96.0.0/24"))))
        let again = planner.apply(changes(services))
        #expect(again.serviceChanges == 0 && again.replanned.isEmpty && again.diagnostics.isEmpty && !again.full)
        // A real change is still seen.
        let changed = planner.apply(changes(serviceYAML("a", clusterIP: "10.96.0.10", ports: ["{name: http, port: 81}"])))
        #expect(changed.serviceChanges == 1 && changed.replanned == [ServiceName(namespace: "default", name: "a")])
    }

    @Test("selections are kept without the Service: pods arriving later are matched")
    func podsAfterServicesUseTheirSelectors() {
        var planner = IncrementalPlanner(options: NodeOptions(nodeName: "node-a"))
        _ = planner.apply(changes(selectorServiceYAML()))
        let out = planner.apply(changes(podYAML("web-0")))
        #expect(out.replanned == [ServiceName(namespace: "default", name: "web")])
        #expect(planner.endpointSlices(for: ServiceName(namespace: "default", name: "web")).first?.endpoints.map(\.address)
                    == [ip("10.244.1.5")])
    }
}
