import Foundation
import SluiceModel

/// The repository's `Rulesets/` service sets, for golden and differential tests.
public enum RulesetDirectory {
    /// The repository root (this file is `Sources/SluiceTestSupport/Rulesets.swift`).
    public static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// Names of the directories under `Rulesets/`, sorted.
    public static var names: [String] {
        let dir = repositoryRoot + "/Rulesets"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { name in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir + "/" + name, isDirectory: &isDir) && isDir.boolValue
        }.sorted()
    }

    /// `Rulesets/<name>`.
    public static func path(_ name: String) -> String { repositoryRoot + "/Rulesets/" + name }

    /// The node flags a set is compiled with: `--config` with its `kube-proxy-config.yaml`,
    /// plus the Sluice-only flags (no config-file field) listed one per line in its
    /// `sluice-flags` file, if any. Only `--traffic-counters` is understood there.
    public static func flags(_ name: String) -> NodeOptionFlags {
        var flags = NodeOptionFlags(config: config(name))
        let listed = (try? String(contentsOfFile: path(name) + "/sluice-flags", encoding: .utf8)) ?? ""
        for line in listed.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) where !line.isEmpty && !line.hasPrefix("#") {
            precondition(line == "--traffic-counters", "Rulesets/\(name)/sluice-flags: unknown flag \(line)")
            flags.trafficCounters = true
        }
        return flags
    }

    /// `Rulesets/<name>/kube-proxy-config.yaml` if the set has one.
    public static func config(_ name: String) -> String? {
        let p = path(name) + "/kube-proxy-config.yaml"
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }
}
