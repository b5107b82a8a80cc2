import Foundation
import SluiceDaemon
import SluiceModel
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What a source delivered, applied in order.
final class DeliveredState: @unchecked Sendable {
    private let lock = NSLock()
    private var objects: [ProxyObjectKey: SourcedObject] = [:]
    private var deltas = 0

    func apply(_ delta: SourceDelta) {
        lock.lock()
        defer { lock.unlock() }
        for key in delta.deletes { objects[key] = nil }
        for (key, object) in delta.upserts { objects[key] = object }
        deltas += 1
    }

    var count: Int { lock.lock(); defer { lock.unlock() }; return deltas }

    func clusterIP(of name: String) -> String? {
        lock.lock()
        defer { lock.unlock() }
        guard case .service(let s)? = objects[ProxyObjectKey(kind: .service, namespace: "default", name: name)]?.object else { return nil }
        return s.spec.clusterIP
    }
}

/// Runs a manifest source that would poll only once an hour, so that every change seen
/// within the test's timeout came through inotify.
func withInotifySource(_ paths: [String], _ body: (DeliveredState) async throws -> Void) async throws {
    let state = DeliveredState()
    let source = ManifestDirectorySource(paths: paths, interval: .seconds(3600))
    let task = Task { try await source.run { state.apply($0) } }
    defer { task.cancel() }
    try await waitUntil("the initial delta") { state.count >= 1 }
    try await body(state)
}

@Suite("Manifest directory source: inotify")
struct ManifestDirectorySourceTests {
    @Test("an edit, a new file in a new subdirectory and a deletion arrive without polling")
    func editsArriveAtOnce() async throws {
        let dir = try ManifestDir()
        defer { dir.close() }
        try dir.write("a.yaml", serviceYAML("a", clusterIP: "10.96.0.10"))
        try await withInotifySource([dir.path]) { state in
            #expect(state.clusterIP(of: "a") == "10.96.0.10")
            try dir.write("a.yaml", serviceYAML("a", clusterIP: "10.96.0.11"))
            try await waitUntil("the edit of a.yaml") { state.clusterIP(of: "a") == "10.96.0.11" }
            // A directory that appears is watched too.
            try FileManager.default.createDirectory(atPath: dir.path + "/sub/deeper", withIntermediateDirectories: true)
            try serviceYAML("b", clusterIP: "10.96.0.20").write(toFile: dir.path + "/sub/deeper/b.yaml", atomically: false, encoding: .utf8)
            try await waitUntil("b.yaml in a new directory") { state.clusterIP(of: "b") == "10.96.0.20" }
            try serviceYAML("b", clusterIP: "10.96.0.21").write(toFile: dir.path + "/sub/deeper/b.yaml", atomically: true, encoding: .utf8)
            try await waitUntil("the edit of b.yaml") { state.clusterIP(of: "b") == "10.96.0.21" }
            try dir.remove("a.yaml")
            try await waitUntil("the deletion of a.yaml") { state.clusterIP(of: "a") == nil }
        }
    }

    @Test("a ConfigMap volume's ..data swap is seen, also the second time")
    func configMapSwap() async throws {
        let dir = try ManifestDir()
        defer { dir.close() }
        let volume = ConfigMapVolume(dir.path)
        try volume.publish(["svc.yaml": serviceYAML("cm", clusterIP: "10.96.1.1")], version: 1)
        try await withInotifySource([dir.path]) { state in
            #expect(state.clusterIP(of: "cm") == "10.96.1.1")
            try volume.publish(["svc.yaml": serviceYAML("cm", clusterIP: "10.96.1.2")], version: 2)
            try await waitUntil("the first swap") { state.clusterIP(of: "cm") == "10.96.1.2" }
            try volume.publish(["svc.yaml": serviceYAML("cm", clusterIP: "10.96.1.3")], version: 3)
            try await waitUntil("the second swap") { state.clusterIP(of: "cm") == "10.96.1.3" }
        }
    }

    @Test("a file symlinked from outside the source directory is followed when its target is edited")
    func symlinkTargetEdit() async throws {
        let dir = try ManifestDir()
        let elsewhere = try ManifestDir()
        defer { dir.close(); elsewhere.close() }
        try elsewhere.write("real.yaml", serviceYAML("s", clusterIP: "10.96.2.1"))
        #expect(symlink(elsewhere.path + "/real.yaml", dir.path + "/s.yaml") == 0)
        try await withInotifySource([dir.path]) { state in
            #expect(state.clusterIP(of: "s") == "10.96.2.1")
            try serviceYAML("s", clusterIP: "10.96.2.2").write(toFile: elsewhere.path + "/real.yaml", atomically: false, encoding: .utf8)
            try await waitUntil("the edit of the symlink target") { state.clusterIP(of: "s") == "10.96.2.2" }
        }
    }

    @Test("refresh(files:) reads only the named files")
    func refreshReadsOnlyNamedFiles() throws {
        let dir = try ManifestDir()
        defer { dir.close() }
        try dir.write("a.yaml", serviceYAML("a", clusterIP: "10.96.0.10"))
        try dir.write("b.yaml", serviceYAML("b", clusterIP: "10.96.0.20"))
        var w = ManifestDirectorySource.Watcher(paths: [dir.path])
        #expect(w.poll().delta.upserts.count == 2)
        try dir.write("a.yaml", serviceYAML("a", clusterIP: "10.96.0.11"))
        try dir.write("b.yaml", serviceYAML("b", clusterIP: "10.96.0.21"))
        let d = w.refresh(files: [dir.path + "/a.yaml"]).delta
        #expect(d.upserts.keys.map(\.name) == ["a"] && d.deletes.isEmpty)
        // b.yaml was not read: a rescan finds it changed.
        #expect(w.poll().delta.upserts.keys.map(\.name) == ["b"])
    }

    @Test("a first scan goes out in parts of files, in path order, not synced; the rest (what vanished) comes back synced")
    func firstScanInParts() throws {
        let dir = try ManifestDir()
        defer { dir.close() }
        for i in 0..<20 { try dir.write(String(format: "s%02d.yaml", i), serviceYAML("s\(i)", clusterIP: "10.96.0.\(10 + i)")) }
        try dir.write("zdup.yaml", serviceYAML("s3", clusterIP: "10.96.1.3"))   // after s03.yaml: loses
        var w = ManifestDirectorySource.Watcher(paths: [dir.path])
        var parts: [SourceDelta] = []
        let rest = w.poll(inPartsOf: 8) { parts.append($0) }.delta
        #expect(parts.count == 3 && parts.allSatisfy { !$0.synced })
        #expect(parts.map(\.upserts.count) == [8, 8, 4])
        #expect(parts[0].upserts.keys.map(\.name).sorted() == ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"])
        #expect(rest.synced && rest.isEmpty)
        let state = DeliveredState()
        for p in parts { state.apply(p) }
        #expect(state.clusterIP(of: "s3") == "10.96.0.13" && state.clusterIP(of: "s19") == "10.96.0.29")
        #expect(parts.flatMap(\.diagnostics).contains { $0.description.contains("duplicate") })
        // Unchanged files are not parts of a later scan; a vanished one is in the rest.
        try FileManager.default.removeItem(atPath: dir.path + "/s19.yaml")
        parts = []
        let second = w.poll(inPartsOf: 8) { parts.append($0) }.delta
        #expect(parts.isEmpty && second.deletes.map(\.name) == ["s19"])
    }

    @Test("without inotify the source polls")
    func pollingFallback() async throws {
        let dir = try ManifestDir()
        defer { dir.close() }
        try dir.write("a.yaml", serviceYAML("a", clusterIP: "10.96.0.10"))
        let state = DeliveredState()
        let source = ManifestDirectorySource(paths: [dir.path], interval: .milliseconds(50), useInotify: false)
        let task = Task { try await source.run { state.apply($0) } }
        defer { task.cancel() }
        try await waitUntil("the initial delta") { state.clusterIP(of: "a") == "10.96.0.10" }
        try dir.write("a.yaml", serviceYAML("a", clusterIP: "10.96.0.11"))
        try await waitUntil("the polled edit") { state.clusterIP(of: "a") == "10.96.0.11" }
    }
}

/// A ConfigMap volume as the kubelet writes it: `..<version>/` holds the files, `..data`
/// links to it, and each file name links into `..data`. An update writes a new version
/// directory, renames a fresh `..data_tmp` link over `..data` and removes the old directory.
struct ConfigMapVolume {
    let path: String
    init(_ path: String) { self.path = path }

    func publish(_ files: [String: String], version: Int) throws {
        let fm = FileManager.default
        let versionDir = "..2026_12_05_00_00_0\(version).000000\(version)"
        let old = try? fm.destinationOfSymbolicLink(atPath: path + "/..data")
        try fm.createDirectory(atPath: path + "/" + versionDir, withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(toFile: path + "/" + versionDir + "/" + name, atomically: false, encoding: .utf8)
        }
        guard symlink(versionDir, path + "/..data_tmp") == 0, rename(path + "/..data_tmp", path + "/..data") == 0 else {
            throw DaemonError("cannot swap ..data")
        }
        for name in files.keys where (try? fm.destinationOfSymbolicLink(atPath: path + "/" + name)) == nil {
            guard symlink("..data/" + name, path + "/" + name) == 0 else { throw DaemonError("cannot link \(name)") }
        }
        if let old { try fm.removeItem(atPath: path + "/" + old) }
    }
}
