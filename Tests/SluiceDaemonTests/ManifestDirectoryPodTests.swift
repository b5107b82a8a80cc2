import Foundation
import SluiceCompiler
import SluiceDaemon
import SluiceIR
import SluiceModel
import SluiceNetlink
import Testing

/// A running Pod with one address and the container port `http` 8080.
func podYAML(_ name: String, labels: String, ip: String, ns: String = "default") -> String {
    """
    apiVersion: v1
    kind: Pod
    metadata: {name: \(name), namespace: \(ns), labels: \(labels)}
    spec:
      nodeName: node-b
      containers:
      - {name: main, ports: [{name: http, containerPort: 8080}]}
    status:
      podIP: \(ip)
      conditions: [{type: Ready, status: "True"}]

    """
}

/// The addresses ClusterIP traffic is DNATed to: the data of the `endpoints-N` maps.
func endpointAddresses(_ ruleset: Ruleset) -> Set<String> {
    guard let table = ruleset.table(.ip, Layout.tableName) else { return [] }
    let maps = table.elements.filter { $0.key.hasPrefix("endpoints-") }.values
    return Set(maps.flatMap { $0.values.compactMap { $0.first?.description } })
}

@Suite("Manifest directory source: Pods by selector", .timeLimit(.minutes(2)))
struct ManifestDirectoryPodTests {
    @Test("editing a pod's labels in a watched file moves its endpoint out of the service and back in")
    func podLabelEditMovesTheEndpoint() async throws {
        let dir = try ManifestDir()
        defer { dir.close() }
        let service = serviceYAML("web", clusterIP: "10.96.0.10", extraSpec: ["selector: {app: web}"])
        func pods(_ secondLabels: String) -> String {
            podYAML("web-0", labels: "{app: web}", ip: "10.244.2.5") + "---\n" + podYAML("web-1", labels: secondLabels, ip: "10.244.2.6")
        }
        try dir.write("service.yaml", service)
        try dir.write("pods.yaml", pods("{app: web, track: stable}"))
        let fake = FakeDataplane()
        var config = DaemonConfiguration(options: testOptions(),
                                         sources: [ManifestDirectorySource(paths: [dir.path], interval: .seconds(3600))],
                                         healthzBindAddress: "127.0.0.1:0", metricsBindAddress: "127.0.0.1:0",
                                         healthCheckBindHost: "127.0.0.1")
        config.dataplane = { fake }
        config.watchCommits = false
        try await withDaemon(config) { daemon in
            try await waitUntil("both pods are endpoints") { endpointAddresses(fake.kernelState) == ["10.244.2.5", "10.244.2.6"] }
            #expect(diff(fake.kernelState, batchRuleset(dir.path)).isEmpty)

            try dir.write("pods.yaml", pods("{app: canary, track: stable}"))
            try await waitUntil("web-1 leaves the service") { endpointAddresses(fake.kernelState) == ["10.244.2.5"] }
            #expect(diff(fake.kernelState, batchRuleset(dir.path)).isEmpty)

            try dir.write("pods.yaml", pods("{app: web}"))
            try await waitUntil("web-1 is back") { endpointAddresses(fake.kernelState) == ["10.244.2.5", "10.244.2.6"] }
            #expect(diff(fake.kernelState, batchRuleset(dir.path)).isEmpty)

            // An EndpointSlice of the service's own wins over its pods, and going away hands back to them.
            try dir.write("slice.yaml", sliceYAML("web-manual", service: "web", ips: ["10.244.3.9"]))
            try await waitUntil("the slice wins") { endpointAddresses(fake.kernelState) == ["10.244.3.9"] }
            try dir.remove("slice.yaml")
            try await waitUntil("the pods are back") { endpointAddresses(fake.kernelState) == ["10.244.2.5", "10.244.2.6"] }
        }
    }

    @Test("the directory watcher delivers pods as objects, and a label edit as one upsert")
    func watcherDeliversPods() throws {
        let dir = try ManifestDir()
        defer { dir.close() }
        try dir.write("pods.yaml", podYAML("web-0", labels: "{app: web}", ip: "10.244.2.5"))
        var watcher = ManifestDirectorySource.Watcher(paths: [dir.path])
        let first = watcher.poll().delta
        let key = ProxyObjectKey(kind: .pod, namespace: "default", name: "web-0")
        #expect(Array(first.upserts.keys) == [key])
        try dir.write("pods.yaml", podYAML("web-0", labels: "{app: other}", ip: "10.244.2.5"))
        let edit = watcher.refresh(files: [dir.path + "/pods.yaml"]).delta
        guard case .pod(let pod)? = edit.upserts[key]?.object else {
            Issue.record("no pod upsert: \(edit)")
            return
        }
        #expect(pod.metadata.labels == ["app": "other"])
    }
}
