import ArgumentParser
import Foundation
import SluiceBench

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Sluice's update latency, cold start, churn, memory, compile and connection rates against kube-proxy-style baselines.",
        discussion: """
        Runs as root. Every implementation and scale gets fresh network namespaces \
        (client → node → server), deleted afterwards, also on failure or Ctrl-C. Sluice runs in a \
        child process (`sluice bench --worker sluice`) so its peak RSS is its own.

        Scales: --scale SxE (repeatable), or --services N[,N…] with --endpoints E, or --all-scales \
        (1k×10, 10k×10, 100k×10, 50k×1, 5k×50). Progress goes to standard error, a Markdown results \
        table to standard output, and with --out DIR: results.json (every sample and summary), \
        update-latency.svg and results.md.

          sluice bench --services 1000,10000 --endpoints 10 --out bench-out
          sluice bench --all-scales --timeout 300 --out bench-out
        """)

    @Option(help: "Scale as SERVICESxENDPOINTS, e.g. 50000x1 (repeatable).")
    var scale: [String] = []

    @Option(help: "Service counts, comma-separated (with --endpoints).")
    var services: String?

    @Option(help: "Endpoints per service (with --services).")
    var endpoints: Int = 10

    @Flag(help: "Run the issue's five scales.")
    var allScales = false

    @Option(help: "A scenario file (benchmarks/scenarios.json): {\"scales\": [\"1000x10\", …]}.", completion: .file(extensions: ["json"]))
    var scenarios: String?

    @Option(help: "Samples per latency metric for Sluice.")
    var samples: Int = 200

    @Option(help: "Samples per latency metric for each baseline.")
    var baselineSamples: Int = 20

    @Option(help: "Seconds a baseline may spend on one phase of one scale (cold start, each update metric, churn) before it is reported as \"> timeout\".")
    var timeout: Double = 600

    @Option(help: "Seconds of the confirming sustained-churn window.")
    var churnSeconds: Double = 30

    @Option(help: "Seconds of each probing churn step.")
    var churnProbeSeconds: Double = 5

    @Option(help: "Churn backlog limit: a change must be ACKed within this many seconds.")
    var churnMaxLag: Double = 1

    @Flag(help: "Skip the churn search for the baselines (reported as not run).")
    var noBaselineChurn = false

    @Option(help: "Seconds per connection-rate repetition (0 disables).")
    var connSeconds: Double = 3

    @Option(help: "Baselines: nft,iptables (comma-separated) or none.")
    var baselines: String = "nft,iptables"

    @Option(help: "Do not run baselines above this many services (reported as not run).")
    var baselineMaxServices: Int?

    @Option(help: "Directory for results.json, update-latency.svg and results.md.", completion: .directory)
    var out: String?

    @Flag(help: "No progress bar.")
    var noProgress = false

    @Flag(help: "Measure a real `sluice run` child process instead of the engine (first sync, peak RSS, event → kernel, burst, churn; API watch and watched directory).")
    var daemon = false

    @Option(help: "Daemon scenario sources: api,directory.")
    var daemonSources: String = "api,directory"

    @Option(help: "Daemon scenario: file edits for the watched-directory source.")
    var daemonDirSamples: Int = 50

    @Option(help: "Daemon scenario: offered endpoint changes per second for the sustained churn.")
    var daemonChurnRate: Double = 20_000

    @Option(help: "Daemon scenario: seconds of sustained churn through the watch (0 skips it).")
    var daemonChurnSeconds: Double = 60

    @Option(help: "Daemon scenario: changes queued back to back for the burst (0 skips it).")
    var daemonBurst: Int = 2000

    @Flag(help: "Daemon scenario: time the first sync from the kernel's element notifications (a listener from the start, which costs the kernel a notification per element) instead of the daemon's /metrics.")
    var daemonFirstSyncFromKernel = false

    @Flag(help: "Daemon scenario: JSON List manifests instead of multi-document YAML.")
    var daemonJsonManifests = false

    @Option(help: "Daemon scenario: seconds of the soak through the API watch (0 skips it): endpoint changes at --daemon-soak-rate with faults injected in turn (token rotation, watch disconnect, 410 Gone, stalled watches, API server restart); ends by checking the kernel against a fresh compile.")
    var daemonSoakSeconds: Double = 0

    @Option(help: "Daemon scenario: offered endpoint changes per second during the soak.")
    var daemonSoakRate: Double = 1000

    @Option(help: "Daemon scenario: seconds between two soak faults (0: none).")
    var daemonSoakFaultInterval: Double = 20

    @Option(help: "Daemon scenario: seconds a soak stall (and the stall before a 410) lasts before the connections are cut.")
    var daemonSoakStallSeconds: Double = 5

    @Option(help: "Daemon scenario: seconds the old token stays accepted after a soak token rotation (0: at once refused, the daemon sees 401).")
    var daemonSoakTokenOverlap: Double = 75

    @Option(help: "Daemon scenario: seconds between the fake API server's bookmarks on every watch during the soak (kube-apiserver: about 60).")
    var daemonSoakBookmarkInterval: Double = 1

    @Option(help: "Daemon scenario: the daemon's --watch-progress-timeout during the soak (its default 150 s against 60 s of bookmarks, scaled down).")
    var daemonSoakProgressTimeout: Double = 5

    @Option(help: .hidden) var daemonWorker: String?

    @Option(help: .hidden) var worker: String?
    @Option(help: .hidden) var workerNetns: String?
    @Option(help: .hidden) var workerClientNetns: String?
    @Option(help: .hidden) var workerServerNetns: String?
    @Option(help: .hidden) var workerOptions: String?
    @Option(help: .hidden) var workerOut: String?

    func scales() throws -> [Scale] {
        if allScales { return Scale.standard }
        var list = scale
        if let scenarios {
            struct File: Decodable { var scales: [String] }
            list += try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: scenarios))).scales
        }
        if !list.isEmpty {
            return try list.map { s in
                let p = s.lowercased().split(separator: "x")
                guard p.count == 2, let a = Int(p[0]), let b = Int(p[1]), a > 0, b > 0 else { throw ValidationError("bad --scale \(s)") }
                return Scale(services: a, endpoints: b)
            }
        }
        if let services {
            return try services.split(separator: ",").map {
                guard let n = Int($0.trimmingCharacters(in: .whitespaces)), n > 0 else { throw ValidationError("bad --services \(services)") }
                return Scale(services: n, endpoints: endpoints)
            }
        }
        return [Scale(services: 1000, endpoints: 10), Scale(services: 10000, endpoints: 10)]
    }

    func validate() throws {
        if daemonSoakSeconds > 0 {
            guard daemonSoakRate > 0 else { throw ValidationError("--daemon-soak-rate must be positive") }
            guard daemonSoakBookmarkInterval > 0, daemonSoakProgressTimeout > daemonSoakBookmarkInterval else {
                throw ValidationError("--daemon-soak-progress-timeout must be longer than --daemon-soak-bookmark-interval (> 0)")
            }
            guard daemonSoakFaultInterval == 0 || daemonSoakStallSeconds < daemonSoakFaultInterval else {
                throw ValidationError("--daemon-soak-stall-seconds must be shorter than --daemon-soak-fault-interval")
            }
        }
    }

    func run() throws {
        if let worker { try runWorker(worker); return }
        if let daemonWorker { try runDaemonWorker(daemonWorker); return }
        guard getuid() == 0 else { throw ValidationError("sluice bench must run as root (it creates network namespaces)") }
        if daemon { try runDaemon(); return }
        var bl: [Implementation] = []
        for b in baselines.split(separator: ",") {
            switch b.trimmingCharacters(in: .whitespaces) {
            case "nft": bl.append(.kubeProxyNft)
            case "iptables": bl.append(.kubeProxyIptables)
            case "none", "": break
            default: throw ValidationError("unknown baseline \(b)")
            }
        }
        let options = BenchOptions(scales: try scales(), samples: samples, baselineSamples: baselineSamples, timeout: timeout,
                                   churnSeconds: churnSeconds, churnProbeSeconds: churnProbeSeconds, churnMaxLag: churnMaxLag,
                                   baselineChurn: !noBaselineChurn, connSeconds: connSeconds, baselines: bl,
                                   baselineMaxServices: baselineMaxServices, outDir: out)
        installCleanupSignalHandlers()
        defer { cleanupAllNamespaces() }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let command = "sluice " + CommandLine.arguments.dropFirst().joined(separator: " ")
        let info = Report.runInfo(command: command)
        let runner = BenchRunner(options: options, workerExecutable: exe, progress: ProgressReporter(enabled: !noProgress))
        if let out {
            runner.onScale = { partial in
                let run = RunResult(info: info, options: options, scales: partial, targets: Report.targets(partial))
                try? Report.write(run, to: out)
            }
        }
        let scales = runner.run()
        let run = RunResult(info: info, options: options, scales: scales, targets: Report.targets(scales))
        print(Report.table(scales))
        print(Report.targetsTable(run.targets))
        if let out {
            try Report.write(run, to: out)
            FileHandle.standardError.write(Data("sluice bench: wrote \(out)/results.json, \(out)/update-latency.svg, \(out)/results.md\n".utf8))
        }
    }

    func runWorker(_ kind: String) throws {
        guard kind == "sluice", let ns = workerNetns, let optsPath = workerOptions, let outPath = workerOut else {
            throw ValidationError("--worker sluice needs --worker-netns, --worker-options and --worker-out")
        }
        let options = try JSONDecoder().decode(BenchOptions.self, from: Data(contentsOf: URL(fileURLWithPath: optsPath)))
        guard let scale = options.scales.first else { throw ValidationError("worker options without a scale") }
        var probe: ConnProbe?
        if let c = workerClientNetns, let s = workerServerNetns { probe = ConnProbe(client: c, server: s) }
        let result = runSluiceWorker(scale: scale, namespace: ns, probe: probe, options: options) { label, done, total in
            FileHandle.standardError.write(Data("@@progress \(label)\t\(done)\t\(total)\n".utf8))
        }
        try JSONEncoder().encode(result).write(to: URL(fileURLWithPath: outPath))
    }
}

extension Bench {
    func daemonOptions() throws -> DaemonBenchOptions {
        let sources = try daemonSources.split(separator: ",").map { s -> DaemonSource in
            guard let d = DaemonSource(rawValue: s.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("unknown daemon source \(s)") }
            return d
        }
        var options = DaemonBenchOptions(scales: try scales(), sources: sources, samples: samples, directorySamples: daemonDirSamples,
                                         churnSeconds: daemonChurnSeconds, churnRate: daemonChurnRate, churnMaxLag: churnMaxLag,
                                         burst: daemonBurst, timeout: timeout, jsonManifests: daemonJsonManifests, outDir: out)
        options.firstSyncFromKernel = daemonFirstSyncFromKernel
        if daemonSoakSeconds > 0 {
            options.soak = SoakOptions(seconds: daemonSoakSeconds, rate: daemonSoakRate, faultInterval: daemonSoakFaultInterval,
                                       stallSeconds: daemonSoakStallSeconds, tokenOverlapSeconds: daemonSoakTokenOverlap,
                                       convergeTimeout: timeout)
            options.soak?.bookmarkSeconds = daemonSoakBookmarkInterval
            options.soak?.watchProgressTimeout = daemonSoakProgressTimeout
        }
        return options
    }

    /// `sluice bench --daemon`: a real `sluice run` per scale and source, measured from outside.
    func runDaemon() throws {
        let options = try daemonOptions()
        installCleanupSignalHandlers()
        defer { cleanupAllNamespaces() }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let info = Report.runInfo(command: "sluice " + CommandLine.arguments.dropFirst().joined(separator: " "))
        let runner = DaemonBenchRunner(options: options, executable: exe, progress: ProgressReporter(enabled: !noProgress))
        if let out {
            runner.onResult = { partial in try? DaemonReport.write(DaemonRunResult(info: info, options: options, scales: partial), to: out) }
        }
        let scales = runner.run()
        print(DaemonReport.table(scales))
        if let out {
            try DaemonReport.write(DaemonRunResult(info: info, options: options, scales: scales), to: out)
            FileHandle.standardError.write(Data("sluice bench: wrote \(out)/daemon-results.json, \(out)/daemon-results.md\n".utf8))
        }
    }

    /// The worker of one daemon scenario, already inside the benchmark's namespace.
    func runDaemonWorker(_ kind: String) throws {
        guard let source = DaemonSource(rawValue: kind), let optsPath = workerOptions, let outPath = workerOut else {
            throw ValidationError("--daemon-worker api|directory needs --worker-options and --worker-out")
        }
        let options = try JSONDecoder().decode(DaemonBenchOptions.self, from: Data(contentsOf: URL(fileURLWithPath: optsPath)))
        guard let scale = options.scales.first else { throw ValidationError("worker options without a scale") }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let worker = DaemonWorker(source: source, scale: scale, options: options, executable: exe, progress: { label, done, total in
            FileHandle.standardError.write(Data("@@progress \(label)\t\(done)\t\(total)\n".utf8))
        }, onDaemonStart: { pid in FileHandle.standardError.write(Data("@@daemon-pid \(pid)\n".utf8)) })
        try JSONEncoder().encode(worker.run()).write(to: URL(fileURLWithPath: outPath))
    }
}
