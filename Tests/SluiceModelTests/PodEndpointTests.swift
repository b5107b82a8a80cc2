import Foundation
import Testing
@testable import SluiceModel

/// A Pod manifest. `labels` and `ports` are flow mappings/sequences; `ips` fills `status.podIPs`.
func podYAML(_ name: String, ns: String = "default", labels: String = "{app: web}", ip: String? = "10.244.1.5",
             ips: [String]? = nil, ready: Bool? = true, node: String? = "node-a", terminating: Bool = false,
             ports: String = "[{name: http, containerPort: 8080}]") -> String {
    var lines = ["apiVersion: v1", "kind: Pod", "metadata:", "  name: \(name)", "  namespace: \(ns)", "  labels: \(labels)"]
    if terminating { lines.append("  deletionTimestamp: \"2026-12-01T10:00:00Z\"") }
    lines += ["spec:", "  containers:", "  - name: main", "    ports: \(ports)"]
    if let node { lines.append("  nodeName: \(node)") }
    lines.append("status:")
    if let ip { lines.append("  podIP: \"\(ip)\"") }
    if let ips { lines.append("  podIPs: [\(ips.map { "{ip: \"\($0)\"}" }.joined(separator: ", "))]") }
    if let ready { lines.append("  conditions: [{type: PodScheduled, status: \"True\"}, {type: Ready, status: \"\(ready ? "True" : "False")\"}]") }
    return lines.joined(separator: "\n") + "\n"
}

/// A selector Service (`selector: {app: web}` unless given).
func selectorServiceYAML(_ name: String = "web", ns: String = "default", clusterIP: String = "10.96.0.10",
                         selector: String = "{app: web}", spec: [String] = [],
                         ports: [String] = ["{name: http, port: 80, targetPort: http}"]) -> String {
    serviceYAML(name, ns: ns, clusterIP: clusterIP, spec: ["selector: \(selector)"] + spec, ports: ports)
}

/// The plan's endpoint strings of one service port (cluster endpoints).
func endpoints(_ r: PlanResult, _ port: String = "default/web:http", family: IPFamily = .ipv4) -> [String] {
    r.port(port, family: family)?.clusterEndpoints.strings ?? []
}

/// Plans manifests (diagnostics allowed) for node-a.
func planPods(_ yaml: String) -> PlanResult {
    ProxyPlanner(options: NodeOptions(nodeName: "node-a", nodeIPs: [ip("192.168.10.11")])).plan(loadYAML(yaml).objects)
}

@Suite("Pods by label selector")
struct PodEndpointTests {
    // MARK: Decoding

    @Test func podKeepsEveryLabelAndOnlyWhatTheProxyUses() throws {
        let r = loadYAML(podYAML("web-0", labels: "{app: web, tier: front, team: a}"))
        #expect(r.diagnostics.isEmpty)
        let pod = try #require(r.objects.pods.first?.object)
        #expect(pod.metadata.labels == ["app": "web", "tier": "front", "team": "a"])
        #expect(pod.status.conditions == [Pod.Condition(type: "Ready", status: "True")])
        #expect(pod.spec.containers?.first?.ports == [Pod.ContainerPort(name: "http", containerPort: 8080)])
        #expect(pod.spec.nodeName == "node-a" && pod.status.podIP == "10.244.1.5")
    }

    @Test func otherObjectsStillKeepOnlyWellKnownLabels() throws {
        let r = loadYAML(docs(selectorServiceYAML(), sliceYAML("s", service: "web", endpoints: ["{addresses: [10.244.1.5]}"])))
        let svc = try #require(r.objects.services.first?.object)
        #expect(svc.spec.selector == ["app": "web"])
        #expect(svc.metadata.labels == nil)
        let yaml = "apiVersion: v1\nkind: Node\nmetadata: {name: n, labels: {foo: bar, topology.kubernetes.io/zone: z}}\n"
        #expect(loadYAML(yaml).objects.nodes.first?.object.metadata.labels == ["topology.kubernetes.io/zone": "z"])
    }

    @Test func podsDecodeFromJSONAndSelectorsFromTheHandWrittenReader() throws {
        let json = #"{"kind":"Pod","metadata":{"name":"p","namespace":"ns","labels":{"app":"web","x":"y"},"deletionTimestamp":"2026-12-01T10:00:00Z"},"spec":{"nodeName":"node-a","containers":[{"name":"c","ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}]}]},"status":{"podIPs":[{"ip":"10.244.1.5"},{"ip":"fd00::5"}],"conditions":[{"type":"Ready","status":"False"}]}}"#
        let r = ManifestLoader().parse(text: json, file: "pod.json")
        #expect(r.diagnostics.isEmpty)
        let pod = try #require(r.objects.pods.first?.object)
        #expect(pod.metadata.labels == ["app": "web", "x": "y"] && pod.metadata.deletionTimestamp != nil)
        #expect(pod.status.podIPs?.compactMap(\.ip) == ["10.244.1.5", "fd00::5"] && !pod.isReady)

        let service = #"{"kind":"Service","metadata":{"name":"web"},"spec":{"selector":{"app":"web","tier":"front"},"publishNotReadyAddresses":true,"ports":[{"port":80}]}}"#
        let byReader = try #require(JSONReader.read(Array(service.utf8)) { try Service(json: &$0) })
        let byDecoder = try JSONDecoder().decode(Service.self, from: Data(service.utf8))
        #expect(byReader == byDecoder)
        #expect(byReader.podSelection == PodSelection(selector: ["app": "web", "tier": "front"], publishNotReadyAddresses: true))
        let twice = #"{"spec":{"selector":{"app":"a","app":"b"}}}"#
        #expect(JSONReader.read(Array(twice.utf8)) { try Service(json: &$0) } == nil, "a key given twice falls back to JSONDecoder")
    }

    @Test func podListsAndListsOfPodsAreRead() {
        let list = "apiVersion: v1\nkind: List\nitems:\n- " + podYAML("a").split(separator: "\n").joined(separator: "\n  ")
        let podList = "kind: PodList\nitems:\n- metadata: {name: b, namespace: default}\n  status: {podIP: 10.244.1.6}\n"
        let r = loadYAML(docs(list + "\n", podList))
        #expect(r.diagnostics.isEmpty)
        #expect(r.objects.pods.map { $0.object.metadata.name ?? "" } == ["a", "b"])
    }

    // MARK: Derivation

    @Test func selectorMatchesEveryPairInTheServiceNamespaceOnly() {
        let r = planPods(docs(
            selectorServiceYAML(selector: "{app: web, tier: front}"),
            podYAML("both", labels: "{app: web, tier: front, extra: x}", ip: "10.244.1.1"),
            podYAML("one", labels: "{app: web}", ip: "10.244.1.2"),
            podYAML("other-ns", ns: "other", labels: "{app: web, tier: front}", ip: "10.244.1.3"),
            podYAML("wrong-value", labels: "{app: web, tier: back}", ip: "10.244.1.4")))
        #expect(endpoints(r) == ["10.244.1.1:8080"])
    }

    @Test func onlyPodsWithAnAddressAreEndpoints() {
        let r = planPods(docs(selectorServiceYAML(), podYAML("pending", ip: nil, ready: nil), podYAML("running", ip: "10.244.1.9")))
        #expect(endpoints(r) == ["10.244.1.9:8080"])
        #expect(r.diagnostics.isEmpty)
    }

    @Test func readyNotReadyAndTerminatingFollowTheController() throws {
        var planner = IncrementalPlanner(options: NodeOptions(nodeName: "node-a"))
        _ = planner.apply(changes(docs(
            selectorServiceYAML(),
            podYAML("ready", ip: "10.244.1.1"),
            podYAML("not-ready", ip: "10.244.1.2", ready: false),
            podYAML("terminating", ip: "10.244.1.3", terminating: true),
            podYAML("terminating-not-ready", ip: "10.244.1.4", ready: false, terminating: true))))
        let slice = try #require(planner.endpointSlices(for: ServiceName(namespace: "default", name: "web")).first)
        #expect(slice.sliceName == "web-pods-ipv4")
        let byPod = Dictionary(uniqueKeysWithValues: zip(slice.pods ?? [], slice.endpoints))
        func conditions(_ pod: String) -> [Bool]? {
            byPod["default/\(pod)"].map { [$0.ready, $0.serving, $0.terminating] }
        }
        #expect(conditions("ready") == [true, true, false])
        #expect(conditions("not-ready") == [false, false, false])
        #expect(conditions("terminating") == [false, true, true])
        #expect(conditions("terminating-not-ready") == [false, false, true])
    }

    @Test func terminatingServingPodsAreTheFallbackWhenNoneIsReady() {
        let r = planPods(docs(selectorServiceYAML(),
                              podYAML("t0", ip: "10.244.1.1", terminating: true),
                              podYAML("t1", ip: "10.244.1.2", ready: false, terminating: true)))
        #expect(endpoints(r) == ["10.244.1.1:8080"])
    }

    @Test func nodeNameAndZoneComeFromThePodAndItsNode() throws {
        let nodeB = "apiVersion: v1\nkind: Node\nmetadata: {name: node-b, labels: {topology.kubernetes.io/zone: zone-b}}\n"
        var planner = IncrementalPlanner(options: NodeOptions(nodeName: "node-a"))
        _ = planner.apply(changes(docs(selectorServiceYAML(), nodeB,
                                       podYAML("on-b", ip: "10.244.2.1", node: "node-b"),
                                       podYAML("on-c", ip: "10.244.3.1", node: "node-c"))))
        let web = ServiceName(namespace: "default", name: "web")
        let eps = try #require(planner.endpointSlices(for: web).first).endpoints
        #expect(eps.map(\.nodeName) == ["node-b", "node-c"])
        #expect(eps.map(\.zone) == ["zone-b", nil])
        // The Node's zone label changes: the service is re-planned with the new zone.
        let moved = nodeB.replacingOccurrences(of: "zone-b", with: "zone-x")
        let changed = planner.apply(changes(moved))
        #expect(changed.replanned.isEmpty, "the zone is not part of the plan without hints")
        #expect(planner.endpointSlices(for: web).first?.endpoints.first?.zone == "zone-x")
    }

    @Test func namedTargetPortResolvesPerPodAndAPodWithoutItIsLeftOutOfThatPort() {
        let r = planPods(docs(
            selectorServiceYAML(ports: ["{name: http, port: 80, targetPort: http}", "{name: admin, port: 9000, targetPort: 9001}",
                                        "{name: dns, protocol: UDP, port: 53, targetPort: dns}"]),
            podYAML("a", ip: "10.244.1.1", ports: "[{name: http, containerPort: 8080}, {name: dns, containerPort: 5353, protocol: UDP}]"),
            podYAML("b", ip: "10.244.1.2", ports: "[{name: http, containerPort: 9090}, {name: dns, containerPort: 5353}]"),
            podYAML("c", ip: "10.244.1.3", ports: "[{name: metrics, containerPort: 9100}]")))
        #expect(endpoints(r) == ["10.244.1.1:8080", "10.244.1.2:9090"])
        #expect(endpoints(r, "default/web:admin") == ["10.244.1.1:9001", "10.244.1.2:9001", "10.244.1.3:9001"])
        // `dns` on pod b is TCP (the default): no match for the UDP service port.
        #expect(endpoints(r, "default/web:dns") == ["10.244.1.1:5353"])
    }

    @Test func publishNotReadyAddressesMakesEveryPodWithAnAddressReady() {
        let r = planPods(docs(selectorServiceYAML(spec: ["publishNotReadyAddresses: true"]),
                              podYAML("a", ip: "10.244.1.1", ready: false),
                              podYAML("b", ip: "10.244.1.2", ready: nil, terminating: true),
                              podYAML("c", ip: nil)))
        #expect(endpoints(r) == ["10.244.1.1:8080", "10.244.1.2:8080"])
    }

    @Test func dualStackPodsGiveOneEndpointPerFamilyInSlicesPerFamily() {
        let svc = selectorServiceYAML(clusterIP: "10.96.0.10", spec: ["clusterIPs: [10.96.0.10, \"fd00:10:96::a\"]", "ipFamilies: [IPv4, IPv6]"])
        var planner = IncrementalPlanner(options: NodeOptions(nodeName: "node-a", nodeIPs: [ip("192.168.10.11"), ip("fd00::11")]))
        _ = planner.apply(changes(docs(svc,
                                       podYAML("ds", ip: "10.244.1.1", ips: ["10.244.1.1", "fd00:10:244:1::1", "fd00:10:244:1::2"]),
                                       podYAML("v4", ip: "10.244.1.2"))))
        let slices = planner.endpointSlices(for: ServiceName(namespace: "default", name: "web"))
        #expect(slices.map(\.sliceName) == ["web-pods-ipv4", "web-pods-ipv6"])
        #expect(slices.map { $0.endpoints.map(\.address.description) } == [["10.244.1.1", "10.244.1.2"], ["fd00:10:244:1::1"]])
        #expect(planner.servicePorts(.ipv6).first?.clusterEndpoints.strings == ["[fd00:10:244:1::1]:8080"])
    }

    @Test func podsOfDifferentPortsGoToSlicesOfTheirOwn() {
        var planner = IncrementalPlanner(options: NodeOptions(nodeName: "node-a"))
        _ = planner.apply(changes(docs(selectorServiceYAML(),
                                       podYAML("a", ip: "10.244.1.1"),
                                       podYAML("b", ip: "10.244.1.2", ports: "[{name: http, containerPort: 9090}]"),
                                       podYAML("c", ip: "10.244.1.3"))))
        let slices = planner.endpointSlices(for: ServiceName(namespace: "default", name: "web"))
        #expect(slices.map(\.sliceName) == ["web-pods-ipv4", "web-pods-ipv4-2"])
        #expect(slices.map { $0.pods ?? [] } == [["default/a", "default/c"], ["default/b"]])
    }

    // MARK: EndpointSlices win

    @Test func anExplicitEndpointSliceWinsOverPods() {
        let slice = sliceYAML("web-manual", service: "web", endpoints: ["{addresses: [10.244.9.9]}"])
        let r = planPods(docs(selectorServiceYAML(), slice, podYAML("a", ip: "10.244.1.1")))
        #expect(endpoints(r) == ["10.244.9.9:8080"])
        #expect(r.endpointPods.isEmpty)
    }

    @Test func addingAndRemovingTheSliceSwitchesBetweenSliceAndPods() {
        var planner = IncrementalPlanner(options: NodeOptions(nodeName: "node-a"))
        _ = planner.apply(changes(docs(selectorServiceYAML(), podYAML("a", ip: "10.244.1.1"))))
        #expect(planner.servicePorts(.ipv4).first?.clusterEndpoints.strings == ["10.244.1.1:8080"])
        let slice = sliceYAML("web-manual", service: "web", endpoints: ["{addresses: [10.244.9.9]}"])
        _ = planner.apply(changes(slice))
        #expect(planner.servicePorts(.ipv4).first?.clusterEndpoints.strings == ["10.244.9.9:8080"])
        // A slice rejected whole (bad addressType) still names the service: pods stay unused.
        _ = planner.apply(changes(slice.replacingOccurrences(of: "addressType: IPv4", with: "addressType: IPv5")))
        #expect(planner.servicePorts(.ipv4).first?.clusterEndpoints.strings == [])
        _ = planner.apply(deletion(.endpointSlice, "web-manual"))
        #expect(planner.servicePorts(.ipv4).first?.clusterEndpoints.strings == ["10.244.1.1:8080"])
    }

    // MARK: Incremental changes

    @Test func aLabelEditMovesThePodInAndOutAndTouchesOnlyItsServices() {
        var planner = IncrementalPlanner(options: NodeOptions(nodeName: "node-a"))
        _ = planner.apply(changes(docs(selectorServiceYAML(), selectorServiceYAML("api", clusterIP: "10.96.0.11", selector: "{app: api}"),
                                       podYAML("a", labels: "{app: web}", ip: "10.244.1.1"))))
        let moved = planner.apply(changes(podYAML("a", labels: "{app: api}", ip: "10.244.1.1")))
        #expect(moved.replanned == [ServiceName(namespace: "default", name: "web"), ServiceName(namespace: "default", name: "api")])
        #expect(planner.servicePorts(.ipv4).map { "\($0.name) \($0.clusterEndpoints.strings)" }
            == ["default/api:http [\"10.244.1.1:8080\"]", "default/web:http []"])
        let unrelated = planner.apply(changes(podYAML("a", labels: "{app: api, team: x}", ip: "10.244.1.1")))
        #expect(unrelated.replanned.isEmpty && unrelated.ports.isEmpty)
        let gone = planner.apply(deletion(.pod, "a"))
        #expect(gone.replanned == [ServiceName(namespace: "default", name: "api")])
    }

    @Test func aSelectorEditReplansTheService() {
        var planner = IncrementalPlanner(options: NodeOptions(nodeName: "node-a"))
        _ = planner.apply(changes(docs(selectorServiceYAML(), podYAML("a", labels: "{app: api}", ip: "10.244.1.1"))))
        #expect(planner.servicePorts(.ipv4).first?.clusterEndpoints.strings == [])
        let changed = planner.apply(changes(selectorServiceYAML(selector: "{app: api}")))
        #expect(changed.replanned == [ServiceName(namespace: "default", name: "web")])
        #expect(planner.servicePorts(.ipv4).first?.clusterEndpoints.strings == ["10.244.1.1:8080"])
    }

    @Test("random histories of pods, selectors, a slice and a node's zone: the incremental plan equals a fresh one after every step")
    func incrementalEqualsFreshAfterEveryStep() {
        var rng = SplitMix(seed: 12)
        let options = NodeOptions(nodeName: "node-a")
        var planner = IncrementalPlanner(options: options)
        var current: [ProxyObjectKey: SourcedObject] = [:]
        for step in 0..<400 {
            let yaml = randomObject(&rng)
            var change = changes(yaml)
            if rng.next() % 5 == 0, let key = change.keys.first { change = [key: nil] }
            for (key, value) in change { current[key] = value }
            _ = planner.apply(change)
            var fresh = IncrementalPlanner(options: options)
            _ = fresh.apply(current.mapValues { Optional($0) })
            let differing = fresh.accepted.keys.filter { planner.endpointSlices(for: $0) != fresh.endpointSlices(for: $0) }
            guard planner.planned == fresh.planned, differing.isEmpty else {
                Issue.record("step \(step): the incremental plan differs from a fresh one (slices of \(differing)) after\n\(yaml)")
                return
            }
        }
    }

    /// One of three services, eight pods, a slice of s0 or node-b, in a random version.
    private func randomObject(_ rng: inout SplitMix) -> String {
        func pick<T>(_ options: [T]) -> T { options[Int(rng.next() % UInt64(options.count))] }
        switch rng.next() % 10 {
        case 0, 1:
            let i = Int(rng.next() % 3)
            let selector = pick(["{app: a}", "{app: a, tier: x}", "{app: b}", "{}"])
            return selectorServiceYAML("s\(i)", clusterIP: "10.96.0.1\(i)", selector: selector,
                                       spec: pick([[], ["publishNotReadyAddresses: true"]]),
                                       ports: ["{name: http, port: 80, targetPort: http}", "{name: m, port: 9000, targetPort: 9000}"])
        case 2:
            let ready = sliceYAML("s0-own", service: "s0", endpoints: ["{addresses: [10.244.9.9]}"])
            return pick([ready, ready.replacingOccurrences(of: "IPv4", with: "IPv5")])
        case 3:
            return "apiVersion: v1\nkind: Node\nmetadata: {name: node-b, labels: \(pick(["{}", "{topology.kubernetes.io/zone: z1}", "{topology.kubernetes.io/zone: z2}"]))}\n"
        default:
            let j = Int(rng.next() % 8)
            return podYAML("p\(j)", ns: pick(["default", "default", "other"]), labels: pick(["{app: a}", "{app: a, tier: x}", "{app: b, tier: x}", "{}"]),
                           ip: pick(["10.244.1.\(j + 1)", "10.244.2.\(j + 1)", "bad"]), ready: pick([true, false, nil]),
                           node: pick(["node-a", "node-b", nil]), terminating: pick([false, false, true]),
                           ports: pick(["[{name: http, containerPort: 8080}]", "[{name: http, containerPort: 9090}]", "[]"]))
        }
    }

    // MARK: Invalid pods

    @Test func aBadPodIsReportedAndLeftOutAndTheRestWorks() {
        let r = planPods(docs(selectorServiceYAML(),
                              podYAML("bad", ip: "10.244.999.1"),
                              podYAML("loop", ip: "127.0.0.1"),
                              podYAML("good", ip: "10.244.1.1"),
                              "apiVersion: v1\nkind: Pod\nmetadata: {name: typed, namespace: default}\nstatus: {podIP: [1]}\n"))
        #expect(endpoints(r) == ["10.244.1.1:8080"])
        #expect(r.descriptions.contains("Rulesets/test.yaml: Pod default/bad: status.podIP: \"10.244.999.1\" is not a valid IP address; pod left out"))
        #expect(r.descriptions.contains { $0.hasPrefix("Rulesets/test.yaml: Pod default/loop: status.podIP: 127.0.0.1 is ") })
        let loaded = loadYAML("apiVersion: v1\nkind: Pod\nmetadata: {name: typed, namespace: default}\nstatus: {podIP: [1]}\n")
        #expect(loaded.diagnostics.map(\.description) == ["Rulesets/test.yaml (document 1): Pod default/typed: status.podIP: expected a string"])
    }

    @Test func explainGetsThePodBehindEachEndpoint() {
        let r = planPods(docs(selectorServiceYAML(), podYAML("a", ip: "10.244.1.1"), podYAML("b", ns: "other", ip: "10.244.1.2")))
        #expect(r.endpointPods == [ServiceName(namespace: "default", name: "web"): [ip("10.244.1.1"): "default/a"]])
    }
}

/// Every object of a manifest stream as upserts.
func changes(_ yaml: String) -> ObjectChanges { loadYAML(yaml).objects.upsertChanges }

/// The deletion of one object in namespace `default`.
func deletion(_ kind: ProxyObjectKind, _ name: String) -> ObjectChanges {
    let changes: ObjectChanges = [ProxyObjectKey(kind: kind, namespace: "default", name: name): nil]
    return changes
}

/// A small deterministic generator (SplitMix64).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A planner that plans from EndpointSlices only (`plansFromPods: false`, the daemon fed by
/// the API server) keeps no selector and leaves out a Pod that comes anyway, with an error.
@Suite("Planning without Pods")
struct PlanningWithoutPodsTests {
    let options = NodeOptions(nodeName: "node-a", nodeIPs: [ip("192.168.10.11")])

    @Test("a Pod is reported and left out; the selector Service stays without endpoints; a re-delivered Service changes nothing")
    func podLeftOut() {
        var planner = IncrementalPlanner(options: options, plansFromPods: false)
        let first = planner.apply(changes(selectorServiceYAML()))
        #expect(first.serviceChanges == 1)
        let pod = planner.apply(changes(podYAML("web-0")))
        let errors = pod.diagnostics.filter(\.isError)
        #expect(errors.count == 1)
        #expect(errors.first?.kind == "Pod" && errors.first?.name == "web-0" && errors.first?.message.contains("left out") == true)
        #expect(planner.endpointSlices(for: ServiceName(namespace: "default", name: "web")).isEmpty)
        #expect(planner.servicePorts(.ipv4).first?.hasAnyEndpoints == false)
        let again = planner.apply(changes(selectorServiceYAML()))
        #expect(again.serviceChanges == 0 && again.replanned.isEmpty)

        // The same objects with Pods planned: the pod is the endpoint (the flag is what differs).
        var withPods = IncrementalPlanner(options: options)
        _ = withPods.apply(changes(selectorServiceYAML()))
        _ = withPods.apply(changes(podYAML("web-0")))
        #expect(withPods.servicePorts(.ipv4).first?.clusterEndpoints.count == 1)
    }
}
