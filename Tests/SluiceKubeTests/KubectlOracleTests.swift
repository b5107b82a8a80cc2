import Foundation
import SluiceKube
import SluiceKubeFake
import SluiceModel
import Testing

/// kubectl (client-go) as an oracle for the fake: if real client-go lists and watches it
/// correctly, the fake's framing and semantics are honest. Skipped where kubectl is absent.
let kubectlPath: String? = ["/usr/bin/kubectl", "/usr/local/bin/kubectl"].first { FileManager.default.isExecutableFile(atPath: $0) }

@Suite("kubectl (client-go) against the fake", .enabled(if: kubectlPath != nil, "kubectl not installed"), .timeLimit(.minutes(3)))
struct KubectlOracleTests {
    func kubectl(_ server: FakeAPIServer, _ dir: TempDir, _ args: [String], stdout: FileHandle? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: kubectlPath!)
        p.arguments = ["--server", server.url, "--cache-dir", dir.path + "/cache", "--request-timeout", "0"] + args
        p.environment = ["HOME": dir.path, "PATH": "/usr/bin:/bin"]
        p.standardOutput = stdout
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Ends our kubectl child without blocking a cooperative thread: SIGTERM, then SIGKILL.
    func stop(_ p: Process) async {
        guard p.isRunning else { return }
        p.terminate()
        for _ in 0..<200 where p.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        for _ in 0..<200 where p.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }

    @Test("kubectl get -o json lists what the fake holds")
    func list() async throws {
        try await withFake { server in
            for i in 0..<3 { try server.create(service("svc-\(i)")) }
            let dir = try TempDir()
            let out = dir.url.appendingPathComponent("out.json")
            _ = FileManager.default.createFile(atPath: out.path, contents: nil)
            let p = try kubectl(server, dir, ["get", "services", "-A", "-o", "json", "--chunk-size", "2"],
                                stdout: try FileHandle(forWritingTo: out))
            defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
            try await eventually { !p.isRunning }
            #expect(p.terminationStatus == 0)
            struct List: Decodable { var items: [Service] }
            let list = try JSONDecoder().decode(List.self, from: Data(contentsOf: out))
            #expect(list.items.map(\.metadata.name) == ["svc-0", "svc-1", "svc-2"])
            // client-go's pager followed our continue token.
            #expect(server.requests.filter { $0.path == "/api/v1/services" && $0.query["continue"] != nil }.count == 1)
        }
    }

    @Test("kubectl get -w --output-watch-events decodes the fake's split and packed watch streams")
    func watch() async throws {
        try await withFake { server in
            try server.create(service("a"))
            let dir = try TempDir()
            let out = dir.url.appendingPathComponent("watch.json")
            _ = FileManager.default.createFile(atPath: out.path, contents: nil)
            let p = try kubectl(server, dir, ["get", "services", "-A", "-w", "--output-watch-events", "-o", "json"],
                                stdout: try FileHandle(forWritingTo: out))
            defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
            try await eventually { server.openWatchCount() == 1 }
            server.setWatchFraming(.split(parts: 5, pause: .milliseconds(5)))
            try server.update(service("a", port: 81))
            server.setWatchFraming(.packed)
            server.batch {
                _ = try? server.create(service("b"))
                _ = try? server.delete(Service.self, name: "a")
            }
            try server.setLabels(Service.self, name: "b", [WellKnownKeys.headless: ""])
            // Five complete events written (a count of `"type"` alone would also match an event
            // whose printing is still under way).
            try await eventually {
                var splitter = JSONStreamSplitter()
                return ((try? splitter.feed(Array((try? Data(contentsOf: out)) ?? Data())))?.count ?? 0) >= 5
            }
            await stop(p)
            // kubectl prints one pretty-printed JSON object per event: split them like a watch stream.
            var splitter = JSONStreamSplitter()
            let values = try splitter.feed(Array(try Data(contentsOf: out)))
            struct Event: Decodable { var type: String; var object: Service }
            let events = try values.map { try JSONDecoder().decode(Event.self, from: Data($0)) }
            #expect(events.map { "\($0.type) \($0.object.metadata.name ?? "")" } ==
                    ["ADDED a", "MODIFIED a", "ADDED b", "DELETED a", "MODIFIED b"])
            #expect(events[1].object.spec.ports?.first?.port == 81)
        }
    }
}
