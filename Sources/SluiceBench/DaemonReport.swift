import Foundation

/// Markdown and JSON output of `sluice bench --daemon`.
public enum DaemonReport {
    static func mb(_ b: Int?) -> String { b.map { String(format: "%.0f MB", Double($0) / 1e6) } ?? "–" }

    static func latency(_ m: Metric?) -> String {
        guard let m, let s = m.summary else { return m?.note ?? "–" }
        return "\(Report.seconds(s.p50)) / \(Report.seconds(s.p99)) / \(Report.seconds(s.max)) (n=\(s.n)\(m.note != nil ? "*" : ""))"
    }

    static func firstSync(_ r: DaemonSourceResult) -> String {
        guard let f = r.firstSync else { return "–" }
        guard let s = f.seconds else { return "not seen (\(f.kernelElements) of \(f.expectedElements) elements)" }
        if f.detection == "metrics" { return "\(Report.seconds(s)) (\(f.kernelElements) elements, by /metrics)" }
        return "\(Report.seconds(s)) (\(f.commits) commit\(f.commits == 1 ? "" : "s"), \(f.kernelElements) elements)"
    }

    static func churn(_ c: DaemonChurn?) -> String {
        guard let c else { return "not run" }
        let lag = c.lag.map { "lag p50 \(Report.seconds($0.p50)) / p99 \(Report.seconds($0.p99)) / max \(Report.seconds($0.max))" } ?? "no commit"
        return "\(Report.rate(c.committedRate, "/s")) committed (offered \(Report.rate(c.offeredRate, "/s")), written \(Report.rate(c.writeRate, "/s")) for "
            + "\(String(format: "%.1f", c.writeSeconds)) of \(String(format: "%.0f", c.seconds)) s\(c.stoppedEarly ? ", producer stopped: lag > max" : "")); \(lag); \(c.commits) commits; "
            + (c.sustained ? "sustained" : "**not sustained**")
    }

    static func burst(_ b: DaemonBurst?) -> String {
        guard let b else { return "not run" }
        guard let s = b.seconds else { return "\(b.changes) changes: not all committed within the timeout" }
        var text = "\(b.changes) changes in \(Report.seconds(s)), \(b.commits) commits"
        if let a = b.syncs, let phases = a.meanPhaseSeconds {
            // Per change: the syncs' phase totals over the changes.
            let perChange = phases.map { "\($0.phase) \(Report.seconds($0.seconds * Double(a.syncs) / Double(b.changes)))" }
            text += "; per change: sync \(Report.seconds(a.meanSyncSeconds * Double(a.syncs) / Double(b.changes))), "
                + perChange.joined(separator: ", ")
        }
        return text
    }

    /// The daemon's mean sync and commit during the single changes.
    static func syncs(_ a: DaemonSyncAccount?) -> String {
        guard let a else { return "–" }
        let commit = a.meanCommitSeconds.map { ", of which commit \(Report.seconds($0))" } ?? ""
        let phases = a.meanPhaseSeconds.map { p in
            "; by phase " + p.map { "\($0.phase) \(Report.seconds($0.seconds))" }.joined(separator: ", ")
        } ?? ""
        return "sync \(Report.seconds(a.meanSyncSeconds))\(commit)\(phases) (means of \(a.syncs) syncs, /metrics)"
    }

    static func cell(_ r: DaemonSourceResult?, _ row: Int) -> String {
        guard let r else { return "not run" }
        if let e = r.error, row == 0 { return "error: " + e.split(separator: "\n").first.map(String.init)! }
        switch row {
        case 0: return firstSync(r)
        case 1: return "\(mb(r.rssAfterFirstSyncBytes)) / \(mb(r.peakRSSBytes))"
        case 2: return latency(r.eventToKernel) + (r.missedChanges > 0 ? ", \(r.missedChanges) without commit" : "")
        case 3: return syncs(r.singleChangeSyncs)
        case 4: return r.commitsPerChange.map { String(format: "%.0f / %.0f", $0.p50, $0.max) } ?? "–"
        case 5: return r.source == .api ? burst(r.burst) : "n/a"
        case 6: return r.source == .api ? churn(r.churn) : "n/a"
        default: return r.source == .api ? SoakReport.summary(r.soak) : "n/a"
        }
    }

    static let rows = ["first sync (start → last element committed)", "peak RSS (after first sync / at end)",
                       "event → kernel p50 / p99 / max", "… inside the daemon, per single change",
                       "commits per single change (p50 / max)",
                       "burst (queued back to back)", "sustained churn through the watch", "soak with faults (API watch)"]

    /// One block per scale: the API watch beside the watched directory.
    public static func table(_ scales: [DaemonScaleResult]) -> String {
        var s = ""
        for r in scales {
            let api = r.results.first { $0.source == .api }, dir = r.results.first { $0.source == .directory }
            s += "### `sluice run`, \(r.scale) (\(r.scale.services) services × \(r.scale.endpoints) endpoints)\n\n"
            s += "| metric | API watch | watched directory (file edit → kernel) |\n|---|---|---|\n"
            for (i, title) in rows.enumerated() { s += "| \(title) | \(cell(api, i)) | \(cell(dir, i)) |\n" }
            let notes = r.results.flatMap { res in res.notes.map { "\(res.source.rawValue): \($0)" } }
                + r.results.compactMap { res in res.monitorOverruns > 0 ? "\(res.source.rawValue): \(res.monitorOverruns) notification overruns (counts incomplete)" : nil }
            s += notes.isEmpty ? "\n" : "\n" + notes.map { "- " + $0.replacingOccurrences(of: "\n", with: " ") }.joined(separator: "\n") + "\n\n"
            if let soak = api?.soak { s += SoakReport.section(soak) }
        }
        return s
    }

    /// `daemon-results.json` and `daemon-results.md` in `dir`.
    public static func write(_ run: DaemonRunResult, to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(run).write(to: URL(fileURLWithPath: dir + "/daemon-results.json"))
        try table(run.scales).write(toFile: dir + "/daemon-results.md", atomically: true, encoding: .utf8)
    }
}
