#if canImport(Glibc)
import Foundation
import Glibc
import Synchronization

/// One inotify event: the watch it came from, what happened and the entry's name (empty for
/// events on the watched directory itself).
struct InotifyEvent: Sendable, Hashable {
    var wd: Int32
    var mask: UInt32
    var name: String

    func has(_ flag: Int32) -> Bool { mask & UInt32(bitPattern: flag) != 0 }

    /// Events of a raw `read(2)` buffer (`struct inotify_event` records with NUL-padded names).
    static func parse(_ bytes: UnsafeRawBufferPointer) -> [InotifyEvent] {
        var events: [InotifyEvent] = []
        var offset = 0
        let header = 16  // wd, mask, cookie, len
        while offset + header <= bytes.count {
            let wd = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
            let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let len = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            let nameBytes = bytes[(offset + header)..<min(offset + header + len, bytes.count)]
            let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
            events.append(InotifyEvent(wd: wd, mask: mask, name: name))
            offset += header + len
        }
        return events
    }
}

/// An inotify instance: watches are added and removed from any thread; a dedicated thread
/// reads the events and yields them in batches (whatever one read returned) to `events`.
/// `close()` stops the thread and closes the descriptor.
final class Inotify: Sendable {
    /// What the manifest source needs to see: files written, renamed, deleted, created
    /// (symlinks), attributes changed, and the watched directory itself going away.
    static let mask = UInt32(bitPattern: IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE
                                 | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

    struct Failure: Error, CustomStringConvertible {
        var call: String
        var errno: Int32
        var description: String { "\(call): \(String(cString: strerror(errno)))" }
    }

    let events: AsyncStream<[InotifyEvent]>
    private let fd: Int32
    private let stopped = Atomic<Bool>(false)
    private let continuation: AsyncStream<[InotifyEvent]>.Continuation

    init() throws {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw Failure(call: "inotify_init1", errno: errno) }
        self.fd = fd
        (events, continuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
        let thread = Thread { [self] in readLoop() }
        thread.name = "sluice-inotify"
        thread.start()
    }

    /// Watches a directory (following a symlink to it); returns the watch descriptor.
    func add(_ path: String) throws -> Int32 {
        let wd = inotify_add_watch(fd, path, Self.mask | UInt32(IN_ONLYDIR))
        guard wd >= 0 else { throw Failure(call: "inotify_add_watch \(path)", errno: errno) }
        return wd
    }

    func remove(_ wd: Int32) { _ = inotify_rm_watch(fd, wd) }

    /// Stops the reader thread (within its 100 ms poll timeout), which then closes the descriptor.
    func close() {
        stopped.store(true, ordering: .relaxed)
    }

    private func readLoop() {
        let size = 64 * 1024
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
        defer {
            buffer.deallocate()
            Glibc.close(fd)
            continuation.finish()
        }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while !stopped.load(ordering: .relaxed) {
            guard poll(&pfd, 1, 100) > 0 else { continue }
            let n = read(fd, buffer.baseAddress, size)
            if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            guard n > 0 else { return }
            continuation.yield(InotifyEvent.parse(UnsafeRawBufferPointer(rebasing: buffer[0..<n])))
        }
    }
}
#endif
