import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Counts complete reads of one file by any process (inotify `IN_CLOSE_NOWRITE` on the
/// file's inode): how a test learns that a daemon has looked at a file again, instead of
/// sleeping for as long as its check interval is hoped to be.
///
/// The watch follows the inode that `path` names when it is created: a file replaced by a
/// rename afterwards is not watched, so create the watch after the last such write.
public final class FileReads: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var seen = 0
    private var closed = false

    public init(path: String) throws {
        self.path = path
        fd = inotify_init1(Int32(IN_NONBLOCK) | Int32(IN_CLOEXEC))
        guard fd >= 0 else { throw FileReadsError("inotify_init1: errno \(errno)") }
        guard inotify_add_watch(fd, path, UInt32(IN_CLOSE_NOWRITE)) >= 0 else {
            let e = errno
            Glibc.close(fd)
            throw FileReadsError("inotify_add_watch \(path): errno \(e)")
        }
    }

    /// Reads of the file completed since the watch was created (never blocks).
    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return seen }
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= n {
                let (mask, len) = buf.withUnsafeBytes { raw -> (UInt32, UInt32) in
                    let e = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    return (e.mask, e.len)
                }
                if mask & UInt32(IN_CLOSE_NOWRITE) != 0 { seen += 1 }
                offset += MemoryLayout<inotify_event>.size + Int(len)
            }
        }
        return seen
    }

    public func close() {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    deinit { close() }
}

public struct FileReadsError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
