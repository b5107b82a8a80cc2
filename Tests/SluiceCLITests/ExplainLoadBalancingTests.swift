import Foundation
import SluiceTestSupport
import Testing

extension CLITests {
    var loadBalancing: [String] {
        ["--source", Self.root + "/Rulesets/load-balancing", "--config", Self.root + "/Rulesets/load-balancing/kube-proxy-config.yaml"]
    }

    /// The `p=… → endpoint` lines of an `explain` run.
    func outcomes(_ r: CommandResult) -> [String] {
        r.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasPrefix("p=") }
    }

    /// `explain` on hash-selected services: the distribution over clients without `--from`,
    /// the one endpoint a given client (and port, for consistent-hash) gets with it.
    @Test func explainNamesTheOneEndpointOfAHashedClient() throws {
        let spread = try sluice(["explain"] + loadBalancing + ["--to", "10.96.0.180:11211/tcp"])
        #expect(spread.succeeded, "\(spread.stderr)")
        #expect(outcomes(spread).map { String($0.prefix(8)) } == ["p=0.5000", "p=0.2500", "p=0.2500"], "\(spread.stdout)")

        let client = try sluice(["explain"] + loadBalancing + ["--to", "10.96.0.180:11211/tcp", "--from", "203.0.113.7"])
        #expect(outcomes(client).count == 1 && outcomes(client)[0].hasPrefix("p=1.0000"), "\(client.stdout)")
        // Another port of the same client changes nothing for source-hash.
        let again = try sluice(["explain"] + loadBalancing + ["--to", "10.96.0.180:11211/tcp", "--from", "203.0.113.7", "--from-port", "999"])
        #expect(outcomes(again) == outcomes(client))

        let flows = try sluice(["explain"] + loadBalancing + ["--to", "192.168.10.11:30181/tcp", "--from", "203.0.113.7"])
        #expect(outcomes(flows).count == 3, "consistent-hash without --from-port spreads over the flows: \(flows.stdout)")
        let flow = try sluice(["explain"] + loadBalancing + ["--to", "192.168.10.11:30181/tcp", "--from", "203.0.113.7", "--from-port", "5555"])
        #expect(outcomes(flow).count == 1 && outcomes(flow)[0].hasPrefix("p=1.0000"), "\(flow.stdout)")
    }
}
