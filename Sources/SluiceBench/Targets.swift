import Foundation
import SluiceCompiler
import SluiceEmit
import SluiceIR
import SluiceModel
import SluiceNetlink

public typealias Changes = [ServicePortName: ServicePortPlan?]

/// Something the benchmark can program: Sluice or a baseline.
public protocol BenchTarget: AnyObject {
    /// Programs every service from an empty namespace. Returns seconds and details.
    func coldStart(_ plans: [ServicePortPlan], timeout: Double) throws -> (seconds: Double, detail: [String: Double])
    /// Applies one coalesced change; returns seconds from accepting it to the kernel's ACK.
    func update(_ changes: Changes, timeout: Double) throws -> Double
    /// Deferred work a daemon does outside the measured change (kube-proxy's stale-chain deletion).
    func maintenance(timeout: Double) throws
}

public struct TimeoutError: Error, CustomStringConvertible {
    public var what: String
    public var description: String { "timed out: \(what)" }
}

/// Sluice: the incremental compiler plus the netlink applier, in this process.
public final class SluiceTarget: BenchTarget {
    public private(set) var compiler: IncrementalCompiler
    public let applier: NftablesApplier
    /// Kernel (sendmsg→ACK) seconds of the last update.
    public private(set) var lastKernelSeconds: Double = 0

    public init(namespace: String, context: FamilyContext) throws {
        compiler = IncrementalCompiler(context: context)
        // The compiler's store is the one copy of the elements (see `tracksElements`).
        applier = try NftablesApplier(namespace: namespace, tracksElements: false)
    }

    /// A streamed cold start: the compiler emits one transaction per ~`maxElementsPerBatch`
    /// elements of whole service ports (the first creates the skeleton) and the applier
    /// commits each on its own thread while the next is compiled. Nothing table-sized is
    /// built besides the compiler's compact store.
    public func coldStart(_ plans: [ServicePortPlan], timeout: Double) throws -> (seconds: Double, detail: [String: Double]) {
        try coldStart(plans: plans, timeout: timeout)
    }

    public func coldStart<C: RandomAccessCollection<ServicePortPlan>>(plans: C, timeout: Double) throws
        -> (seconds: Double, detail: [String: Double]) where C.Index == Int {
        let t0 = now()
        var produced = 0.0
        let chunk = applier.maxElementsPerBatch
        var c = compiler
        compiler = IncrementalCompiler(context: c.context)
        let report = try applier.applyStreamed(tables: [(c.skeleton.family, c.skeleton.name)]) { send in
            try c.load(plans, maxElementsPerTransaction: chunk) { tx in
                produced += 1
                try send(tx)
            }
        }
        compiler = c
        let t1 = now()
        let kernel = report.kernelSeconds
        let build = report.buildSeconds
        return (t1 - t0, ["compileAndApplySeconds": t1 - t0, "kernelSeconds": kernel,
                          "netlinkBuildSeconds": build, "batches": Double(report.batches.count),
                          "bytes": Double(report.bytes),
                          "elements": Double(compiler.serviceElementCount + compiler.skeleton.elementCount)])
    }

    public func update(_ changes: Changes, timeout: Double) throws -> Double {
        let t0 = now()
        let tx = compiler.update(changes)
        let report = try applier.apply(transaction: tx)
        let t1 = now()
        lastKernelSeconds = report.kernelSeconds
        return t1 - t0
    }

    public func maintenance(timeout: Double) throws {}

    /// Turns the connection counters' jumps (`ct state new ct status dnat jump
    /// count-connections` in the filter base chains) off or on: the bench's comparison.
    public func setConnectionCounting(_ on: Bool) throws {
        let full = compiler.skeleton
        var off = full
        for i in off.chains.indices {
            off.chains[i].rules.removeAll { $0.statements.contains(.verdict(.jump(Layout.countConnections))) }
        }
        let (from, to) = on ? (off, full) : (full, off)
        try applier.apply(transaction: diff(Ruleset(tables: [from]), Ruleset(tables: [to])))
    }
}

/// Writes `text` to a fresh temporary file and returns its path.
func writeTemp(_ text: String, suffix: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("sb-\(randomTag(10)).\(suffix)").path
    guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
        throw BenchError("cannot write \(path)")
    }
    return path
}

/// kube-proxy nftables style: `nft -f` of the whole ruleset at cold start, `nft -f` of the
/// partial-sync transaction per update.
public final class KubeProxyNftTarget: BenchTarget {
    let ns: Netns
    var state: KubeProxyNftState
    /// True when the cold start timed out and the ruleset was loaded in chunks instead.
    public private(set) var loadedInChunks = false

    public init(ns: Netns, context: FamilyContext) {
        self.ns = ns
        state = KubeProxyNftState(context: context, plans: [])
    }

    func nft(_ script: String, timeout: Double) throws -> Double {
        let path = try writeTemp(script, suffix: "nft")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try ns.run(["nft", "-f", path], timeout: timeout)
        if r.timedOut { throw TimeoutError(what: "nft -f") }
        guard r.status == 0 else { throw BenchError("nft -f failed: \(r.stderr.prefix(1500))") }
        return r.seconds
    }

    public func coldStart(_ plans: [ServicePortPlan], timeout: Double) throws -> (seconds: Double, detail: [String: Double]) {
        let t0 = now()
        let script = KubeProxyNft.full(state.context, plans)
        let t1 = now()
        _ = try nft(script, timeout: max(0.1, timeout - (t1 - t0)))
        let t2 = now()
        state = KubeProxyNftState(context: state.context, plans: plans)
        return (t2 - t0, ["renderSeconds": t1 - t0, "nftSeconds": t2 - t1, "scriptBytes": Double(script.utf8.count)])
    }

    /// Untimed fallback after a cold-start timeout, as kube-proxy-libnftnl-from-swift.md §5.5
    /// advises for a full resync: setup, then every service's chains in transactions of
    /// `chunk` services while `service-ips` is still empty (nothing new is reachable, so each
    /// commit's validation stays trivial), then all map elements in one last transaction.
    public func loadChunked(_ plans: [ServicePortPlan], chunk: Int = 100, timeout: Double) throws -> Double {
        let t0 = now()
        _ = try? nft("delete table \(KubeProxyNft.table)\n", timeout: 60)
        _ = try nft(KubeProxyNft.setup(state.context), timeout: timeout)
        var i = 0
        while i < plans.count {
            let left = timeout - (now() - t0)
            if left <= 0 { throw TimeoutError(what: "chunked nft load") }
            var s = ""
            for p in plans[i..<min(i + chunk, plans.count)] { KubeProxyNft.writeChains(p, context: state.context, into: &s) }
            _ = try nft(s, timeout: left)
            i += chunk
        }
        var s = ""
        for p in plans { KubeProxyNft.writeElements(p, into: &s) }
        _ = try nft(s, timeout: max(1, timeout - (now() - t0)))
        state = KubeProxyNftState(context: state.context, plans: plans)
        loadedInChunks = true
        return now() - t0
    }

    public func update(_ changes: Changes, timeout: Double) throws -> Double {
        let t0 = now()
        let script = state.transaction(changes)
        _ = try nft(script, timeout: timeout)
        return now() - t0
    }

    public func maintenance(timeout: Double) throws {
        let s = state.staleDeletion()
        if !s.isEmpty { _ = try nft(s, timeout: timeout) }
    }
}

/// kube-proxy iptables style (iptables-nft here, `iptables-restore` as installed): the whole
/// script at cold start, `--noflush` with the changed services' chains per update (the
/// existing `SluiceEmit` iptables emitter; `KUBE-SERVICES` is rewritten whole, as upstream).
public final class KubeProxyIptablesTarget: BenchTarget {
    let ns: Netns
    var plan: FamilyPlan

    public init(ns: Netns, context: FamilyContext) {
        self.ns = ns
        plan = FamilyPlan(context: context, servicePorts: [])
    }

    func restore(_ script: String, noflush: Bool, timeout: Double) throws {
        let path = try writeTemp(script, suffix: "ipt")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try ns.run(["iptables-restore"] + (noflush ? ["--noflush"] : []) + [path], timeout: timeout)
        if r.timedOut { throw TimeoutError(what: "iptables-restore") }
        guard r.status == 0 else { throw BenchError("iptables-restore failed: \(r.stderr.prefix(1500))") }
    }

    public func coldStart(_ plans: [ServicePortPlan], timeout: Double) throws -> (seconds: Double, detail: [String: Double]) {
        let t0 = now()
        let p = FamilyPlan(context: plan.context, servicePorts: plans)
        let script = renderIptablesRestore(p)
        let t1 = now()
        try restore(script, noflush: false, timeout: max(0.1, timeout - (t1 - t0)))
        let t2 = now()
        plan = p
        return (t2 - t0, ["renderSeconds": t1 - t0, "restoreSeconds": t2 - t1, "scriptBytes": Double(script.utf8.count)])
    }

    func index(of name: ServicePortName) -> (Int, Bool) {
        var lo = 0, hi = plan.servicePorts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if plan.servicePorts[mid].name < name { lo = mid + 1 } else { hi = mid }
        }
        return (lo, lo < plan.servicePorts.count && plan.servicePorts[lo].name == name)
    }

    public func update(_ changes: Changes, timeout: Double) throws -> Double {
        let t0 = now()
        var oldPorts: [ServicePortPlan] = [], newPorts: [ServicePortPlan] = []
        for (name, new) in changes {
            let (i, found) = index(of: name)
            if found { oldPorts.append(plan.servicePorts[i]) }
            if let new {
                if found { plan.servicePorts[i] = new } else { plan.servicePorts.insert(new, at: i) }
                newPorts.append(new)
            } else if found {
                plan.servicePorts.remove(at: i)
            }
        }
        let ctx = plan.context
        let deleted = IptablesRestoreRenderer.natServiceChains(FamilyPlan(context: ctx, servicePorts: oldPorts))
            .subtracting(IptablesRestoreRenderer.natServiceChains(FamilyPlan(context: ctx, servicePorts: newPorts)))
        let script = renderIptablesRestore(plan, onlyServices: Set(changes.keys.map(\.service)), deletedChains: deleted)
        try restore(script, noflush: true, timeout: timeout)
        return now() - t0
    }

    public func maintenance(timeout: Double) throws {}
}
