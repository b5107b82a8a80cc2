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
    /// Host interface addresses for CIDR entries of `--nodeport-addresses` (nil: from the Node).
    public var hostAddresses: [IPAddress]?
    /// The `--config` file and the bytes the options were read from. As kube-proxy does, the
    /// daemon exits with an error when the file's content changes, so that its DaemonSet
    /// restarts it with the new configuration.
    public var configFile: (path: String, contents: Data)?
    /// How often the config file is checked.
    public var configCheckInterval: Duration = .seconds(2)

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

/// The node daemon as a swift-service-lifecycle `Service`: HTTP servers, sources, the sync
/// loop and the periodic drift check. On graceful shutdown (SIGTERM/SIGINT through a
/// `ServiceGroup`) or cancellation it stops and leaves the rules in place, unless
/// `cleanupOnExit`.
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
        var configChanged = false
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

    /// Number of commits so far (0 until every source synced and the first commit is in).
    public func commits() async -> Int {
        guard let loop = runtime.withLockedValue({ $0.loop }) else { return 0 }
        return await loop.commits
    }

    /// healthCheckNodePort servers currently listening.
    public func healthCheckPorts() async -> [ServiceName: UInt16] {
        guard let hc = runtime.withLockedValue({ $0.healthChecks }) else { return [:] }
        return await hc.ports
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
        var servers: [HTTPServer] = []
        let healthChecks = HealthCheckServers(host: c.healthCheckBindHost, health: health, logger: logger)
        let loop = try SyncLoop(netns: c.netns, options: c.options, hostAddresses: c.hostAddresses, sources: c.sources.count,
                                logger: logger, metrics: metrics, health: health, healthChecks: healthChecks,
                                minSyncPeriod: c.minSyncPeriod, retryPeriod: c.retryPeriod)
        runtime.withLockedValue { $0.loop = loop; $0.healthChecks = healthChecks }
        do {
            if let text = c.healthzBindAddress, !text.isEmpty {
                guard let (host, port) = parseBindAddress(text) else { throw DaemonError("--healthz-bind-address \(text): expected HOST:PORT") }
                let health = self.health, metrics = self.metrics
                let s = try await HTTPServer.start(host: host, port: port) { _, path in
                    Self.healthReply(path: path, health: health, metrics: metrics)
                }
                servers.append(s)
                runtime.withLockedValue { $0.healthzPort = s.port }
                logger.info("serving /healthz and /livez", metadata: ["address": "\(host):\(s.port)"])
            }
            if let text = c.metricsBindAddress, !text.isEmpty {
                guard let (host, port) = parseBindAddress(text) else { throw DaemonError("--metrics-bind-address \(text): expected HOST:PORT") }
                let health = self.health, metrics = self.metrics
                let s = try await HTTPServer.start(host: host, port: port) { _, path in
                    switch path {
                    case "/metrics":
                        return HTTPReply(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                                         body: metrics.exposition())
                    case "/proxyMode":
                        return HTTPReply(status: 200, headers: [("Content-Type", "text/plain; charset=utf-8")], body: "nftables")
                    default:
                        return Self.healthReply(path: path, health: health, metrics: metrics)
                    }
                }
                servers.append(s)
                runtime.withLockedValue { $0.metricsPort = s.port }
                logger.info("serving /metrics", metadata: ["address": "\(host):\(s.port)"])
            }
            logger.info("starting", metadata: [
                "node": "\(c.options.nodeName)", "sources": "\(c.sources.map(\.name).joined(separator: " "))",
                "syncPeriod": "\(c.syncPeriod)", "minSyncPeriod": "\(c.minSyncPeriod)",
            ])
            await cancelWhenGracefulShutdown { [c, logger, runtime] in
                await withTaskGroup(of: Void.self) { group in
                    for (i, source) in c.sources.enumerated() {
                        group.addTask {
                            do {
                                try await source.run { delta in await loop.receive(source: i, delta) }
                            } catch is CancellationError {
                            } catch {
                                if !Task.isCancelled { logger.error("source stopped", metadata: ["source": "\(source.name)", "error": "\(error)"]) }
                            }
                        }
                    }
                    group.addTask { await loop.run() }
                    group.addTask {
                        while !Task.isCancelled {
                            do { try await Task.sleep(for: c.syncPeriod) } catch { break }
                            await loop.checkDrift()
                        }
                    }
                    group.addTask {
                        // Ends the wake stream on cancellation so `loop.run()` returns.
                        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                        await loop.stopWaking()
                    }
                    if let (path, contents) = c.configFile {
                        group.addTask { [runtime] in
                            while !Task.isCancelled {
                                do { try await Task.sleep(for: c.configCheckInterval) } catch { break }
                                guard FileManager.default.contents(atPath: path) != contents else { continue }
                                logger.error("the configuration file changed; exiting so that the new configuration is read on restart (kube-proxy does the same)",
                                             metadata: ["config": "\(path)"])
                                runtime.withLockedValue { $0.configChanged = true }
                                return
                            }
                        }
                    }
                    // The first task to end early is the config watcher: stop everything.
                    while await group.next() != nil {
                        if runtime.withLockedValue({ $0.configChanged }) { group.cancelAll() }
                    }
                }
            }
            if runtime.withLockedValue({ $0.configChanged }) {
                throw DaemonError("content of the configuration file \(c.configFile?.path ?? "") was updated")
            }
        } catch {
            await shutdown(servers: servers, healthChecks: healthChecks, loop: loop, cleanup: false)
            throw error
        }
        await shutdown(servers: servers, healthChecks: healthChecks, loop: loop, cleanup: c.cleanupOnExit)
    }

    private func shutdown(servers: [HTTPServer], healthChecks: HealthCheckServers, loop: SyncLoop, cleanup: Bool) async {
        for s in servers { await s.close() }
        await healthChecks.closeAll()
        if cleanup {
            do {
                let deleted = try await loop.cleanup()
                logger.info("deleted Sluice's tables on exit", metadata: ["families": "\(deleted.map(\.rawValue))"])
            } catch {
                logger.error("cleanup on exit failed", metadata: ["error": "\(error)"])
            }
        } else {
            logger.info("stopped; rules left in place")
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
