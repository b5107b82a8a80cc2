import Foundation
import Logging

/// One JSON object per line on standard error (`--logging-format json`), with the fields
/// kube-proxy's JSON logs carry: `ts` (seconds since the epoch), `v`/`level`, `msg`, then
/// the metadata as strings.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", String(format: "%.6f", Date().timeIntervalSince1970)),
            ("level", jsonString(event.level.rawValue)),
            ("logger", jsonString(label)),
            ("msg", jsonString("\(event.message)")),
        ]
        var merged = metadata
        if let m = event.metadata { merged.merge(m) { $1 } }
        for (k, v) in merged.sorted(by: { $0.key < $1.key }) { fields.append((k, jsonString("\(v)"))) }
        if event.level >= .warning { fields.append(("caller", jsonString("\((event.file as NSString).lastPathComponent):\(event.line)"))) }
        let line = "{" + fields.map { "\(jsonString($0.0)):\($0.1)" }.joined(separator: ",") + "}\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}
