import ArgumentParser

/// `sluice`: a Kubernetes service proxy that compiles Services and EndpointSlices into one
/// nftables ruleset and programs it through netlink.
@main
struct Sluice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Kubernetes service proxy on nftables, without eBPF.",
        discussion: """
        Sluice compiles a node's Services and EndpointSlices into one nftables table per IP \
        family (verdict-free data maps for dispatch, weighted endpoint slots, DNAT, masquerade, \
        source-range firewalls) with kube-proxy's packet semantics.

        Review a ruleset before it touches a node:
          sluice compile --source Rulesets/demo --config Rulesets/demo/kube-proxy-config.yaml
          sluice compile --source Rulesets/demo --config Rulesets/demo/kube-proxy-config.yaml --format iptables
          sluice diff --from old/ --to new/ --config kube-proxy-config.yaml
          sluice explain --source Rulesets/demo --config Rulesets/demo/kube-proxy-config.yaml --to 10.96.0.20:8080/tcp --from 10.244.1.9

        Node options use kube-proxy's flag names (--hostname-override, --cluster-cidr, \
        --nodeport-addresses, --masquerade-all, --config FILE with a KubeProxyConfiguration).
        """,
        version: SluiceVersion.string,
        subcommands: [Compile.self, Diff.self, Explain.self, Apply.self, Cleanup.self, Top.self, Demo.self, Run.self, Bench.self, DecodeBench.self, EngineBench.self]
    )
}

enum SluiceVersion {
    static let string = "0.1.0"
}
