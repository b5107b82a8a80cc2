import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SluiceCompiler
import SluiceDaemon
import SluiceIR
import SluiceKube
import SluiceModel
import SluiceNetlink

enum LoggingFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the node daemon in place of kube-proxy (nftables mode).",
        discussion: """
        Watches its sources, keeps `table ip sluice` / `table ip6 sluice` in step with them and \
        serves /healthz, /livez (--healthz-bind-address), /metrics (--metrics-bind-address) and \
        one healthCheckNodePort server per LoadBalancer service with externalTrafficPolicy Local.

        Sources: the API server (list/watch, in-cluster or --kubeconfig/--master), and/or \
        --source DIR (repeatable) watching manifest files; editing a file reaches the kernel \
        within a second. With --source and neither --kubeconfig nor --master, only the \
        manifests are used (standalone); otherwise the API server comes first and the manifests \
        add objects it does not have.

        On start the existing tables are adopted and reconciled without flushing. Every sync \
        period the generation id is checked; tables changed by someone else are repaired. \
        SIGTERM/SIGINT stop the daemon and leave the rules in place (--cleanup-on-exit deletes \
        them); --cleanup deletes them and exits.

        Accepts kube-proxy's flags and --config KubeProxyConfiguration; flags that have no \
        meaning here (ipvs, conntrack sysctls, …) are accepted with a warning.
        """)

    @Option(name: .customLong("source"), help: "A manifest file or directory to watch (repeatable).", completion: .file())
    var sources: [String] = []

    @OptionGroup var node: NodeOptionArguments

    @Option(name: .customLong("kubeconfig"), help: "kubeconfig for the API-server source (default: in-cluster service account).",
            completion: .file())
    var kubeconfig: String?

    @Option(name: .customLong("master"), help: "API server address (overrides the kubeconfig's).")
    var master: String?

    @Option(name: .customLong("proxy-mode"), help: "Must be nftables (or unset).", completion: .list(["nftables"]))
    var proxyMode: String?

    @Option(name: .customLong("bind-address"), help: "Overrides the node's primary IP (kube-proxy's --bind-address).")
    var bindAddress: String?

    @Option(name: .customLong("iptables-masquerade-bit"), help: "kube-proxy's name for --masquerade-bit.")
    var iptablesMasqueradeBit: Int?

    @Option(name: .customLong("healthz-bind-address"), help: "HOST:PORT for /healthz and /livez (default 0.0.0.0:10256; empty: off).")
    var healthzBindAddress: String?

    @Option(name: .customLong("metrics-bind-address"), help: "HOST:PORT for /metrics (default 127.0.0.1:10249; empty: off).")
    var metricsBindAddress: String?

    @Option(name: .customLong("healthcheck-bind-address"), help: "Address the healthCheckNodePort servers listen on.")
    var healthCheckBindAddress: String = "0.0.0.0"

    @Option(name: [.customLong("sync-period"), .customLong("iptables-sync-period")],
            help: "How often to check the tables for changes by others and repair them (Go duration, default 30s).")
    var syncPeriod: String?

    @Option(name: [.customLong("min-sync-period"), .customLong("iptables-min-sync-period")],
            help: "Minimum time between two commits (Go duration; default 0: apply at once, with --config: nftables.minSyncPeriod).")
    var minSyncPeriod: String?

    @Option(name: .customLong("config-sync-period"), help: "Accepted (API-source resync period).")
    var configSyncPeriod: String?

    @Option(name: .customLong("feature-gates"), help: "A=true,B=false (unknown gates are accepted with a warning).")
    var featureGates: String?

    @Flag(name: .customLong("cleanup-on-exit"), help: "Delete Sluice's tables when stopping (default: leave them).")
    var cleanupOnExit = false

    @Flag(name: .customLong("cleanup"), help: "Delete Sluice's tables and exit.")
    var cleanup = false

    @Option(name: .customLong("logging-format"), help: "text or json.")
    var loggingFormat: LoggingFormat = .text

    @Flag(name: .customLong("version"), help: "Print the version and exit.")
    var version = false

    @Option(name: .customLong("netns"), help: ArgumentHelp("Program this named network namespace (testing).", visibility: .hidden),
            completion: .networkNamespaces)
    var netns: String?

    @Option(name: .customLong("poll-interval"), help: ArgumentHelp("Manifest polling interval in ms, used only when inotify is unavailable.", visibility: .hidden))
    var pollIntervalMilliseconds: Int = 200

    @Option(name: .customLong("cold-start-chunk"),
            help: ArgumentHelp("Elements per transaction of a streamed cold start (each holds whole services; testing).", visibility: .hidden))
    var coldStartChunk: Int?

    @Option(name: .customLong("watch-progress-timeout"),
            help: ArgumentHelp("Seconds a watch may bring nothing (no event, no bookmark) before it is re-opened, once the API server has shown it sends periodic bookmarks; 0: only at the watch's timeout.", visibility: .hidden))
    var watchProgressTimeout: Double = 150

    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("kube-proxy flags without meaning here.", visibility: .hidden))
    var unrecognized: [String] = []

    func validate() throws {
        guard watchProgressTimeout >= 0 else { throw ValidationError("--watch-progress-timeout must not be negative") }
        if let coldStartChunk, coldStartChunk <= 0 {
            throw ValidationError("--cold-start-chunk must be a positive number of elements, not \(coldStartChunk)")
        }
    }

    func run() async throws {
        if version {
            print("sluice \(SluiceVersion.string) (nftables)")
            return
        }
        let (ignored, verbosity) = try Self.classify(unrecognized)
        let level: Logger.Level = verbosity >= 6 ? .trace : (verbosity >= 4 ? .debug : .info)
        let format = loggingFormat
        LoggingSystem.bootstrap { label in
            var h: any LogHandler = format == .json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "sluice")
        for flag in ignored { logger.warning("flag accepted but ignored: Sluice has no use for it", metadata: ["flag": "\(flag)"]) }

        if cleanup {
            let applier = try NftablesApplier(namespace: netns)
            let deleted = try applier.deleteTablesIgnoringMissing(Family.allCases.map { ($0, Layout.tableName) })
            print("deleted Sluice tables: \(deleted.isEmpty ? "none" : deleted.map { "\($0.rawValue) \(Layout.tableName)" }.joined(separator: ", "))")
            return
        }

        var flags = node.flags
        flags.proxyMode = proxyMode
        flags.bindAddress = bindAddress
        flags.healthzBindAddress = healthzBindAddress
        flags.metricsBindAddress = metricsBindAddress
        flags.syncPeriod = syncPeriod
        flags.minSyncPeriod = minSyncPeriod
        flags.configSyncPeriod = configSyncPeriod
        flags.featureGates = featureGates
        flags.kubeconfig = kubeconfig
        flags.master = master
        if let bit = iptablesMasqueradeBit, flags.masqueradeBit == nil { flags.masqueradeBit = bit }
        // The bytes the options come from: the daemon exits when the file changes (kube-proxy).
        let configContents = flags.config.flatMap { FileManager.default.contents(atPath: $0) }
        let (options, diagnostics) = NodeOptions.load(flags: flags)
        for d in diagnostics {
            if d.isError { logger.error("\(d.description)") } else { logger.warning("\(d.description)") }
        }
        if let mode = options.proxyMode?.trimmingCharacters(in: .whitespaces), !mode.isEmpty, mode.lowercased() != "nftables" {
            throw ValidationError("proxy mode \"\(mode)\" is not supported: Sluice programs nftables only; use --proxy-mode nftables or leave it unset")
        }
        var objectSources: [any ObjectSource] = []
        var client: KubeAPIClient?
        if sources.isEmpty || options.kubeconfig != nil || options.master != nil {
            let kubeLogger = Logger(label: "sluice.kube")
            let c = try KubeAPIClient(configuration: KubeClientConfiguration.forKubeProxy(kubeconfig: options.kubeconfig, master: options.master),
                                      logger: kubeLogger)
            client = c
            var reflectorOptions = ReflectorOptions()
            // kube-apiserver bookmarks a watch about every minute: 150 s of silence is a stalled watch.
            reflectorOptions.watchProgressTimeout = watchProgressTimeout > 0 ? .milliseconds(Int64(watchProgressTimeout * 1000)) : nil
            // client-go's switch for lists by watch; on unless KUBE_FEATURE_WatchListClient=false.
            reflectorOptions.useWatchList = ProcessInfo.processInfo.environment["KUBE_FEATURE_WatchListClient"]?.lowercased() != "false"
            objectSources.append(APIServerSource(client: c, nodeName: options.nodeName, serviceProxyName: options.serviceProxyName,
                                                 options: reflectorOptions))
            logger.info("API server source", metadata: ["server": "\(c.configuration.server)"])
        }
        if !sources.isEmpty {
            objectSources.append(ManifestDirectorySource(paths: sources, interval: .milliseconds(max(10, pollIntervalMilliseconds))))
        }
        let minSync: Duration = (minSyncPeriod != nil || flags.config != nil) ? options.minSyncPeriod : .zero
        var configuration = DaemonConfiguration(
            options: options,
            sources: objectSources,
            netns: netns,
            healthzBindAddress: options.healthzBindAddress, metricsBindAddress: options.metricsBindAddress,
            healthCheckBindHost: healthCheckBindAddress,
            syncPeriod: options.syncPeriod, minSyncPeriod: minSync, cleanupOnExit: cleanupOnExit)
        if let path = flags.config, let configContents { configuration.configFile = (path, configContents) }
        if let coldStartChunk { configuration.coldStartChunk = coldStartChunk }
        let daemon = Daemon(configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: daemon, serviceName: "sluice")],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            try? await client?.shutdown()
            throw error
        }
        try? await client?.shutdown()
    }

    /// kube-proxy flags that Sluice accepts and ignores (ipvs, conntrack sysctls, client
    /// tuning, logging knobs, Windows); anything else unknown is an error.
    static let ignoredFlags: Set<String> = [
        "ipvs-sync-period", "ipvs-min-sync-period", "ipvs-scheduler", "ipvs-exclude-cidrs", "ipvs-strict-arp",
        "ipvs-tcp-timeout", "ipvs-tcpfin-timeout", "ipvs-udp-timeout",
        "conntrack-max-per-core", "conntrack-min", "conntrack-tcp-timeout-established", "conntrack-tcp-timeout-close-wait",
        "conntrack-tcp-be-liberal", "conntrack-udp-timeout", "conntrack-udp-timeout-stream",
        "oom-score-adj", "profiling", "show-hidden-metrics-for-version", "kube-api-content-type", "kube-api-qps",
        "kube-api-burst", "iptables-localhost-nodeports", "bind-address-hard-fail", "healthz-port", "metrics-port",
        "proxy-port-range", "init-only", "write-config-to", "v", "vmodule", "log-flush-frequency", "log-json-split-stream",
        "log-json-info-buffer-size", "log-text-split-stream", "log-text-info-buffer-size", "windows-service",
        "source-vip", "network-name", "add_dir_header", "alsologtostderr", "log_backtrace_at", "log_dir", "log_file",
        "log_file_max_size", "logtostderr", "one_output", "skip_headers", "skip_log_headers", "stderrthreshold",
    ]

    /// Splits leftover arguments into ignored kube-proxy flags; throws on anything unknown.
    /// Returns the flags to warn about and the `-v` level.
    static func classify(_ args: [String]) throws -> (ignored: [String], verbosity: Int) {
        var ignored: [String] = []
        var verbosity = 0
        var i = 0
        while i < args.count {
            let arg = args[i]
            guard arg.hasPrefix("-") else { throw ValidationError("unexpected argument '\(arg)'") }
            let body = arg.drop { $0 == "-" }
            let name = String(body.split(separator: "=", maxSplits: 1).first ?? "")
            let inlineValue = body.contains("=") ? String(body.split(separator: "=", maxSplits: 1)[1]) : nil
            guard ignoredFlags.contains(name) else { throw ValidationError("unknown option '\(arg)'") }
            var value = inlineValue
            if value == nil, i + 1 < args.count, !args[i + 1].hasPrefix("-") {
                value = args[i + 1]
                i += 1
            }
            if name == "v" { verbosity = Int(value ?? "0") ?? 0 } else { ignored.append("--\(name)") }
            i += 1
        }
        return (ignored, verbosity)
    }
}
