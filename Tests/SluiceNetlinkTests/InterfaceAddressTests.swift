import Foundation
import SluiceNetlink
import SluiceTestSupport
import Testing

/// rtnetlink address dumps and notifications against a test namespace with a known
/// address set (`ip addr add`), never the root namespace's.
@Suite("Interface addresses (rtnetlink)", .serialized, .timeLimit(.minutes(2)))
struct InterfaceAddressTests {
    /// A namespace with a veth interface (its peer in the same namespace) holding `10.33.0.1/24` (label `d0:a`),
    /// `10.33.1.7/32` and `fd33::5/64`, loopback up.
    func withAddresses(_ body: (NetworkNamespace, String) throws -> Void) throws {
        try requireKernelTestEnvironment(tools: ["ip"])
        try withNetworkNamespace(label: "addr") { ns in
            let dev = "d\(ns.name.suffix(6))"
            try ns.runChecked(["ip", "link", "add", dev, "type", "veth", "peer", "name", "p\(ns.name.suffix(6))"])
            try ns.runChecked(["ip", "addr", "add", "10.33.0.1/24", "dev", dev, "label", "\(dev):a"])
            try ns.runChecked(["ip", "addr", "add", "10.33.1.7/32", "dev", dev])
            try ns.runChecked(["ip", "addr", "add", "fd33::5/64", "dev", dev, "nodad"])
            try ns.runChecked(["ip", "link", "set", dev, "up"])
            try ns.runChecked(["ip", "link", "set", "p\(ns.name.suffix(6))", "up"])   // carrier: DAD runs
            try body(ns, dev)
        }
    }

    @Test("a dump of a namespace lists exactly its addresses, with prefix, interface and label")
    func dumpsKnownSet() throws {
        try withAddresses { ns, dev in
            let addresses = try InterfaceAddresses.dump(namespace: ns.name)
            let usable = Set(addresses.filter(\.isUsable).map(\.address))
            #expect(usable.isSuperset(of: ["127.0.0.1", "::1", "10.33.0.1", "10.33.1.7", "fd33::5"]), "\(addresses)")
            // Everything else is an IPv6 link-local address of the veth pair.
            #expect(usable.subtracting(["127.0.0.1", "::1", "10.33.0.1", "10.33.1.7", "fd33::5"]).allSatisfy { $0.hasPrefix("fe80:") })
            let a = try #require(addresses.first { $0.address == "10.33.0.1" })
            #expect(a.prefixLength == 24 && a.label == "\(dev):a")
            let ifindex = try ns.runChecked(["cat", "/sys/class/net/\(dev)/ifindex"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect("\(a.interfaceIndex)" == ifindex)
            #expect(addresses.first { $0.address == "fd33::5" }?.prefixLength == 64)
        }
    }

    @Test("the monitor reports an address added and one removed; a re-read follows")
    func monitorFollowsChanges() throws {
        try withAddresses { ns, dev in
            let monitor = try AddressMonitor(namespace: ns.name)
            #expect(try monitor.addresses().contains { $0.address == "10.33.1.7" })
            #expect(try !monitor.waitForChange(timeout: 0.1))
            try ns.runChecked(["ip", "addr", "add", "10.33.2.9/32", "dev", dev])
            #expect(try waitForChange(monitor))
            #expect(try monitor.addresses().contains { $0.address == "10.33.2.9" })
            try ns.runChecked(["ip", "addr", "del", "10.33.1.7/32", "dev", dev])
            #expect(try waitForChange(monitor))
            #expect(try !monitor.addresses().contains { $0.address == "10.33.1.7" })
        }
    }

    /// Waits (up to 10 s) for the monitor to report a change.
    func waitForChange(_ monitor: AddressMonitor) throws -> Bool {
        for _ in 0..<20 where try monitor.waitForChange(timeout: 0.5) { return true }
        return false
    }

    @Test("an IPv6 address in duplicate address detection is reported tentative, then usable")
    func tentativeThenUsable() throws {
        try withAddresses { ns, dev in
            let monitor = try AddressMonitor(namespace: ns.name)
            try ns.runChecked(["ip", "addr", "add", "fd33::9/64", "dev", dev])
            let first = try #require(try monitor.addresses().first { $0.address == "fd33::9" })
            #expect(first.isTentative && !first.isUsable)
            // DAD ends about a second later with a notification (generous deadline, no fixed sleep).
            var usable = false
            for _ in 0..<40 where !usable {
                _ = try monitor.waitForChange(timeout: 0.5)
                usable = try monitor.addresses().first { $0.address == "fd33::9" }?.isUsable ?? false
            }
            #expect(usable)
        }
    }

    @Test("tentative and DAD-failed addresses are not usable")
    func flags() {
        #expect(InterfaceAddress(interfaceIndex: 1, address: "fd00::1", prefixLength: 64).isUsable)
        #expect(!InterfaceAddress(interfaceIndex: 1, address: "fd00::1", prefixLength: 64, flags: 0x40).isUsable)
        #expect(!InterfaceAddress(interfaceIndex: 1, address: "fd00::1", prefixLength: 64, flags: 0x08).isUsable)
    }

    @Test("a namespace that does not exist is a typed error")
    func missingNamespace() {
        #expect(throws: NetlinkError.self) { try InterfaceAddresses.dump(namespace: "sl-no-such-namespace-\(UUID().uuidString.prefix(8))") }
    }
}
