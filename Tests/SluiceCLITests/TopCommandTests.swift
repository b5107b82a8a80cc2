import Foundation
import SluiceTestSupport
import Testing

extension CLITests {
    /// Makes `ns` look like the golden sets' node: 192.168.10.11 on a veth, a default route
    /// (to nowhere: nothing in it is connected to another namespace).
    func giveNodeAddress(_ ns: NetworkNamespace) throws {
        for cmd in [["ip", "link", "set", "lo", "up"], ["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                    ["ip", "addr", "add", "192.168.10.11/24", "dev", "v0"], ["ip", "link", "set", "v0", "up"],
                    ["ip", "link", "set", "v1", "up"], ["ip", "route", "add", "default", "via", "192.168.10.1"]] {
            _ = try ns.runChecked(cmd)
        }
    }

    /// `sluice top --once` reads the kernel's counters in a namespace the test programs with
    /// `sluice apply`: three connection attempts from inside it to a ClusterIP (DNATed in
    /// the output hook and counted there, whether or not an endpoint answers) show up under
    /// the Service's name.
    @Test func topShowsCountedConnectionsByService() throws {
        try requireKernelTestEnvironment(tools: ["ip", "nft", "python3"])
        try withNetworkNamespace(label: "top") { ns in
            try giveNodeAddress(ns)
            let applied = try sluice(["apply", "--netns", ns.name] + loadBalancing)
            #expect(applied.succeeded, "\(applied.stderr)")
            let before = try sluice(["top", "--once", "--interval", "0", "--netns", ns.name] + loadBalancing)
            #expect(before.succeeded && before.stdout.contains("(no connections counted)"), "\(before.stdout)\(before.stderr)")
            // Non-blocking connects: the SYN is DNATed and counted; nothing needs to answer.
            _ = try ns.runChecked(["python3", "-c", """
                import socket
                for i in range(3):
                    s = socket.socket(); s.setblocking(False); s.connect_ex(("10.96.0.180", 11211)); s.close()
                """])
            let r = try sluice(["top", "--once", "--interval", "0", "--netns", ns.name] + loadBalancing)
            #expect(r.succeeded, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            let service = lines.first { $0.hasPrefix("store/cache:memcache (TCP)") }
            #expect(service?.split(separator: " ").last == "3", "\(r.stdout)")
            let address = lines.first { $0.hasPrefix("10.96.0.180:11211/TCP") }
            #expect(address?.split(separator: " ").last == "3", "\(r.stdout)")
            let endpoints = lines.filter { $0.hasPrefix("10.244.") }.compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }
            #expect(endpoints.reduce(0, +) == 3, "every connection counted once at its endpoint: \(r.stdout)")
        }
    }
}
