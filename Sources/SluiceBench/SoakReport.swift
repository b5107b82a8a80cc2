import Foundation

/// Markdown for the soak (`DaemonSoak`): a one-line summary for the daemon table and a
/// section with the faults, the latency histogram and the RSS / open-files series.
enum SoakReport {
    static func mb(_ b: Int?) -> String { b.map { String(format: "%.1f MB", Double($0) / 1e6) } ?? "–" }

    static func bound(_ s: Double?) -> String { s.map { "≤ " + Report.seconds($0) } ?? "> last bucket" }

    /// The cell of the daemon table.
    static func summary(_ s: DaemonSoak?) -> String {
        guard let s else { return "not run" }
        let growth = (s.rssGrowth.map { String(format: "%+.1f %%", $0 * 100) } ?? "–")
            + (s.settledGrowth.map { String(format: ", settled %+.1f %%", $0 * 100) } ?? "")
        let files = "\(s.openFilesStart.values.reduce(0, +)) → \(s.openFilesEnd.values.reduce(0, +))"
        return "\(s.written) changes in \(String(format: "%.0f", s.writeSeconds)) s (\(Report.rate(s.writeRate, "/s"))), "
            + "\(s.faults.values.reduce(0, +)) faults; kernel \(s.kernelEqualsCompile ? "= compile" : "**≠ compile (\(s.kernelDifferences) objects)**"); "
            + "RSS warm → end \(growth); open files \(files)"
    }

    /// The section after the table.
    static func section(_ s: DaemonSoak) -> String {
        var out = "#### Soak\n\n"
        out += "- offered \(Report.rate(s.options.rate, "/s")) for \(s.written) changes: written in \(String(format: "%.1f", s.writeSeconds)) s "
            + "(\(Report.rate(s.writeRate, "/s"))), committed \(Report.rate(s.committedRate, "/s")), \(s.commits) commits\n"
        out += "- server bookmarks every \(String(format: "%g", s.options.bookmarkSeconds)) s, daemon's --watch-progress-timeout "
            + "\(String(format: "%g", s.options.watchProgressTimeout)) s; a fault every \(s.options.faultEvery) changes\n"
        out += "- faults injected: " + SoakFault.allCases.map { "\($0.rawValue) \(s.faults[$0.rawValue] ?? 0)" }.joined(separator: ", ") + "\n"
        out += "- stalled watches noticed by the daemon (all watching again) after: "
            + (s.stallRecoveries.isEmpty ? "–" : s.stallRecoveries.map { String(format: "%.1f s", $0) }.joined(separator: ", ")) + "\n"
        out += "- server answers: " + s.serverAnswers.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
            + "; watches opened \(s.watchesOpened)\n"
        if let l = s.lag {
            out += "- write → commit (commit notifications): p50 \(Report.seconds(l.p50)) / p99 \(Report.seconds(l.p99)) / max \(Report.seconds(l.max)) (n=\(l.n))\n"
        }
        if let h = s.networkProgramming {
            out += "- `\(h.name)` (daemon, trigger times in whole seconds): n=\(h.count), mean \(h.mean.map { Report.seconds($0) } ?? "–"), "
                + "p50 \(bound(h.quantileBound(0.5))), p99 \(bound(h.quantileBound(0.99))), max \(bound(h.quantileBound(1)))\n"
        }
        out += "- converged \(String(format: "%.1f", s.convergeSeconds)) s after the last write; kernel "
            + (s.kernelEqualsCompile ? "equals a fresh compile of the final objects" : "differs from the compile by \(s.kernelDifferences) objects") + "\n"
        out += "- RSS after warm-up \(mb(s.warmSample?.rssBytes)) (t=\(String(format: "%.0f", s.warmSample?.seconds ?? 0)) s), at the end \(mb(s.endSample?.rssBytes))"
            + (s.rssGrowth.map { String(format: " (%+.1f %%)", $0 * 100) } ?? "") + " right after convergence, "
            + "\(mb(s.settledSample?.rssBytes))" + (s.settledGrowth.map { String(format: " (%+.1f %%)", $0 * 100) } ?? "")
            + " settled" + settledWhen(s) + "\n"
        if let rss = s.rss { out += rssDuring(rss) }
        out += "- open files: start \(files(s.openFilesStart)), end \(files(s.openFilesEnd))\n"
        out += "- series (t s: RSS MB / open files): "
            + s.samples.map { String(format: "%.0f: %.1f/%d", $0.seconds, Double($0.rssBytes ?? 0) / 1e6, $0.openFiles ?? -1) }.joined(separator: ", ") + "\n\n"
        return out
    }

    /// When the settled sample was taken (after convergence), or that RSS did not settle.
    static func settledWhen(_ s: DaemonSoak) -> String {
        guard let end = s.endSample, let last = s.settledSample else { return "" }
        let after = String(format: "%.0f s after", last.seconds - end.seconds)
        return s.settled == false ? " (still changing \(after))" : " (\(after))"
    }

    /// RSS during the soak: all samples, those between relists, the relists' peaks.
    static func rssDuring(_ r: SoakRSS) -> String {
        func range(_ x: Summary?) -> String {
            x.map { String(format: "median %.1f / min %.1f / max %.1f MB (n=%d)", $0.p50 / 1e6, $0.min / 1e6, $0.max / 1e6, $0.n) } ?? "–"
        }
        let peaks = r.relistPeaks.map { String(format: "%.0f s: %.1f MB", $0.seconds, Double($0.rssBytes ?? 0) / 1e6) }
        return "- RSS during the soak: \(range(r.all)); \(r.aboveTolerance) of \(r.during) samples more than "
            + String(format: "%.0f %%", SoakRSS.flatTolerance * 100) + " above the warm-up\n"
            + "- RSS between relists: \(range(r.betweenRelists)); near a relist (a relist ended within a sample of it): "
            + (peaks.isEmpty ? "–" : peaks.joined(separator: ", ")) + "\n"
    }

    static func files(_ kinds: [String: Int]) -> String {
        "\(kinds.values.reduce(0, +)) (" + kinds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
    }
}
