import Foundation
import SluiceCompiler
import SluiceIR
import SluiceKubeFake
import SluiceModel
import SluiceNetlink

/// The kernel's Sluice tables in the current network namespace against a fresh batch
/// compile (`Pipeline`) of the fake API server's objects, with the daemon's node flags.
struct KernelComparison {
    /// What the check found.
    struct Outcome {
        var equal: Bool
        /// Objects (elements one by one) the kernel would need changed to equal the compile.
        var differences: Int
    }

    let desired: Ruleset

    /// Compiles the server's current objects.
    init(server: FakeAPIServer) throws {
        let objects = ClusterObjects(services: try server.objects(Service.self), endpointSlices: try server.objects(EndpointSlice.self),
                                     nodes: try server.objects(Node.self), serviceCIDRs: try server.objects(ServiceCIDR.self))
        desired = Pipeline.compile(objects: objects, options: Self.nodeOptions()).ruleset
    }

    /// The node options the daemon runs with (`DaemonWorker.nodeFlags`).
    static func nodeOptions() -> NodeOptions { NodeOptions.load(flags: DaemonWorker.nodeFlags).0 }

    /// Reads the kernel's tables back (read only: the applier claims nothing) and diffs.
    func check() throws -> Outcome {
        let applier = try NftablesApplier(namespace: nil)
        try applier.adopt(tables: Family.allCases.map { ($0, Layout.tableName) }, desired: desired)
        let tx = diff(applier.committed, desired)
        return Outcome(equal: tx.isEmpty, differences: tx.objectCount)
    }

    /// Checks every `interval` seconds until the kernel equals the compile or `timeout`
    /// passes; the last outcome and the seconds it took.
    func waitEqual(timeout: Double, interval: Double = 2) throws -> (Outcome, seconds: Double) {
        let start = CommitMonitor.now()
        while true {
            let outcome = try check()
            let elapsed = CommitMonitor.now() - start
            if outcome.equal || elapsed >= timeout { return (outcome, elapsed) }
            Thread.sleep(forTimeInterval: min(interval, timeout - elapsed))
        }
    }
}
