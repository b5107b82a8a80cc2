import Foundation
import SluiceKube
import SluiceKubeFake
import SluiceModel
import SluiceTestSupport
import Testing


@Suite("faults mixed with writes", .timeLimit(.minutes(3)))
struct ChaosTests {
    @Test("server restart (all connections dropped): reconnect and resume")
    func restart() async throws {
        try await withFake { server in
            try server.create(service("a"))
            let client = try makeClient(server)
            var options = testOptions()
            options.minWatchDuration = .zero
            let h = Harness(client: client, resource: .services(), options: options)
            try await h.waitSynced()
            try await eventually { server.openWatchCount() == 1 }
            server.dropAllConnections()
            try server.update(service("a", port: 2))
            try server.create(service("b"))
            try await h.waitConverged(with: server)
            #expect(h.reflector.statistics.relists == 0)
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("random writes, selector flips and faults: the client ends equal to the server, nothing twice", arguments: Array(1...6) as [UInt64])
    func chaos(seed: UInt64) async throws {
        var rng = SeededGenerator(state: seed)
        try await withFake({ $0.historyWindow = 30 }) { server in
            let names = (0..<6).map { "svc-\($0)" }
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(),
                            options: testOptions(pageSize: 2, watchTimeout: 1...2, grace: .milliseconds(300)))
            try await h.waitSynced()
            for step in 0..<60 {
                let name = names.randomElement(using: &rng)!
                let exists = try server.objects(Service.self, fieldSelector: "metadata.name=\(name)").first != nil
                    || (try server.objects(Service.self, labelSelector: WellKnownKeys.headless, fieldSelector: "metadata.name=\(name)").first != nil)
                switch Int.random(in: 0..<100, using: &rng) {
                case 0..<35:
                    try server.apply(service(name, port: 1000 + step))
                case 35..<45 where exists:
                    try server.delete(Service.self, name: name)
                case 45..<55 where exists:
                    let flip = Bool.random(using: &rng)
                    try server.setLabels(Service.self, name: name, [WellKnownKeys.headless: flip ? "" : nil])
                case 55..<60: server.dropWatchConnections(partialEvent: Bool.random(using: &rng))
                case 60..<63: server.stallWatches()
                case 63..<66: server.compact()
                case 66..<69: server.failNextRequests(1, code: [429, 500, 503].randomElement(using: &rng)!, retryAfterSeconds: nil)
                case 69..<72: server.setWatchFraming(.split(parts: 3, pause: .milliseconds(2)))
                case 72..<75: server.setWatchFraming(.packed)
                case 75..<78: server.setWatchFraming(.chunkPerEvent)
                case 78..<80: server.sendBookmarks()
                case 80..<82: server.expireNextContinueTokens(1)
                default: break
                }
                if step % 10 == 9 { try await Task.sleep(for: .milliseconds(Int.random(in: 5..<60, using: &rng))) }
            }
            try await h.waitConverged(with: server, timeout: .seconds(30))
            expectNoDuplicateDeliveries(h.eventLog)
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }
}
