import Foundation
import SluiceTestSupport
import Testing

extension CLITests {
    var podsBySelector: [String] {
        ["--source", Self.root + "/Rulesets/pods-by-selector", "--config", Self.root + "/Rulesets/pods-by-selector/kube-proxy-config.yaml"]
    }

    /// `explain` names the pod behind an endpoint derived from Pods, and only then.
    @Test func explainNamesThePodBehindEachEndpoint() throws {
        let web = try sluice(["explain"] + podsBySelector + ["--to", "10.96.0.190:80/tcp", "--from", "10.244.1.9"])
        #expect(web.succeeded, "\(web.stderr)")
        #expect(outcomes(web).sorted() == [
            "p=0.5000  → 10.244.1.190:8080 (pod store/web-0)  (source address kept)",
            "p=0.5000  → 10.244.2.190:9090 (pod store/web-1)  (source address kept)",
        ], "\(web.stdout)")
        // The bad pod is reported with file, kind, name and field; the rest still compiles.
        #expect((web.stdout + web.stderr).contains("pods.yaml: Pod store/web-6: status.podIPs[0].ip: \"10.244.999.6\" is not a valid IP address; pod left out"),
                "\(web.stderr)")

        // store/legacy has an EndpointSlice of its own: it wins, and no pod is named.
        let legacy = try sluice(["explain"] + podsBySelector + ["--to", "10.96.0.193:80/tcp", "--from", "10.244.1.9"])
        #expect(outcomes(legacy) == ["p=1.0000  → 10.244.2.193:8080  (source address kept)"], "\(legacy.stdout)")

        // The demo's tomcat back end comes from its pods.
        let tomcat = try sluice(["explain"] + demo + ["--to", "10.96.0.20:8080/tcp", "--from", "10.244.1.9"])
        #expect(outcomes(tomcat).map { $0.components(separatedBy: "  ")[1] }.sorted() == [
            "→ 10.244.1.20:8080 (pod shop/tomcat-0)", "→ 10.244.2.21:8080 (pod shop/tomcat-1)", "→ 10.244.3.22:8080 (pod shop/tomcat-2)",
        ], "\(tomcat.stdout)")
    }
}
