import Logging
import NIOConcurrencyHelpers
import SluiceModel

/// One HTTP server per healthCheckNodePort (LoadBalancer services with
/// `externalTrafficPolicy: Local`), as kube-proxy's `ServiceHealthServer`: 200 when the
/// service has local ready endpoints and the proxy is healthy, else 503, with kube-proxy's
/// headers and JSON body.
actor HealthCheckServers {
    let host: String
    let logger: Logger
    let health: ProxyHealth
    private let counts = NIOLockedValueBox<[ServiceName: Int]>([:])
    private var servers: [ServiceName: (port: UInt16, server: HTTPServer)] = [:]
    /// Ports that failed to bind, so the error is logged once.
    private var failed: [ServiceName: UInt16] = [:]

    init(host: String, health: ProxyHealth, logger: Logger) {
        self.host = host
        self.health = health
        self.logger = logger
    }

    /// Makes the set of servers match `targets`.
    func sync(_ targets: [ServiceName: HealthCheckTarget]) async {
        counts.withLockedValue { c in c = targets.mapValues(\.localEndpoints) }
        for (name, s) in servers where targets[name]?.port != s.port {
            await s.server.close()
            servers[name] = nil
            logger.info("stopped healthCheckNodePort server", metadata: ["service": "\(name)", "port": "\(s.port)"])
        }
        failed = failed.filter { targets[$0.key]?.port == $0.value }
        for (name, target) in targets.sorted(by: { $0.key < $1.key }) where servers[name] == nil && failed[name] == nil {
            let counts = self.counts, health = self.health
            do {
                let server = try await HTTPServer.start(host: host, port: Int(target.port)) { _, _ in
                    Self.reply(service: name, localEndpoints: counts.withLockedValue { $0[name] ?? 0 },
                               proxyHealthy: health.report().healthy)
                }
                servers[name] = (target.port, server)
                logger.info("started healthCheckNodePort server", metadata: ["service": "\(name)", "port": "\(target.port)"])
            } catch {
                failed[name] = target.port
                logger.error("cannot serve healthCheckNodePort", metadata: ["service": "\(name)", "port": "\(target.port)", "error": "\(error)"])
            }
        }
    }

    func closeAll() async {
        for s in servers.values { await s.server.close() }
        servers = [:]
    }

    var ports: [ServiceName: UInt16] { servers.mapValues(\.port) }

    static func reply(service: ServiceName, localEndpoints: Int, proxyHealthy: Bool) -> HTTPReply {
        let body = "{\"service\":{\"namespace\":\(jsonString(service.namespace)),\"name\":\(jsonString(service.name))},"
            + "\"localEndpoints\":\(localEndpoints),\"serviceProxyHealthy\":\(proxyHealthy)}"
        return HTTPReply(status: localEndpoints > 0 && proxyHealthy ? 200 : 503,
                         headers: [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff"),
                                   ("X-Load-Balancing-Endpoint-Weight", "\(localEndpoints)")],
                         body: body)
    }
}
