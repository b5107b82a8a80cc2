#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SluiceModel

/// Watches manifest files and directories (`--source`, repeatable) by polling: every
/// `interval` (default 200 ms) it lists the manifest files (as `ManifestLoader` does:
/// recursive, `.yaml`/`.yml`/`.json`, hidden entries such as a ConfigMap mount's `..data`
/// skipped) and `stat`s them; only files whose device, inode, size or modification time
/// changed are parsed again. Symlinks are followed, so a ConfigMap volume's atomic
/// `..data` swap is seen as a change of every file.
///
/// Each change is delivered as a delta against the previous state. An object defined in
/// two files is taken from the first file in path order (a warning names both). A file
/// that cannot be parsed contributes the documents that did parse; its errors are
/// reported once per change of the file.
public struct ManifestDirectorySource: ObjectSource {
    public var paths: [String]
    public var interval: Duration

    public init(paths: [String], interval: Duration = .milliseconds(200)) {
        self.paths = paths
        self.interval = interval
    }

    public var name: String { "manifests:" + paths.joined(separator: ",") }

    /// What identifies a version of a file without reading it.
    struct Stamp: Hashable {
        var dev: UInt64, ino: UInt64, size: Int64, mtimeSec: Int, mtimeNsec: Int, ctimeSec: Int, ctimeNsec: Int
    }

    struct FileState {
        var stamp: Stamp
        var objects: [SourcedObject]
    }

    /// The poller's state; `poll()` is one step (public for tests that drive it by hand).
    public struct Watcher: Sendable {
        public var paths: [String]
        fileprivate var files: [String: FileStateBox] = [:]
        /// What was delivered last.
        public private(set) var current: [ProxyObjectKey: SourcedObject] = [:]
        private var reportedDuplicates: Set<String> = []

        public init(paths: [String]) { self.paths = paths }

        /// Re-reads changed files; returns the delta (possibly empty) and whether anything
        /// on disk changed.
        public mutating func poll() -> (delta: SourceDelta, changed: Bool) {
            var diagnostics: [Diagnostic] = []
            var list: [String] = []
            let loader = ManifestLoader()
            for path in paths {
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                    list += isDir.boolValue ? loader.manifestFiles(under: path) : [path]
                }
            }
            var changed = false
            var seen = Set<String>()
            for file in list where seen.insert(file).inserted {
                guard let stamp = ManifestDirectorySource.stamp(file) else { continue }
                if files[file]?.state.stamp == stamp { continue }
                changed = true
                let result = loader.loadFile(file)
                diagnostics += result.diagnostics
                files[file] = FileStateBox(state: FileState(stamp: stamp, objects: result.objects.sourcedObjects))
            }
            for file in files.keys where !seen.contains(file) {
                files[file] = nil
                changed = true
            }
            guard changed else { return (SourceDelta(), false) }
            var merged: [ProxyObjectKey: SourcedObject] = [:]
            for file in list where files[file] != nil {
                for (i, object) in files[file]!.state.objects.enumerated() {
                    var key = object.object.key
                    // Objects without a name stay distinct so that validation reports each.
                    if key.name.isEmpty { key.name = "<unnamed \(file)#\(i)>" }
                    if let first = merged[key] {
                        let text = "\(key) \(file)"
                        if reportedDuplicates.insert(text).inserted {
                            diagnostics.append(Diagnostic(severity: .warning, file: file, kind: key.kind.rawValue,
                                                          namespace: key.namespace.isEmpty ? nil : key.namespace, name: key.name,
                                                          message: "duplicate object (first one in \(first.file ?? "?") is used); ignored"))
                        }
                        continue
                    }
                    merged[key] = object
                }
            }
            var delta = SourceDelta(diagnostics: diagnostics, synced: true)
            for (k, v) in merged where current[k] != v { delta.upserts[k] = v }
            for k in current.keys where merged[k] == nil { delta.deletes.insert(k) }
            current = merged
            return (delta, true)
        }
    }

    public func run(deliver: @escaping @Sendable (SourceDelta) async -> Void) async throws {
        var watcher = Watcher(paths: paths)
        var first = true
        while !Task.isCancelled {
            let (delta, _) = watcher.poll()
            if first || !delta.isEmpty || !delta.diagnostics.isEmpty {
                await deliver(delta)
            }
            first = false
            try await Task.sleep(for: interval)
        }
    }

    static func stamp(_ path: String) -> Stamp? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Stamp(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), size: Int64(st.st_size),
                     mtimeSec: Int(st.st_mtim.tv_sec), mtimeNsec: Int(st.st_mtim.tv_nsec),
                     ctimeSec: Int(st.st_ctim.tv_sec), ctimeNsec: Int(st.st_ctim.tv_nsec))
    }
}

/// Boxes a file's state so the watcher stays `Sendable` (values only).
struct FileStateBox: Sendable {
    var state: ManifestDirectorySource.FileState
}

extension ManifestDirectorySource.FileState: Sendable {}
extension ManifestDirectorySource.Stamp: Sendable {}
