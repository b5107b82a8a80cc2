import SluiceModel
import Testing

/// The host's interface addresses feed CIDR entries of `--nodeport-addresses`; a change of
/// them re-plans nothing.
@Suite("Host addresses in planning")
struct HostAddressPlanningTests {
    func ips(_ texts: String...) -> [IPAddress] { texts.map { IPAddress($0)! } }

    let options = NodeOptions(nodeName: "node-a", nodePortAddresses: [.cidr(CIDR("192.168.0.0/16")!), .primary],
                              nodeIPs: [IPAddress("10.0.0.1")!])

    func context(_ hosts: [IPAddress]?, options: NodeOptions? = nil) -> NodeContext {
        NodeContext.resolve(options: options ?? self.options, node: nil, serviceCIDRs: [], hostAddresses: hosts).0
    }

    @Test("only the NodePort IPs differ: narrow; to or from `all`, or anything else: not")
    func differsOnlyInNodePortAddresses() {
        let a = context(ips("192.168.1.1")), b = context(ips("192.168.1.2", "10.9.9.9"))
        #expect(a.context(for: IPFamily.ipv4)?.nodePortAddresses == .ips(ips("10.0.0.1", "192.168.1.1")))
        #expect(a.differsOnlyInNodePortAddresses(from: b) && b.differsOnlyInNodePortAddresses(from: a))
        #expect(a.differsOnlyInNodePortAddresses(from: a))
        var other = b
        other.families[0].masqueradeAll = true
        #expect(!a.differsOnlyInNodePortAddresses(from: other))
        var all = b
        all.families[0].nodePortAddresses = .all
        #expect(!a.differsOnlyInNodePortAddresses(from: all) && !all.differsOnlyInNodePortAddresses(from: a))
    }

    @Test("setHostAddresses: the next apply changes the context's NodePort IPs and re-plans nothing")
    func plannerNarrowChange() {
        var planner = IncrementalPlanner(options: options, hostAddresses: ips("192.168.1.1"))
        #expect(planner.apply([:]).full)
        planner.setHostAddresses(ips("192.168.1.1", "192.168.3.3"))
        let out = planner.apply([:])
        #expect(!out.full && out.nodePortAddressesChanged && out.replanned.isEmpty && out.ports.isEmpty)
        #expect(planner.nodeContext?.context(for: IPFamily.ipv4)?.nodePortAddresses == .ips(ips("10.0.0.1", "192.168.1.1", "192.168.3.3")))
        planner.setHostAddresses(ips("192.168.1.1", "192.168.3.3"))
        #expect(!planner.apply([:]).nodePortAddressesChanged)
        // nil: back to the Node's addresses and --node-ip (only 10.0.0.1, outside the CIDR).
        planner.setHostAddresses([IPAddress]?.none)
        #expect(planner.apply([:]).nodePortAddressesChanged)
        #expect(planner.nodeContext?.context(for: IPFamily.ipv4)?.nodePortAddresses == .ips(ips("10.0.0.1")))
    }

    @Test("only a non-match-all CIDR entry needs the host's addresses")
    func needsHostAddresses() {
        #expect(options.nodePortAddressesNeedHostAddresses)
        #expect(!NodeOptions(nodeName: "n").nodePortAddressesNeedHostAddresses)
        #expect(!NodeOptions(nodeName: "n", nodePortAddresses: [.cidr(CIDR("0.0.0.0/0")!), .primary]).nodePortAddressesNeedHostAddresses)
    }
}
