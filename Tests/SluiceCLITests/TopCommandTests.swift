import Foundation
import SluiceTestSupport
import Testing

extension CLITests {
    /// Three non-blocking connects from inside `ns` to the memcache ClusterIP: each SYN is
    /// DNATed and counted; nothing needs to answer.
    func connectThreeTimes(_ ns: NetworkNamespace) throws {
        _ = try ns.runChecked(["python3", "-c", """
            import socket
            for i in range(3):
                s = socket.socket(); s.setblocking(False); s.connect_ex(("10.96.0.180", 11211)); s.close()
            """])
    }

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
            try connectThreeTimes(ns)
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

extension CLITests {
    /// `sluice apply --traffic-counters` adds the `service-traffic` set (without the flag the
    /// kernel's table has none and `top` shows no traffic columns); `top --once` then shows
    /// the packets and bytes counted for the ClusterIP the namespace's own connection attempts
    /// went to (three SYNs, DNATed and counted in the output hook): totals with
    /// `--interval 0`, rates over an interval otherwise.
    @Test func topShowsTrafficCountersWhenTheTableHasThem() throws {
        try requireKernelTestEnvironment(tools: ["ip", "nft", "python3"])
        try withNetworkNamespace(label: "toptraffic") { ns in
            try giveNodeAddress(ns)
            let plain = try sluice(["apply", "--netns", ns.name] + loadBalancing)
            #expect(plain.succeeded, "\(plain.stderr)")
            #expect(!(try ns.runChecked(["nft", "list", "table", "ip", "sluice"]).stdout.contains("service-traffic")))
            let without = try sluice(["top", "--once", "--interval", "0", "--netns", ns.name] + loadBalancing)
            #expect(without.succeeded && !without.stdout.contains("PACKETS"), "\(without.stdout)\(without.stderr)")

            let applied = try sluice(["apply", "--traffic-counters", "--netns", ns.name] + loadBalancing)
            #expect(applied.succeeded, "\(applied.stderr)")
            let listed = try ns.runChecked(["nft", "list", "table", "ip", "sluice"]).stdout
            #expect(listed.contains("set service-traffic") && listed.contains("chain count-traffic"), "\(listed)")
            try connectThreeTimes(ns)
            let r = try sluice(["top", "--once", "--interval", "0", "--netns", ns.name] + loadBalancing)
            #expect(r.succeeded, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            let header = lines.first { $0.hasPrefix("SERVICE PORT") }?.split(separator: " ").suffix(2).map(String.init)
            #expect(header == ["PACKETS", "BYTES"], "\(r.stdout)")
            for prefix in ["store/cache:memcache (TCP)", "10.96.0.180:11211/TCP"] {
                let cells = lines.first { $0.hasPrefix(prefix) }?.split(separator: " ").suffix(3).compactMap { UInt64($0) } ?? []
                #expect(cells.count == 3 && cells[0] == 3 && cells[1] == 3 && cells[2] >= 3 * 40,
                        "\(prefix): 3 connections, 3 packets, at least 3 TCP SYNs of bytes:\n\(r.stdout)")
            }
            let endpointHeader = lines.first { $0.hasPrefix("ENDPOINT") }
            #expect(endpointHeader?.contains("PACKETS") == false, "endpoints have no traffic columns: \(r.stdout)")
            let rates = try sluice(["top", "--once", "--interval", "0.1", "--netns", ns.name] + loadBalancing)
            #expect(rates.succeeded && rates.stdout.contains("PKT/S") && rates.stdout.contains("BYTE/S"), "\(rates.stdout)\(rates.stderr)")
        }
    }
}
