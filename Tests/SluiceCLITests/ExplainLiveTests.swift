import Foundation
import SluiceTestSupport
import Testing

extension CLITests {
    var demoSource: [String] { ["--source", Self.root + "/Rulesets/demo", "--config", Self.root + "/Rulesets/demo/kube-proxy-config.yaml"] }

    /// The outcome lines (`p=…`) of an `explain` run.
    func outcomeLines(_ r: CommandResult) -> [String] {
        r.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("  p=") }
    }

    /// `explain --live` walks what the kernel holds: on the demo, programmed with
    /// `sluice apply`, it reaches the same outcomes as `explain` on the manifests, for pod,
    /// outside and node clients, ClusterIPs, NodePorts and LoadBalancer IPs; then it reports
    /// the kernel's counters for a destination that saw connections.
    @Test func explainLiveAgreesWithExplainOnTheDemo() throws {
        try requireKernelTestEnvironment(tools: ["ip", "nft", "python3"])
        try withNetworkNamespace(label: "live") { ns in
            try giveNodeAddress(ns)
            let applied = try sluice(["apply", "--netns", ns.name] + demoSource)
            #expect(applied.succeeded, "\(applied.stderr)")
            let compiled = try sluice(["compile"] + demoSource).stdout
            // Every ClusterIP and NodePort the demo compiles, from three kinds of client.
            let vips = Set(compiled.matches(of: /10\.96\.0\.\d+ \. (tcp|udp) \. \d+/).map { String($0.output.0) })
            #expect(vips.count >= 3, "\(vips)")
            var destinations = vips.map { m -> String in
                let parts = m.split(separator: " ")
                return "\(parts[0]):\(parts[4])/\(parts[2])"
            }
            destinations += ["192.168.10.11:30080/tcp", "10.96.0.99:80/tcp"]
            for to in destinations.sorted() {
                for from in ["10.244.1.9", "203.0.113.7", "192.168.10.11"] {
                    let args = ["explain", "--to", to, "--from", from]
                    let want = try sluice(args + demoSource)
                    // Live, naming services and pods from the same manifests: the same lines.
                    let named = try sluice(args + ["--live", "--netns", ns.name] + demoSource)
                    #expect(named.succeeded, "\(named.stderr)")
                    let lines = { (r: CommandResult) in r.stdout.split(separator: "\n").filter { !$0.contains("counted:") } }
                    #expect(!outcomeLines(want).isEmpty && lines(named) == lines(want),
                            "\(to) from \(from):\n--- manifests:\n\(want.stdout)--- live:\n\(named.stdout)")
                    // Live from the kernel alone: the same outcomes, without the pod names.
                    let bare = try sluice(args + ["--live", "--netns", ns.name])
                    let unnamed = outcomeLines(want).map { $0.replacing(#/ \(pod [^)]*\)/#, with: "") }
                    #expect(outcomeLines(bare) == unnamed, "\(to) from \(from):\n--- live:\n\(bare.stdout)")
                }
            }
            let target = try #require(destinations.sorted().first { $0.hasSuffix("/tcp") && $0.hasPrefix("10.96.") })
            let host = String(target.split(separator: ":")[0]), port = String(target.split(separator: ":")[1].split(separator: "/")[0])
            _ = try ns.runChecked(["python3", "-c", """
                import socket
                for i in range(2):
                    s = socket.socket(); s.setblocking(False); s.connect_ex(("\(host)", \(port))); s.close()
                """])
            let counted = try sluice(["explain", "--to", target, "--from", "192.168.10.11", "--live", "--netns", ns.name])
            #expect(counted.stdout.contains("counted: 2 new connections to \(host):\(port)/TCP"), "\(counted.stdout)")
        }
    }
}
