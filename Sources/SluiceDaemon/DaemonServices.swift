import Foundation
import Logging
import ServiceLifecycle
import SluiceModel
import SluiceNetlink

/// One HTTP endpoint (`/healthz`, `/metrics`): serves until graceful shutdown, then closes.
struct HTTPEndpointService: ServiceLifecycle.Service {
    let what: String
    let host: String
    let port: Int
    let logger: Logger
    let bound: @Sendable (Int) -> Void
    let handler: @Sendable (String, String) -> HTTPReply

    func run() async throws {
        let server = try await HTTPServer.start(host: host, port: port) { method, path in handler(method, path) }
        bound(server.port)
        logger.info("serving \(what)", metadata: ["address": "\(host):\(server.port)"])
        try? await gracefulShutdown()
        await server.close()
    }
}

/// One object source feeding the sync loop; stops at graceful shutdown.
struct SourceService: ServiceLifecycle.Service {
    let source: any ObjectSource
    let index: Int
    let loop: SyncLoop
    let logger: Logger

    func run() async throws {
        do {
            // A source's own serial executor: its blocking work (a directory scan parses for
            // seconds) never holds up the daemon's other services, nor the other sources.
            try await withTaskExecutorPreference(DaemonExecutor(label: "sluice.source.\(index)")) {
                try await cancelWhenGracefulShutdown { [source, index, loop] in
                    try await source.run(deliver: { delta in loop.receive(source: index, delta) },
                                         pace: { await loop.roomForChanges() })
                }
            }
        } catch is CancellationError {
        } catch {
            if !Task.isCancelled { logger.error("source stopped", metadata: ["source": "\(source.name)", "error": "\(error)"]) }
        }
    }
}

/// The sync loop; at graceful shutdown it finishes the commit in flight and stops, then the
/// healthCheckNodePort servers close.
struct SyncLoopService: ServiceLifecycle.Service {
    let loop: SyncLoop
    let healthChecks: HealthCheckServers

    func run() async {
        await withGracefulShutdownHandler {
            await loop.run()
        } onGracefulShutdown: { [loop] in
            loop.stopWaking()
        }
        await healthChecks.closeAll()
    }
}

/// Checks for drift (someone else changed the tables) every `period`.
struct DriftCheckService: ServiceLifecycle.Service {
    let loop: SyncLoop
    let period: Duration

    func run() async {
        try? await cancelWhenGracefulShutdown { [loop, period] in
            while true {
                try await Task.sleep(for: period)
                await loop.checkDrift()
            }
        }
    }
}

/// Watches the `--config` file: throws `DaemonError` when its content changes (kube-proxy
/// exits then, so that its DaemonSet restarts it with the new configuration).
struct ConfigWatcherService: ServiceLifecycle.Service {
    let path: String
    let contents: Data
    let interval: Duration
    let logger: Logger

    func run() async throws {
        let changed = (try? await cancelWhenGracefulShutdown { [path, contents, interval] in
            while true {
                try await Task.sleep(for: interval)
                if FileManager.default.contents(atPath: path) != contents { return true }
            }
        }) ?? false
        guard changed else { return }
        logger.error("the configuration file changed; exiting so that the new configuration is read on restart (kube-proxy does the same)",
                     metadata: ["config": "\(path)"])
        throw DaemonError("content of the configuration file \(path) was updated")
    }
}

/// Repairs someone else's write at once instead of at the next sync period: listens to
/// nf_tables commit notifications (`NFNLGRP_NFTABLES`) in the daemon's namespace from the
/// first sync on, and runs a drift check after any commit. For the daemon's own commits the
/// check is one generation-id read (the generation is the one it expects); a foreign one
/// (`nft flush ruleset`, a firewall reload) is reconciled right away. Lost notifications
/// (a full receive buffer) also trigger a check. Listening starts only after the first sync,
/// so the cold start's element notifications are never built.
struct CommitWatchService: ServiceLifecycle.Service {
    /// The kernel names the committing task by its thread id (`NFTA_GEN_PROC_PID` is
    /// `task_pid_nr(current)`): one of this process's threads if `/proc/self/task/<id>` exists.
    static func isOwnThread(_ pid: UInt32?) -> Bool {
        guard let pid else { return false }
        return access("/proc/self/task/\(pid)", F_OK) == 0
    }

    let loop: SyncLoop
    let netns: String?
    let logger: Logger
    /// Called once the notifications are subscribed.
    let listening: @Sendable () -> Void

    func run() async {
        // The first sync is the loop's business (and its element notifications would be many).
        let started = (try? await cancelWhenGracefulShutdown { [loop] in
            while await !loop.initialized { try await Task.sleep(for: .milliseconds(100)) }
            return true
        }) ?? false
        guard started else { return }
        // Owned tables cannot drift: nothing to listen for (and no notification to build per commit).
        guard await !loop.ownsTables else { return }
        let monitor: CommitMonitor
        do {
            monitor = try CommitMonitor(namespace: netns, receiveBufferBytes: 4 << 20)
        } catch {
            logger.warning("no nf_tables commit notifications; drift is found by the periodic check only", metadata: ["error": "\(error)"])
            return
        }
        listening()
        let metrics = loop.metrics
        await ReaderThread.run(name: "sluice-commit-watch", read: { stopped, check in
            var lost = 0
            while !stopped() {
                let event = monitor.next(timeout: 0.5)
                let overruns = monitor.overruns
                defer { lost = overruns }
                if overruns != lost {
                    check()   // notifications were lost: check
                } else if let event {
                    // The daemon's own commits need no check (and would keep the sync loop busy).
                    if Self.isOwnThread(event.pid) {
                        metrics.ownCommitNotifications.increment()
                    } else {
                        metrics.foreignCommitNotifications.increment()
                        check()
                    }
                }
            }
        }, onSignal: { [loop] in await loop.checkDrift() })
        monitor.stop()
    }
}
