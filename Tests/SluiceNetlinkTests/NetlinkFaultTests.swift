import Foundation
import Glibc
import SluiceCompiler
import SluiceIR
import SluiceModel
@testable import SluiceNetlink
import SluiceTestSupport
import Testing

/// Services `names` (ClusterIP 10.96.0.<i+1>:80/TCP), each with `endpoints` endpoints
/// (10.244.<i>.<1…>:8080), as manifests: the objects a fault test programs.
func faultTestObjects(_ names: [String], endpoints: Int) -> ClusterObjects {
    var docs: [String] = []
    for (i, name) in names.enumerated() {
        docs.append("""
            apiVersion: v1
            kind: Service
            metadata: {name: \(name), namespace: default}
            spec:
              clusterIP: "10.96.0.\(i + 1)"
              ports:
              - {name: p, port: 80, targetPort: 8080, protocol: TCP}
            """)
        let ips = (1...endpoints).map { "- addresses: [\"10.244.\(i).\($0)\"]\n  conditions: {ready: true}" }
        docs.append("""
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: \(name)-1, namespace: default, labels: {kubernetes.io/service-name: \(name)}}
            addressType: IPv4
            ports:
            - {name: p, port: 8080, protocol: TCP}
            endpoints:
            \(ips.joined(separator: "\n"))
            """)
    }
    return ManifestLoader().parse(text: docs.joined(separator: "\n---\n") + "\n", file: "faults.yaml").objects
}

let faultTestOptions = NodeOptions(nodeName: "node-a", nodeIPs: [IPAddress("10.77.0.1")!])

/// A fresh compile of the objects (the batch pipeline).
func freshCompile(_ objects: ClusterObjects) -> CompileResult {
    Pipeline.compile(objects: objects, options: faultTestOptions)
}

/// Sluice's tables as the kernel holds them in `ns`, read back by a new applier (the
/// restart read-back), normalized against `desired`.
func kernelState(_ ns: NetworkNamespace, desired: Ruleset) throws -> Ruleset {
    let reader = try NftablesApplier(namespace: ns.name)
    try reader.adopt(tables: Family.allCases.map { ($0, "sluice") }, desired: desired)
    return reader.committed
}

/// Records an issue unless the kernel's tables in `ns` equal `want`; returns whether they do.
@discardableResult
func expectKernel(_ ns: NetworkNamespace, equals want: Ruleset, _ what: String,
                  sourceLocation: SourceLocation = #_sourceLocation) throws -> Bool {
    let tx = diff(try kernelState(ns, desired: want), want)
    #expect(tx.isEmpty, "\(what): kernel differs from the expected state by \(tx.operations.map(describe))",
            sourceLocation: sourceLocation)
    return tx.isEmpty
}

/// Netlink faults injected under the applier's socket (`NetlinkFaultInjector`), against the
/// kernel of a network namespace each test creates: after every fault each transaction is in
/// the kernel whole or not at all, the applier does not trust a state it cannot know, and a
/// retry converges on a fresh compile of the final objects.
@Suite("Netlink fault injection (kernel)", .serialized, .timeLimit(.minutes(3)))
struct NetlinkFaultTests {
    let before = freshCompile(faultTestObjects(["a", "b", "c"], endpoints: 2)).ruleset
    /// `a` scaled to 3, `b` removed, `d` added.
    let after = freshCompile(faultTestObjects(["a", "c", "d"], endpoints: 3)).ruleset
    /// A further change, for commits after recovery.
    let later = freshCompile(faultTestObjects(["a", "d", "e"], endpoints: 1)).ruleset

    /// An applier in a fresh namespace holding `before`, with `faults` attached from its next batch.
    func withApplier(_ label: String, faults plan: [Int: [NetlinkFaultInjector.Fault]] = [:], owned: Bool = false,
                     _ body: (NetworkNamespace, NftablesApplier, NetlinkFaultInjector) throws -> Void) throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: label) { ns in
            let applier = try NftablesApplier(namespace: ns.name)
            if owned { #expect(try applier.takeOwnership(), "the kernel cannot own tables") }
            try applier.apply(before)
            let injector = NetlinkFaultInjector(plan)
            applier.socket.faults = injector
            try body(ns, applier, injector)
        }
    }

    @Test("EINTR on send and on receive is retried: the commit goes through once")
    func eintrIsRetried() throws {
        try withApplier("fintr", faults: [1: [.sendError(EINTR, times: 2), .receiveError(EINTR, times: 2)]]) { ns, applier, faults in
            let report = try applier.apply(transaction: diff(before, after))
            #expect(report.batches.count == 1)
            #expect(faults.batchesSent == 1 && faults.injected == 4, "sent \(faults.batchesSent), injected \(faults.injected)")
            #expect(!applier.committedIsUncertain)
            #expect(diff(applier.committed, after).isEmpty)
            try expectKernel(ns, equals: after, "after interrupted send and receive")
        }
    }

    @Test("ENOBUFS on send: nothing reaches the kernel, the state is trusted, the retry converges")
    func enobufsOnSend() throws {
        try withApplier("fsnd", faults: [1: [.sendError(ENOBUFS)]]) { ns, applier, faults in
            let e = try #require(throws: NetlinkError.self) { try applier.apply(transaction: diff(before, after)) }
            #expect(e.kind == .system && e.errno == ENOBUFS && e.isRetriable && !e.isOutcomeUnknown, "\(e)")
            #expect(faults.injected == 1)
            try expectKernel(ns, equals: before, "after the failed send")
            #expect(!applier.committedIsUncertain && diff(applier.committed, before).isEmpty)
            try applier.apply(transaction: diff(before, after))
            try expectKernel(ns, equals: after, "after the retry")
        }
    }

    @Test("ENOBUFS on receive (verdict lost) after a batch that went in: the applier reads the kernel back, the retry converges",
          arguments: [ENOBUFS, EAGAIN])
    func lostVerdictOfAppliedBatch(_ errno: Int32) throws {
        try withApplier("frcv", faults: [1: [.receiveError(errno)]]) { ns, applier, faults in
            let e = try #require(throws: NetlinkError.self) { try applier.apply(transaction: diff(before, after)) }
            #expect(e.isOutcomeUnknown && e.errno == errno && e.isRetriable, "\(e)")
            #expect(e.description.contains("verdict was lost"), "a clear error: \(e)")
            #expect(faults.injected == 1)
            // The kernel took the batch whole; the applier read that back instead of guessing.
            try expectKernel(ns, equals: after, "the batch whose verdict was lost")
            #expect(!applier.committedIsUncertain)
            #expect(diff(applier.committed, after).isEmpty, "committed is what the kernel holds")
            // The retry (a full apply) has nothing left to do; a later change goes through,
            // on the same socket, past any late reply still queued.
            #expect(try applier.apply(after).isNoOp)
            try applier.apply(later)
            try expectKernel(ns, equals: later, "a commit after the lost verdict")
        }
    }

    @Test("a refused batch whose verdict is also lost: the applier reads back that nothing went in")
    func lostVerdictOfRefusedBatch() throws {
        try withApplier("frefl", faults: [1: [.refuse, .receiveError(ENOBUFS)]]) { ns, applier, _ in
            let e = try #require(throws: NetlinkError.self) { try applier.apply(transaction: diff(before, after)) }
            #expect(e.isOutcomeUnknown, "\(e)")
            try expectKernel(ns, equals: before, "the refused batch left nothing")
            #expect(diff(applier.committed, before).isEmpty, "committed was read back, not assumed")
            try applier.apply(after)
            try expectKernel(ns, equals: after, "after the retry")
        }
    }

    @Test("receive fails and the read-back fails too: committed stays uncertain until the next commit reads the kernel")
    func uncertainUntilReadBack() throws {
        // Batch 1 loses its verdict; the read-back's own receives (a GETGEN) fail as well.
        try withApplier("func", faults: [1: [.receiveError(EAGAIN, times: 2)]]) { ns, applier, _ in
            #expect(throws: NetlinkError.self) { try applier.apply(transaction: diff(before, after)) }
            #expect(applier.committedIsUncertain, "the read-back failed, so committed is not trusted")
            try expectKernel(ns, equals: after, "the batch went in")
            // The next full apply reads the kernel first and finds nothing to do.
            #expect(try applier.apply(after).isNoOp)
            #expect(!applier.committedIsUncertain)
        }
    }

    @Test("ERESTART: a foreign commit between the applier's read and its batch; classified, nothing went in, the retry converges")
    func generationChanged() throws {
        try requireKernelTestEnvironment()
        try withNetworkNamespace(label: "fgen") { ns in
            let applier = try NftablesApplier(namespace: ns.name)
            try applier.apply(before)
            let name = ns.name
            applier.socket.faults = NetlinkFaultInjector([1: [.beforeSend {
                _ = try? NetlinkSocket(namespace: name).commit([.addTable(.ip, "foreign", comment: nil)])
            }]])
            let e = try #require(throws: NetlinkError.self) { try applier.apply(transaction: diff(before, after)) }
            #expect(e.isGenerationChanged && e.errno == ERESTART && e.isRetriable && !e.isOutcomeUnknown, "\(e)")
            try expectKernel(ns, equals: before, "the refused batch left nothing")
            #expect(try ns.runChecked(["nft", "list", "tables"]).stdout.contains("foreign"), "the foreign commit happened")
            // The applier re-read its tables at the new generation: the same transaction now goes in.
            try applier.apply(transaction: diff(before, after))
            try expectKernel(ns, equals: after, "after the retry")
        }
    }

    @Test("socket closed mid-batch (owned table): the applier reopens, claims the orphan, and converges")
    func socketClosedMidBatch() throws {
        try withApplier("fcls", faults: [1: [.closeAfterSend]], owned: true) { ns, applier, faults in
            let old = applier.socket
            let e = try #require(throws: NetlinkError.self) { try applier.apply(transaction: diff(before, after)) }
            #expect(e.isOutcomeUnknown && e.isSocketClosed && e.isRetriable, "\(e)")
            #expect(applier.socket !== old, "a new socket replaced the closed one")
            #expect(!applier.committedIsUncertain)
            try expectKernel(ns, equals: after, "the batch sent before the close went in whole")
            // The new socket owns the table again: other writers are refused, we are not.
            let foreign = try ns.run(["nft", "add", "element", "ip", "sluice", "cluster-ips", "{ 10.96.9.9 }"])
            #expect(!foreign.succeeded, "the orphan was claimed: \(foreign)")
            try applier.apply(later)
            try expectKernel(ns, equals: later, "a commit on the new socket")
            #expect(faults.batchesSent >= 3, "claim and later batches went through the injector: \(faults.batchesSent)")
        }
    }

    /// The ways batch 3 of a streamed or chunked cold start fails.
    enum MidStreamFault: String, CaseIterable, CustomTestStringConvertible {
        case refused, sendFailed, socketClosed, verdictLost

        var fault: NetlinkFaultInjector.Fault {
            switch self {
            case .refused: return .refuse
            case .sendFailed: return .sendError(ENOBUFS)
            case .socketClosed: return .closeAfterSend
            case .verdictLost: return .receiveError(ENOBUFS)
            }
        }

        /// Whether the kernel holds the failing batch (it was sent and accepted; only its
        /// verdict was lost).
        var failingBatchWentIn: Bool { self == .socketClosed || self == .verdictLost }
        var testDescription: String { rawValue }
    }

    static let failingBatch = 3

    @Test("streamed cold start failing at batch 3: earlier transactions whole in the kernel, later ones not at all; the retry converges",
          arguments: MidStreamFault.allCases)
    func streamedColdStartFault(_ failure: MidStreamFault) throws {
        try requireKernelTestEnvironment()
        let objects = faultTestObjects((0..<8).map { "svc\($0)" }, endpoints: 3)
        let compiled = freshCompile(objects)
        let plan = try #require(compiled.plan.families.first)
        try withNetworkNamespace(label: "fstr") { ns in
            let applier = try NftablesApplier(namespace: ns.name, tracksElements: false)
            let faults = NetlinkFaultInjector([Self.failingBatch: [failure.fault]])
            applier.socket.faults = faults
            var compiler = IncrementalCompiler(context: plan.context, keepsPlans: false)
            var emitted: [Transaction] = []
            var thrown: Error?
            do {
                try applier.applyStreamed(tables: [(.ip, "sluice")]) { send in
                    try compiler.load(plan.servicePorts, maxElementsPerTransaction: 10) { tx in
                        emitted.append(tx)
                        try send(tx)
                    }
                }
            } catch {
                thrown = error
            }
            let e = try #require(thrown as? NetlinkError, "the stream must fail at batch \(Self.failingBatch)")
            #expect(emitted.count > Self.failingBatch, "the cold start has more batches than the failing one: \(emitted.count)")
            #expect(faults.injected >= 1)
            // Exactly the transactions before the failing one (and it, if it was accepted) are in.
            let inKernel = Self.failingBatch - (failure.failingBatchWentIn ? 0 : 1)
            var expected = Ruleset()
            for tx in emitted.prefix(inKernel) { expected.apply(tx) }
            try expectKernel(ns, equals: expected, "after \(failure) at batch \(Self.failingBatch) (\(e))")
            #expect(!applier.committedIsUncertain)
            #expect(diff(applier.committed, expected.withoutElements).isEmpty, "committed is the kernel's structure")
            // The retry, as the daemon's: load the compiler whole and reconcile the table.
            compiler.load(plan.servicePorts)
            try applier.reconcile(compiler.skeleton, elements: compiler.serviceElements)
            try expectKernel(ns, equals: compiled.ruleset, "after the retry")
        }
    }

    @Test("chunked apply failing at batch 3: the chunks before it are in whole, the rest not at all; the retry converges",
          arguments: MidStreamFault.allCases)
    func chunkedApplyFault(_ failure: MidStreamFault) throws {
        try requireKernelTestEnvironment()
        let full = freshCompile(faultTestObjects((0..<8).map { "svc\($0)" }, endpoints: 3)).ruleset
        try withNetworkNamespace(label: "fchk") { ns in
            let applier = try NftablesApplier(namespace: ns.name, maxElementsPerBatch: 10)
            let chunks = applier.chunked(diff(Ruleset(), full), desired: full).filter { !$0.isEmpty }
            #expect(chunks.count > Self.failingBatch, "chunks: \(chunks.count)")
            applier.socket.faults = NetlinkFaultInjector([Self.failingBatch: [failure.fault]])
            #expect(throws: NetlinkError.self) { try applier.apply(full) }
            var expected = Ruleset()
            for ops in chunks.prefix(Self.failingBatch - (failure.failingBatchWentIn ? 0 : 1)) { expected.apply(Transaction(ops)) }
            try expectKernel(ns, equals: expected, "after \(failure) at batch \(Self.failingBatch)")
            #expect(diff(applier.committed, expected).isEmpty, "committed is what the kernel holds")
            try applier.apply(full)
            try expectKernel(ns, equals: full, "after the retry")
        }
    }
}

