#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SluiceModel

/// Watches manifest files and directories (`--source`, repeatable) and delivers every change
/// as a delta. The files are those `ManifestLoader` reads: recursive, `.yaml`/`.yml`/`.json`,
/// hidden entries such as a ConfigMap mount's `..data` skipped. Symlinks are followed.
///
/// With inotify (Linux), the directories are watched recursively, along with the directories
/// of symlink targets; see `ManifestWatchSet`. A written, renamed or deleted file is read
/// again alone, at once. A ConfigMap volume's atomic `..data` swap, a new or removed
/// directory, or a lost event triggers a rescan: every file is `stat`ed and only files whose
/// device, inode, size or times changed are parsed again. If inotify is unavailable or a
/// watch cannot be added, the source polls that way every `interval` (default 200 ms).
///
/// An object defined in two files is taken from the first file in path order (a warning names
/// both). A file that cannot be parsed contributes the documents that did parse; its errors
/// are reported once per change of the file.
public struct ManifestDirectorySource: ObjectSource {
    public var paths: [String]
    /// The polling interval, used only when inotify cannot watch the sources.
    public var interval: Duration
    /// Use inotify when it works (false: always poll; tests of the fallback).
    public var useInotify: Bool

    public init(paths: [String], interval: Duration = .milliseconds(200), useInotify: Bool = true) {
        self.paths = paths
        self.interval = interval
        self.useInotify = useInotify
    }

    public var name: String { "manifests:" + paths.joined(separator: ",") }

    public func run(deliver: @escaping @Sendable (SourceDelta) -> Void) async throws {
        var watcher = Watcher(paths: paths)
        var delivered = false
        #if canImport(Glibc)
        if useInotify, let inotify = try? Inotify() {
            defer { inotify.close() }
            if try await follow(inotify, &watcher, &delivered, deliver: deliver) { return }
        }
        #endif
        try await poll(&watcher, delivered: delivered, deliver: deliver)
    }

    /// Polls every `interval` until cancelled.
    private func poll(_ watcher: inout Watcher, delivered: Bool,
                      deliver: @escaping @Sendable (SourceDelta) -> Void) async throws {
        var first = !delivered
        while !Task.isCancelled {
            let (delta, _) = watcher.poll()
            if first || !delta.isEmpty || !delta.diagnostics.isEmpty { deliver(delta) }
            first = false
            try await Task.sleep(for: interval)
        }
    }

    #if canImport(Glibc)
    /// Follows inotify events until cancelled (true), or returns false once a watch cannot be
    /// set up, for the caller to poll instead.
    private func follow(_ inotify: Inotify, _ watcher: inout Watcher, _ delivered: inout Bool,
                        deliver: @escaping @Sendable (SourceDelta) -> Void) async throws -> Bool {
        var watches = ManifestWatchSet(roots: paths)
        // Watch before the first scan, so that nothing written meanwhile is missed.
        guard watches.sync(inotify, files: []) else { return false }
        // The first scan goes out in parts of 8 files while the next ones are parsed.
        let (initial, _) = watcher.poll(inPartsOf: 8, deliver: deliver)
        guard watches.sync(inotify, files: watcher.files.keys) else { return false }
        deliver(initial)
        delivered = true
        for await events in inotify.events {
            let action = watches.action(for: events)
            if action.isEmpty { continue }
            let delta: SourceDelta
            if action.rescan {
                // Watch new directories before listing them, then the new files' link targets.
                guard watches.sync(inotify, files: watcher.files.keys) else { return false }
                delta = watcher.poll().delta
                guard watches.sync(inotify, files: watcher.files.keys) else { return false }
            } else {
                delta = watcher.refresh(files: action.files).delta
            }
            if !delta.isEmpty || !delta.diagnostics.isEmpty { deliver(delta) }
        }
        try Task.checkCancellation()
        return false  // the reader stopped on its own: poll from here on
    }
    #endif

    static func stamp(_ path: String) -> Stamp? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Stamp(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), size: Int64(st.st_size),
                     mtimeSec: Int(st.st_mtim.tv_sec), mtimeNsec: Int(st.st_mtim.tv_nsec),
                     ctimeSec: Int(st.st_ctim.tv_sec), ctimeNsec: Int(st.st_ctim.tv_nsec))
    }
}

extension ManifestDirectorySource {
    /// What identifies a version of a file without reading it.
    struct Stamp: Hashable, Sendable {
        var dev: UInt64, ino: UInt64, size: Int64, mtimeSec: Int, mtimeNsec: Int, ctimeSec: Int, ctimeNsec: Int
    }

    /// One file's version and objects (first of each key; `<unnamed file#i>` for objects
    /// without a name, so that validation reports each).
    struct FileState: Sendable {
        var stamp: Stamp
        /// Position in path order: the index of the source path, then the file path.
        var rank: Rank
        var objects: [ProxyObjectKey: SourcedObject]
        /// What each YAML document gave: an edit re-parses only the documents it changed.
        var documents: DocumentCache
    }

    struct Rank: Comparable, Sendable {
        var root: Int
        var path: String
        static func < (a: Rank, b: Rank) -> Bool { (a.root, a.path) < (b.root, b.path) }
    }

    /// The files' state and what was delivered. `poll()` rescans; `refresh(files:)` reads the
    /// named files only. Both cost O(changed files + their objects).
    public struct Watcher: Sendable {
        public var paths: [String]
        var files: [String: FileState] = [:]
        /// The files defining each key, in path order (the first one wins).
        private var definers: [ProxyObjectKey: [Rank]] = [:]
        /// What was delivered last.
        public private(set) var current: [ProxyObjectKey: SourcedObject] = [:]
        private var reportedDuplicates: Set<String> = []

        public init(paths: [String]) { self.paths = paths }

        /// Lists the manifest files, reads the changed ones, forgets the vanished ones;
        /// returns the delta (possibly empty) and whether anything on disk changed.
        public mutating func poll() -> (delta: SourceDelta, changed: Bool) {
            poll(inPartsOf: Int.max) { _ in }
        }

        /// `poll()`, handing `deliver` the changes of every `filesPerPart` files (in path
        /// order) as soon as they are read, each with `synced: false`, so that a first scan's
        /// consumer stages one part while the next is parsed; returns the rest (the vanished
        /// files) and whether anything on disk changed.
        public mutating func poll(inPartsOf filesPerPart: Int,
                                  deliver: (SourceDelta) -> Void) -> (delta: SourceDelta, changed: Bool) {
            var listed: [String: Rank] = [:]
            for (i, path) in paths.enumerated() {
                for file in Self.manifestFiles(path) where listed[file] == nil { listed[file] = Rank(root: i, path: file) }
            }
            let order = listed.keys.sorted { listed[$0]! < listed[$1]! }
            let size = max(1, filesPerPart)
            var changed = false
            var changes = Changes()
            for start in stride(from: 0, to: order.count, by: size) {
                let part = order[start..<min(order.count, start + size)]
                let loaded = Self.loadConcurrently(part.map { (file: $0, previous: files[$0]) })
                for (i, file) in part.enumerated() { integrate(file, rank: listed[file]!, loaded[i], &changes) }
                // With several parts each one goes out now; a single one is the result.
                guard size < order.count else { continue }
                changed = changed || changes.changed
                var delta = resolve(changes)
                delta.synced = false
                if !delta.isEmpty || !delta.diagnostics.isEmpty { deliver(delta) }
                changes = Changes()
            }
            for file in files.keys where listed[file] == nil { remove(file, &changes) }
            return (resolve(changes), changed || changes.changed)
        }

        /// One file read from disk: nil when it is gone or unchanged since `previous`.
        struct Loaded: Sendable {
            var stamp: Stamp
            var result: ManifestLoader.Result
            var documents: DocumentCache
        }

        /// Reads a file unless its stamp says it is unchanged (`.none`); `.some(nil)`: it is gone.
        static func load(_ file: String, previous: FileState?) -> Loaded?? {
            guard let stamp = ManifestDirectorySource.stamp(file) else { return .some(nil) }
            if previous?.stamp == stamp { return .none }
            var documents = previous?.documents ?? DocumentCache()
            let result = ManifestLoader().loadFile(file, documents: &documents)
            return Loaded(stamp: stamp, result: result, documents: documents)
        }

        /// Parses files on every core (a scan of many files is YAML-bound); results in order.
        static func loadConcurrently(_ files: [(file: String, previous: FileState?)]) -> [Loaded??] {
            files.concurrentMap(workers: ProcessInfo.processInfo.activeProcessorCount) { _, f in load(f.file, previous: f.previous) }
        }

        /// Reads the named files again (a file that is gone is forgotten).
        public mutating func refresh(files changed: Set<String>) -> (delta: SourceDelta, changed: Bool) {
            var changes = Changes()
            for file in changed {
                guard let rank = files[file]?.rank ?? rank(of: file) else { continue }
                update(file, rank: rank, &changes)
            }
            return (resolve(changes), changes.changed)
        }

        /// Keys touched and problems found while reading.
        private struct Changes {
            var keys: Set<ProxyObjectKey> = []
            var diagnostics: [Diagnostic] = []
            var changed = false
        }

        static func manifestFiles(_ path: String) -> [String] {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return [] }
            return isDir.boolValue ? ManifestLoader().manifestFiles(under: path) : [path]
        }

        /// The rank of a file under one of the source paths (named by an event).
        private func rank(of file: String) -> Rank? {
            for (i, path) in paths.enumerated() {
                let dir = path.hasSuffix("/") ? path : path + "/"
                if file == path || file.hasPrefix(dir) { return Rank(root: i, path: file) }
            }
            return nil
        }

        private mutating func update(_ file: String, rank: Rank, _ changes: inout Changes) {
            integrate(file, rank: rank, Self.load(file, previous: files[file]), &changes)
        }

        /// Takes a file read from disk; the keys whose object changed (or appeared, or went)
        /// are touched. Unchanged documents were not parsed again and their objects compare
        /// equal at once (same storage), so an edit costs what it changed.
        private mutating func integrate(_ file: String, rank: Rank, _ loaded: Loaded??, _ changes: inout Changes) {
            guard case .some(let read) = loaded else { return }   // unchanged
            guard let read else { return remove(file, &changes) }
            let stamp = read.stamp
            changes.changed = true
            let previous = files[file]
            changes.diagnostics += read.result.diagnostics
            var objects: [ProxyObjectKey: SourcedObject] = [:]
            for (i, object) in read.result.objects.sourcedObjects.enumerated() {
                var key = object.object.key
                if key.name.isEmpty { key.name = "<unnamed \(file)#\(i)>" }
                if let first = objects[key] {
                    changes.diagnostics.append(duplicate(key, file: file, first: first.file))
                    continue
                }
                objects[key] = object
            }
            let old = previous?.rank == rank ? previous?.objects ?? [:] : [:]
            if previous != nil && previous?.rank != rank { remove(file, &changes) }
            for (key, object) in objects where old[key] != object {
                changes.keys.insert(key)
                if old[key] == nil {
                    definers[key, default: []].append(rank)
                    definers[key]!.sort()
                }
            }
            for key in old.keys where objects[key] == nil {
                definers[key]?.removeAll { $0 == rank }
                if definers[key]?.isEmpty == true { definers[key] = nil }
                changes.keys.insert(key)
            }
            files[file] = FileState(stamp: stamp, rank: rank, objects: objects, documents: read.documents)
        }

        private mutating func remove(_ file: String, _ changes: inout Changes) {
            guard let old = files.removeValue(forKey: file) else { return }
            changes.changed = true
            for key in old.objects.keys {
                definers[key]?.removeAll { $0 == old.rank }
                if definers[key]?.isEmpty == true { definers[key] = nil }
                changes.keys.insert(key)
            }
        }

        /// The delta for the touched keys: each one's winner now against what was delivered.
        private mutating func resolve(_ changes: Changes) -> SourceDelta {
            guard changes.changed || !changes.keys.isEmpty else { return SourceDelta(diagnostics: changes.diagnostics) }
            var delta = SourceDelta(diagnostics: changes.diagnostics, synced: true)
            for key in changes.keys {
                let ranks = definers[key] ?? []
                for loser in ranks.dropFirst() where reportedDuplicates.insert("\(key) \(loser.path)").inserted {
                    delta.diagnostics.append(duplicate(key, file: loser.path, first: ranks[0].path))
                }
                let winner = ranks.first.flatMap { files[$0.path]?.objects[key] }
                if winner == current[key] { continue }
                if let winner { delta.upserts[key] = winner } else { delta.deletes.insert(key) }
                current[key] = winner
            }
            return delta
        }

        private func duplicate(_ key: ProxyObjectKey, file: String, first: String?) -> Diagnostic {
            Diagnostic(severity: .warning, file: file, kind: key.kind.rawValue,
                       namespace: key.namespace.isEmpty ? nil : key.namespace, name: key.name,
                       message: "duplicate object (first one in \(first ?? "?") is used); ignored")
        }
    }
}
