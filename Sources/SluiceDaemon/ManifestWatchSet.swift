#if canImport(Glibc)
import Foundation
import Glibc
import SluiceModel

/// The directories the manifest source watches with inotify, and what an event in each means.
///
/// - Every source directory and its non-hidden subdirectories, recursively, are *tree*
///   directories: an event names a manifest file in place,
///   and only that file is read again.
/// - The directory of a file's symlink target (a ConfigMap volume's `..2026_…` directory
///   behind `..data`), and the parent of a source that is a single file, are *target*
///   directories: an event there means "rescan" (stat every file, read the changed ones).
/// - In a tree directory, a new or removed directory, or a hidden entry that is (or points
///   to) a directory, such as `..data` renamed over by a ConfigMap update, also means rescan.
struct ManifestWatchSet {
    enum Role: Sendable { case tree, target }

    /// What a batch of events asks for.
    struct Action: Equatable {
        var rescan = false
        var files: Set<String> = []
        var isEmpty: Bool { !rescan && files.isEmpty }
    }

    let roots: [String]
    private(set) var watched: [Int32: (path: String, role: Role)] = [:]

    init(roots: [String]) { self.roots = roots }

    /// The directories to watch now, given the manifest files currently tracked.
    func desired(files: some Sequence<String>) -> [String: Role] {
        var out: [String: Role] = [:]
        for root in roots where isDirectory(root) {
            for dir in treeDirectories(root) { out[dir] = .tree }
        }
        for root in roots where !isDirectory(root) {
            let parent = (root as NSString).deletingLastPathComponent
            out[parent.isEmpty ? "." : parent] = .target
        }
        for file in files {
            guard let real = realPath(file), real != file else { continue }
            let dir = (real as NSString).deletingLastPathComponent
            if out[dir] == nil { out[dir] = .target }
        }
        return out
    }

    /// Adds the desired watches and drops the others. False when a watch could not be added
    /// for a reason other than the directory having vanished meanwhile (e.g. the inotify
    /// watch limit): events may then be missed, and the caller falls back to polling.
    mutating func sync(_ inotify: Inotify, files: some Sequence<String>) -> Bool {
        var next: [Int32: (path: String, role: Role)] = [:]
        var complete = true
        for (path, role) in desired(files: files).sorted(by: { $0.key < $1.key }) {
            do {
                let wd = try inotify.add(path)
                // One inode reached by two paths is one watch; a target role wins (rescan).
                if next[wd]?.role != .target { next[wd] = (path, role) }
            } catch let failure as Inotify.Failure where failure.errno == ENOENT || failure.errno == ENOTDIR {
                continue
            } catch {
                complete = false
            }
        }
        for wd in watched.keys where next[wd] == nil { inotify.remove(wd) }
        watched = next
        return complete
    }

    /// What a batch of events asks for.
    func action(for events: [InotifyEvent]) -> Action {
        var action = Action()
        for event in events {
            switch classify(event) {
            case .ignore: break
            case .rescan: action.rescan = true
            case .file(let path): action.files.insert(path)
            }
        }
        return action
    }

    private enum Meaning { case ignore, rescan, file(String) }

    private func classify(_ event: InotifyEvent) -> Meaning {
        if event.has(IN_Q_OVERFLOW) || event.has(IN_DELETE_SELF) || event.has(IN_MOVE_SELF) { return .rescan }
        guard let dir = watched[event.wd] else { return event.has(IN_IGNORED) ? .ignore : .rescan }
        if event.has(IN_IGNORED) { return .rescan }
        if dir.role == .target { return .rescan }
        let path = dir.path + "/" + event.name
        if event.has(IN_ISDIR) { return event.name.hasPrefix(".") ? .ignore : .rescan }
        if event.name.hasPrefix(".") { return isDirectory(path) ? .rescan : .ignore }
        let ext = (event.name as NSString).pathExtension.lowercased()
        guard ManifestLoader.manifestExtensions.contains(ext) else { return .ignore }
        // A regular file being created is read once it is closed (IN_CLOSE_WRITE); a symlink
        // is complete when it appears.
        if event.has(IN_CREATE) && !isSymlink(path) { return .ignore }
        return .file(path)
    }

    /// `root` and its non-hidden subdirectories (each directory once).
    private func treeDirectories(_ root: String) -> [String] {
        var out: [String] = []
        var seen: Set<String> = []
        var stack = [root]
        while let dir = stack.popLast() {
            guard let real = realPath(dir), seen.insert(real).inserted else { continue }
            out.append(dir)
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            for name in entries where !name.hasPrefix(".") {
                let child = dir.hasSuffix("/") ? dir + name : dir + "/" + name
                // Symlinked subdirectories are not walked (the loader's listing does not
                // descend into them either).
                if isDirectory(child) && !isSymlink(child) { stack.append(child) }
            }
        }
        return out
    }
}

/// `stat` (following symlinks) says directory.
func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

/// `lstat` says symlink.
func isSymlink(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
}

/// The canonical path (symlinks resolved), or nil if it does not exist.
func realPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}
#endif
