import Foundation
import SluiceIR
import SluiceNetlink
import SluiceTestSupport
import Testing

extension NetlinkKernelTests {
    /// Client namespace A (10.77.0.1) — veth — server namespace B (10.77.0.2). In A, Sluice
    /// programs `dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 1 map @m`
    /// in the nat output hook; a TCP connection from A to the virtual IP 10.96.7.7:80 must
    /// reach the server on 10.77.0.2:8080.
    @Test("a netlink-programmed dnat map rule really DNATs a TCP connection")
    func dnatSmoke() throws {
        try requireKernelTestEnvironment(tools: ["ip", "nft", "python3"])
        try withNetworkNamespace(label: "cli") { a in
            try withNetworkNamespace(label: "srv") { b in
                let suffix = String(a.name.suffix(6))
                let va = "va\(suffix)", vb = "vb\(suffix)"
                try SluiceTestSupport.runChecked(["ip", "link", "add", va, "netns", a.name, "type", "veth", "peer", "name", vb, "netns", b.name])
                try a.runChecked(["ip", "addr", "add", "10.77.0.1/24", "dev", va])
                try b.runChecked(["ip", "addr", "add", "10.77.0.2/24", "dev", vb])
                try a.runChecked(["ip", "link", "set", va, "up"])
                try b.runChecked(["ip", "link", "set", vb, "up"])
                try a.runChecked(["ip", "route", "add", "10.96.0.0/16", "dev", va])

                let key: [Expr] = [.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport), .numgenRandom(mod: 1)]
                let table = Table(family: .ip, name: "sluice", sets: [
                    SetDecl(name: "m", key: key, data: [.payload(.ipDaddr), .payload(.thDport)]),
                ], chains: [
                    Chain(name: "output", base: BaseChainSpec(type: .nat, hook: .output, priority: -100), rules: [
                        Rule([.match(.meta(.l4proto), .eq, .datum(.tcp)), .dnatMap(.ip, key: .concat(key), map: "m")]),
                    ]),
                ], elements: ["m": [[.ipv4(ip4("10.96.7.7")), .tcp, .port(80), .integer(0)]: [.ipv4(ip4("10.77.0.2")), .port(8080)]]])
                try NftablesApplier(namespace: a.name).apply(Ruleset(tables: [table]))

                // The server says "ready" once it listens; the client connects once, after that.
                let server = try LineProcess(["ip", "netns", "exec", b.name, "python3", "-c", """
                    import socket, sys
                    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("10.77.0.2", 8080)); s.listen(1); s.settimeout(120)
                    print("ready", flush=True)
                    c, addr = s.accept(); c.sendall(b"hello from " + addr[0].encode()); c.close()
                    """])
                defer { server.terminate() }
                try #require(server.readLine(timeout: 60) == "ready", "server did not start: \(server.stderrText)")
                let client = try a.run(["python3", "-c", """
                    import socket
                    c = socket.create_connection(("10.96.7.7", 80), timeout=10)
                    print(c.recv(100).decode())
                    """])
                #expect(client.stdout.contains("hello from 10.77.0.1"), "client got: \(client.stdout) \(client.stderr)")
            }
        }
    }
}
