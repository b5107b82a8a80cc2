import Foundation
import SluiceTestSupport
import Testing

/// The `sluice` executable end to end: apply, re-apply, cleanup, in namespaces the tests create.
@Suite("sluice command line", .serialized)
struct CLITests {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The `sluice` binary SwiftPM built next to the test bundle.
    static var binary: String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidates = [dir.appendingPathComponent("sluice").path]
        candidates.append(dir.deletingLastPathComponent().appendingPathComponent("sluice").path)
        for arch in ["debug", "release"] { candidates.append(root + "/.build/\(arch)/sluice") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    func sluice(_ args: [String]) throws -> CommandResult {
        try runCommand([Self.binary] + args)
    }

    var demo: [String] { ["--source", Self.root + "/Rulesets/demo", "--config", Self.root + "/Rulesets/demo/kube-proxy-config.yaml"] }

    @Test func applyTwiceSendsNothingTheSecondTime() throws {
        try requireKernelTestEnvironment(tools: ["ip", "nft"])
        try withNetworkNamespace(label: "cli") { ns in
            let first = try sluice(["apply", "--netns", ns.name] + demo)
            #expect(first.succeeded, "\(first.stderr)")
            #expect(first.stdout.hasPrefix("applied "), "\(first.stdout)")
            let listed = try ns.runChecked(["nft", "list", "table", "ip", "sluice"]).stdout
            #expect(listed.contains("10.96.0.20 . tcp . 8080"))
            let second = try sluice(["apply", "--netns", ns.name] + demo)
            #expect(second.succeeded, "\(second.stderr)")
            #expect(second.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "no change: nothing sent")
            let cleaned = try sluice(["cleanup", "--netns", ns.name])
            #expect(cleaned.succeeded, "\(cleaned.stderr)")
            #expect(try ns.run(["nft", "list", "table", "ip", "sluice"]).status != 0)
        }
    }

    @Test("apply: CIDR entries of --nodeport-addresses select from the interface addresses of the namespace programmed")
    func applyReadsInterfaceAddresses() throws {
        try requireKernelTestEnvironment(tools: ["ip", "nft"])
        try withNetworkNamespace(label: "clinp") { ns in
            try ns.runChecked(["ip", "link", "add", "np0", "type", "veth", "peer", "name", "np1"])
            try ns.runChecked(["ip", "addr", "add", "10.55.0.9/32", "dev", "np0"])
            // Flags rather than the demo's config file (whose nodePortAddresses would win).
            let r = try sluice(["apply", "--netns", ns.name, "--hostname-override", "node-a", "--nodeport-addresses", "10.55.0.0/16",
                                "--source", Self.root + "/Rulesets/demo"])
            #expect(r.succeeded, "\(r.stderr)")
            let set = try ns.runChecked(["nft", "list", "set", "ip", "sluice", "nodeport-ips"]).stdout
            #expect(set.contains("10.55.0.9"), "\(set)")
        }
    }

    @Test func cleanupKubeProxyRemovesUpstreamLeftovers() throws {
        try requireKernelTestEnvironment(tools: ["ip", "nft", "iptables-restore", "iptables-save"])
        try withNetworkNamespace(label: "clikp") { ns in
            // kube-proxy nftables leftovers and iptables-mode chains with jumps from built-ins.
            try ns.runChecked(["nft", "-f", "-"], input: "table ip kube-proxy {\n chain services {\n }\n}\ntable ip6 kube-proxy {\n chain services {\n }\n}\n")
            let ipt = try sluice(["apply", "--netns", ns.name, "--backend", "iptables"] + demo)
            #expect(ipt.succeeded, "\(ipt.stderr)")
            #expect(try ns.runChecked(["iptables-save", "-t", "nat"]).stdout.contains(":KUBE-SVC-"))
            let r = try sluice(["cleanup", "--kube-proxy", "--netns", ns.name])
            #expect(r.succeeded, "\(r.stderr)")
            #expect(r.stdout.contains("deleted kube-proxy nftables tables: ip kube-proxy, ip6 kube-proxy"), "\(r.stdout)")
            #expect(try ns.run(["nft", "list", "table", "ip", "kube-proxy"]).status != 0)
            for table in ["nat", "filter", "mangle"] {
                let saved = try ns.runChecked(["iptables-save", "-t", table]).stdout
                #expect(!saved.contains("KUBE-"), "KUBE- left in \(table):\n\(saved)")
            }
        }
    }

    @Test("cleanup --kube-proxy without iptables tools in PATH fails and says so (it never reports 0 chains deleted)")
    func cleanupKubeProxyWithoutIptablesTools() throws {
        try requireKernelTestEnvironment(tools: ["ip", "nft"])
        let bin = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-path-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: bin) }
        let ip = try runCommand(["sh", "-c", "command -v ip"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try FileManager.default.createSymbolicLink(atPath: bin + "/ip", withDestinationPath: ip)
        try withNetworkNamespace(label: "clinoipt") { ns in
            try ns.runChecked(["nft", "-f", "-"], input: "table ip kube-proxy {\n chain services {\n }\n}\n")
            let r = try runCommand(["env", "PATH=\(bin)", Self.binary, "cleanup", "--kube-proxy", "--netns", ns.name])
            #expect(!r.succeeded)
            #expect(r.stdout.contains("deleted kube-proxy nftables tables: ip kube-proxy"), "\(r.stdout)")
            #expect(r.stderr.contains("iptables-save not found in PATH"), "\(r.stderr)")
            #expect(!r.stdout.contains("iptables chains"), "\(r.stdout)")
        }
    }

    @Test func invalidSourceIsReportedAndTheRestCompiles() throws {
        let r = try sluice(["compile", "--source", Self.root + "/Rulesets/invalid-objects",
                            "--config", Self.root + "/Rulesets/invalid-objects/kube-proxy-config.yaml"])
        #expect(r.succeeded)
        #expect(r.stderr.contains("error: "), "\(r.stderr)")
        #expect(r.stdout.contains("table ip sluice"))
    }

    func rulesetArgs(_ set: String) -> [String] {
        ["--source", Self.root + "/Rulesets/" + set, "--config", Self.root + "/Rulesets/\(set)/kube-proxy-config.yaml"]
    }

    @Test("--allow-external-ips=false: no rule for the externalIPs, one warning per service; default and =true keep them")
    func allowExternalIPsFlag() throws {
        let off = try sluice(["compile", "--allow-external-ips=false"] + rulesetArgs("external-ips"))
        #expect(off.succeeded, "\(off.stderr)")
        #expect(off.stdout.contains("table ip sluice") && off.stdout.contains("10.96.0.40"))
        #expect(!off.stdout.contains("192.168.10.50") && !off.stdout.contains("198.51.100.20"), "\(off.stdout)")
        #expect(off.stderr.contains("warning: \(Self.root)/Rulesets/external-ips/services.yaml: Service edge/legacy-gateway: "
            + "spec.externalIPs: 192.168.10.50, 198.51.100.20, 2001:db8::20 ignored: --allow-external-ips=false"), "\(off.stderr)")
        for on in [["--allow-external-ips", "true"], []] {
            let r = try sluice(["compile"] + on + rulesetArgs("external-ips"))
            #expect(r.succeeded && r.stdout.contains("192.168.10.50 . tcp . 80"), "\(r.stderr)")
            #expect(!r.stderr.contains("spec.externalIPs"), "\(r.stderr)")
        }
        let bad = try sluice(["compile", "--allow-external-ips", "maybe"] + rulesetArgs("external-ips"))
        #expect(!bad.succeeded && bad.stderr.contains("--allow-external-ips"), "\(bad.stderr)")
    }

    @Test("featureGates.AllowServiceExternalIPs: false in the --config file turns externalIPs off too")
    func allowExternalIPsConfigFileGate() throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-kp-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: config) }
        let text = try String(contentsOfFile: Self.root + "/Rulesets/external-ips/kube-proxy-config.yaml", encoding: .utf8)
        try (text + "featureGates: {AllowServiceExternalIPs: false}\n").write(toFile: config, atomically: true, encoding: .utf8)
        let r = try sluice(["compile", "--source", Self.root + "/Rulesets/external-ips", "--config", config])
        #expect(r.succeeded, "\(r.stderr)")
        #expect(!r.stdout.contains("192.168.10.50"), "\(r.stdout)")
        #expect(r.stderr.contains("ignored: featureGates.AllowServiceExternalIPs=false"), "\(r.stderr)")
    }

    @Test("--nodeport-addresses all matches every local address; localhost is an error naming the flag and the reason")
    func nodePortAddressKeywords() throws {
        let base = ["compile", "--source", Self.root + "/Rulesets/nodeport", "--hostname-override", "node-a"]
        let all = try sluice(base + ["--nodeport-addresses", "all"])
        #expect(all.succeeded && !all.stderr.contains("error:"), "\(all.stderr)")
        #expect(all.stdout.contains("fib daddr type local") && !all.stdout.contains("nodeport-ips"), "\(all.stdout)")
        let local = try sluice(base + ["--nodeport-addresses", "localhost,primary"])
        #expect(local.stderr.contains("error: --nodeport-addresses: \"localhost\" is not supported: "), "\(local.stderr)")
        #expect(local.stderr.contains("route_localnet"), "\(local.stderr)")
        #expect(local.stdout.contains("192.168.10.11") && !local.stdout.contains("127.0.0.1"), "\(local.stdout)")
    }

    @Test("--generate-completion-script: bash, zsh and fish scripts name the subcommands and complete fixed choices",
          arguments: ["bash", "zsh", "fish"])
    func completionScripts(_ shell: String) throws {
        let r = try sluice(["--generate-completion-script", shell])
        #expect(r.succeeded, "\(r.stderr)")
        // Option names without their dashes: fish spells them `-l 'source'`.
        for word in ["sluice", "compile", "diff", "explain", "apply", "cleanup", "run", "source", "allow-external-ips",
                     "nodeport-addresses", "ls /run/netns", "ls /sys/class/net"] {
            #expect(r.stdout.contains(word), "\(shell) completion lacks \(word)")
        }
        for values in [["primary", "all"], ["true", "false"], ["ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix"],
                       ["nft", "iptables"], ["text", "json"]] {
            #expect(r.stdout.contains(Self.choiceList(values, shell: shell)), "\(shell) completion does not offer \(values)")
        }
    }

    /// How each shell's generated script spells a fixed list of option values.
    static func choiceList(_ values: [String], shell: String) -> String {
        switch shell {
        case "bash": values.map { "'\($0)'" }.joined(separator: "$'\\n'")
        case "zsh": "(" + values.map { "'\($0)'" }.joined(separator: " ") + ")"
        default: "'" + values.joined(separator: " ") + "'"
        }
    }
}
