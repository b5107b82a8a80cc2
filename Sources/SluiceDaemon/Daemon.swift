import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import SluiceCompiler
import SluiceIR
import SluiceModel
import SluiceNetlink

/// Everything `sluice run` needs, already parsed.
public struct DaemonConfiguration: Sendable {
    public var options: NodeOptions
    /// Ordered: an object present in several sources is taken from the first.
    public var sources: [any ObjectSource]
    /// Program this named network namespace (`/run/netns/NAME`) instead of the current one.
    /// The HTTP servers still bind in the current namespace.
    public var netns: String?
    /// `/healthz`, `/livez` (nil or empty: off).
    public var healthzBindAddress: String?
    /// `/metrics` (nil or empty: off).
    public var metricsBindAddress: String?
    /// Address the healthCheckNodePort servers listen on.
    public var healthCheckBindHost: String
    /// Drift check interval (kube-proxy's sync period); health timeout is twice this.
    public var syncPeriod: Duration
    /// Minimum time between two commits (0: commit at once).
    public var minSyncPeriod: Duration
    /// Delay before retrying a failed commit.
    public var retryPeriod: Duration
    /// Delete the tables when stopping (default: leave the rules in place, as kube-proxy).
    public var cleanupOnExit: Bool
    /// Fixed host interface addresses for CIDR entries of `--nodeport-addresses` (tests);
    /// nil: read them from the kernel (`followHostAddresses`), else from the Node.
    public var hostAddresses: [IPAddress]?
    /// Read the interface addresses of `netns` over rtnetlink and follow their changes
    /// (`HostAddressWatchService`), as kube-proxy does for CIDR entries of
    /// `--nodeport-addresses`. Only when such an entry is configured and `hostAddresses` is nil.
    public var followHostAddresses = true
    /// The `--config` file and the bytes the options were read from. As kube-proxy does, the
    /// daemon exits with an error when the file's content changes, so that its DaemonSet
    /// restarts it with the new configuration.
    public var configFile: (path: String, contents: Data)?
    /// How often the config file is checked.
    public var configCheckInterval: Duration = .seconds(2)
    /// The kernel seam (nil: netlink to the kernel of `netns`, elements held once, in the
    /// engine). Tests pass a `FakeDataplane`.
    public var dataplane: (@Sendable () throws -> any Dataplane)?
    /// Elements per transaction of a streamed cold start (each holds whole services).
    public var coldStartChunk = 50_000
    /// Repair someone else's write as soon as the kernel announces its commit
    /// (`NFNLGRP_NFTABLES`), not only at the next sync period. Only while the tables are
    /// not owned (`ownTables`): an owned table cannot be written by anyone else.
    public var watchCommits = true
    /// Create and adopt the tables owned by the daemon's netlink socket and persistent
    /// (`NFT_TABLE_F_OWNER | NFT_TABLE_F_PERSIST`, Linux 6.9+): the kernel refuses other
    /// writers, `nft flush ruleset` passes them by, and a restarted daemon claims them back
    /// with nothing flushed. On older kernels (or false) the daemon watches commits and
    /// repairs drift instead.
    public var ownTables = true
    /// A `/metrics` scrape reads the kernel's connection counters at most this often.
    public var connectionCountersInterval: Duration = .seconds(5)

    public init(options: NodeOptions, sources: [any ObjectSource], netns: String? = nil,
                healthzBindAddress: String? = "0.0.0.0:10256", metricsBindAddress: String? = "127.0.0.1:10249",
                healthCheckBindHost: String = "0.0.0.0", syncPeriod: Duration = .seconds(30),
                minSyncPeriod: Duration = .zero, retryPeriod: Duration? = nil, cleanupOnExit: Bool = false,
                hostAddresses: [IPAddress]? = nil) {
        self.options = options
        self.sources = sources
        self.netns = netns
        self.healthzBindAddress = healthzBindAddress
        self.metricsBindAddress = metricsBindAddress
        self.healthCheckBindHost = healthCheckBindHost
        self.syncPeriod = syncPeriod
        self.minSyncPeriod = minSyncPeriod
        self.retryPeriod = retryPeriod ?? min(syncPeriod, .seconds(5))
        self.cleanupOnExit = cleanupOnExit
        self.hostAddresses = hostAddresses
    }
}

/// The node daemon as a swift-service-lifecycle `Service` that runs a `ServiceGroup` of
/// small services: the HTTP servers, the sync loop, the drift check, the config watcher and
/// one service per object source. On graceful shutdown (SIGTERM/SIGINT through the outer
/// `ServiceGroup`) the sources stop first, the sync loop finishes the commit in flight and
/// the servers close; the rules are left in place unless `cleanupOnExit`. Cancellation
/// stops everything at once.
public final class Daemon: ServiceLifecycle.Service, Sendable {
    public let configuration: DaemonConfiguration
    public let logger: Logger
    public let metrics: DaemonMetrics
    public let health: ProxyHealth

    struct Runtime: Sendable {
        var loop: SyncLoop?
        var healthChecks: HealthCheckServers?
        var healthzPort: Int?
        var metricsPort: Int?
        var watchingCommits = false
    }
    private let runtime = NIOLockedValueBox(Runtime())

    public init(configuration: DaemonConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.metrics = DaemonMetrics()
        self.health = ProxyHealth(healthTimeout: configuration.syncPeriod * 2)
    }

    /// Bound ports (after `run` started the servers; useful with port 0).
    public var healthzPort: Int? { runtime.withLockedValue { $0.healthzPort } }
    public var metricsPort: Int? { runtime.withLockedValue { $0.metricsPort } }
    /// True once the daemon listens to nf_tables commit notifications (after the first sync).
    public var watchingCommits: Bool { runtime.withLockedValue { $0.watchingCommits } }

    /// Number of commits so far (0 until every source synced and the first commit is in).
    public func commits() async -> Int {
        guard let loop = runtime.withLockedValue({ $0.loop }) else { return 0 }
        return await loop.commits
    }

    /// Times the heap's free pages were handed back after a large batch (`SyncLoop.largeBatch`).
    public func heapTrims() async -> Int {
        guard let loop = runtime.withLockedValue({ $0.loop }) else { return 0 }
        return await loop.heapTrims
    }

    /// healthCheckNodePort servers currently listening.
    public func healthCheckPorts() async -> [ServiceName: UInt16] {
        guard let hc = runtime.withLockedValue({ $0.healthChecks }) else { return [:] }
        return await hc.ports
    }

    /// Hands the sync loop the host's interface addresses, as the address watch does (tests).
    public func receiveHostAddresses(_ addresses: [IPAddress]) {
        runtime.withLockedValue { $0.loop }?.receiveHostAddresses(addresses)
    }

    /// Runs a drift check now (tests; the daemon runs one every sync period).
    @discardableResult
    public func checkDrift() async -> Int {
        guard let loop = runtime.withLockedValue({ $0.loop }) else { return 0 }
        return await loop.checkDrift()
    }

    public func run() async throws {
        try await withTaskExecutorPreference(DaemonExecutor()) { try await self.runOnExecutor() }
    }

    private func runOnExecutor() async throws {
        let c = configuration
        let healthChecks = HealthCheckServers(host: c.healthCheckBindHost, health: health, logger: logger)
        let dataplane = try c.dataplane?() ?? kernelDataplane()
        let hostAddresses = c.hostAddresses ?? (watchesHostAddresses ? initialHostAddresses() : nil)
        let loop = SyncLoop(dataplane: dataplane, options: c.options, hostAddresses: hostAddresses, sources: c.sources.count,
                            logger: logger, metrics: metrics, health: health, healthChecks: healthChecks,
                            minSyncPeriod: c.minSyncPeriod, retryPeriod: c.retryPeriod, coldStartChunk: c.coldStartChunk,
                            plansFromPods: c.sources.contains { $0.deliversPods })
        runtime.withLockedValue { $0.loop = loop; $0.healthChecks = healthChecks }
        logger.info("starting", metadata: [
            "node": "\(c.options.nodeName)", "sources": "\(c.sources.map(\.name).joined(separator: " "))",
            "syncPeriod": "\(c.syncPeriod)", "minSyncPeriod": "\(c.minSyncPeriod)",
        ])
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: try services(loop: loop, healthChecks: healthChecks), logger: logger))
        do {
            try await group.run()
        } catch {
            logger.info("stopped; rules left in place")
            throw error
        }
        await finish(loop: loop, cleanup: c.cleanupOnExit)
    }

    /// The netlink applier of `netns`, elements held once (in the engine), owning its tables
    /// when configured and the kernel can.
    private func kernelDataplane() throws -> NftablesApplier {
        let applier = try NftablesApplier(namespace: configuration.netns, tracksElements: false)
        guard configuration.ownTables else { return applier }
        if try applier.takeOwnership() {
            logger.info("tables owned by this process (owner, persist): other writers are refused, no drift to watch")
        } else {
            logger.info("the kernel cannot own tables (Linux < 6.9): watching commits and repairing drift instead")
        }
        return applier
    }

    /// Whether the daemon follows the interface addresses of its namespace.
    private var watchesHostAddresses: Bool {
        configuration.followHostAddresses && configuration.hostAddresses == nil
            && configuration.options.nodePortAddressesNeedHostAddresses
    }

    /// The interface addresses before the first sync, so that it already uses them; nil
    /// (the Node's addresses) when they cannot be read.
    private func initialHostAddresses() -> [IPAddress]? {
        do {
            let addresses = hostIPAddresses(try InterfaceAddresses.dump(namespace: configuration.netns))
            logger.info("host addresses", metadata: ["addresses": "\(addresses.map(\.description).joined(separator: " "))"])
            return addresses
        } catch {
            logger.error("cannot read the host's addresses; NodePort addresses come from the Node", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// The daemon's services, in start order (graceful shutdown runs in reverse: sources stop
    /// first, the sync loop finishes its commit, the HTTP servers close last).
    private func services(loop: SyncLoop, healthChecks: HealthCheckServers) throws -> [ServiceGroupConfiguration.ServiceConfiguration] {
        let c = configuration
        var out: [ServiceGroupConfiguration.ServiceConfiguration] = []
        let health = self.health, metrics = self.metrics, runtime = self.runtime
        let connections = ConnectionMetrics(minInterval: c.connectionCountersInterval) { await (loop.connectionCounts(), loop.trafficCounts()) }
        if let s = try httpService(c.healthzBindAddress, flag: "--healthz-bind-address", what: "/healthz and /livez",
                                   bound: { p in runtime.withLockedValue { $0.healthzPort = p } },
                                   handler: { _, path in Self.healthReply(path: path, health: health, metrics: metrics) }) {
            out.append(.init(service: s, serviceName: "healthz"))
        }
        if let s = try httpService(c.metricsBindAddress, flag: "--metrics-bind-address", what: "/metrics",
                                   bound: { p in runtime.withLockedValue { $0.metricsPort = p } },
                                   handler: { _, path in
                                       Self.metricsReply(path: path, health: health, metrics: metrics, connections: connections, sources: c.sources)
                                   }) {
            out.append(.init(service: s, serviceName: "metrics"))
        }
        out.append(.init(service: SyncLoopService(loop: loop, healthChecks: healthChecks), serviceName: "sync-loop"))
        out.append(.init(service: DriftCheckService(loop: loop, period: c.syncPeriod), serviceName: "drift-check"))
        if c.watchCommits {
            out.append(.init(service: CommitWatchService(loop: loop, netns: c.netns, logger: logger,
                                                         listening: { runtime.withLockedValue { $0.watchingCommits = true } }),
                             successTerminationBehavior: .ignore, serviceName: "commit-watch"))
        }
        if watchesHostAddresses {
            out.append(.init(service: HostAddressWatchService(loop: loop, netns: c.netns, logger: logger),
                             successTerminationBehavior: .ignore, serviceName: "host-address-watch"))
        }
        if let (path, contents) = c.configFile {
            out.append(.init(service: ConfigWatcherService(path: path, contents: contents, interval: c.configCheckInterval, logger: logger),
                             successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup,
                             serviceName: "config-watcher"))
        }
        for (i, source) in c.sources.enumerated() {
            out.append(.init(service: SourceService(source: source, index: i, loop: loop, logger: logger),
                             successTerminationBehavior: .ignore, serviceName: "source-\(i)"))
        }
        return out
    }

    /// An HTTP endpoint bound to `HOST:PORT` from a bind-address flag (nil or empty: off).
    private func httpService(_ text: String?, flag: String, what: String, bound: @escaping @Sendable (Int) -> Void,
                             handler: @escaping @Sendable (String, String) -> HTTPReply) throws -> HTTPEndpointService? {
        guard let text, !text.isEmpty else { return nil }
        guard let (host, port) = parseBindAddress(text) else { throw DaemonError("\(flag) \(text): expected HOST:PORT") }
        return HTTPEndpointService(what: what, host: host, port: port, logger: logger, bound: bound, handler: handler)
    }

    /// After a graceful stop: delete the tables with `cleanupOnExit`, else leave them.
    private func finish(loop: SyncLoop, cleanup: Bool) async {
        guard cleanup else {
            logger.info("stopped; rules left in place")
            return
        }
        do {
            let deleted = try await loop.cleanup()
            logger.info("deleted Sluice's tables on exit", metadata: ["families": "\(deleted.map(\.rawValue))"])
        } catch {
            logger.error("cleanup on exit failed", metadata: ["error": "\(error)"])
        }
    }

    static func metricsReply(path: String, health: ProxyHealth, metrics: DaemonMetrics,
                             connections: ConnectionMetrics? = nil, sources: [any ObjectSource] = []) -> HTTPReply {
        switch path {
        case "/metrics":
            return HTTPReply(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                             body: metrics.exposition() + (connections?.exposition() ?? "") + sources.map { $0.metricsExposition() }.joined())
        case "/proxyMode":
            return HTTPReply(status: 200, headers: [("Content-Type", "text/plain; charset=utf-8")], body: "nftables")
        default:
            return healthReply(path: path, health: health, metrics: metrics)
        }
    }

    static func healthReply(path: String, health: ProxyHealth, metrics: DaemonMetrics) -> HTTPReply {
        switch path {
        case "/healthz", "/livez":
            let healthz = path == "/healthz"
            let (status, body) = health.response(healthz: healthz)
            (healthz ? metrics.healthzRequests : metrics.livezRequests)[status]?.increment()
            return HTTPReply(status: status, headers: [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")],
                             body: body)
        default:
            return .notFound
        }
    }
}

public struct DaemonError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
