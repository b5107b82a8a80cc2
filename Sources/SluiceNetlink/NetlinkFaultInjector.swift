import CNftnl
import Foundation
import Glibc
import SluiceIR

/// A test seam under `NetlinkSocket`'s funnel: a plan of faults aimed at numbered nf_tables
/// batches, consulted at every batch `sendmsg` and every `recv` of the sockets it is
/// attached to (`NetlinkSocket.faults`). With no injector attached a socket pays one nil
/// check per call. Configured only from tests (`@testable import SluiceNetlink`); nothing
/// in the CLI or the daemon can set it.
///
/// Batches are numbered from 1 in the order they are sent through any socket the injector
/// is attached to; `NftablesApplier` carries it over to the socket it opens after one was
/// closed, so the count goes on across a reopen. Thread-safe (a streamed cold start sends
/// on a second thread).
final class NetlinkFaultInjector: @unchecked Sendable {
    /// What happens to one batch.
    enum Fault: Sendable {
        /// `sendmsg` fails with `errno`, `times` times in a row: nothing reaches the kernel.
        /// EINTR is retried by the socket, so `sendError(EINTR, times: 2)` is two
        /// interruptions and then a batch that goes through.
        case sendError(Int32, times: Int = 1)
        /// The batch reaches the kernel, then the first `times` receives of its verdict fail
        /// with `errno`. ENOBUFS also throws away every reply already queued (the socket
        /// overran: they are lost); any other errno leaves them queued (a late reply, as
        /// after a receive timeout, EAGAIN).
        case receiveError(Int32, times: Int = 1)
        /// The kernel refuses the batch: a message it rejects (deleting a table that does
        /// not exist: ENOENT) is put after the batch's own messages, so the kernel processes
        /// all of them and then rolls the whole batch back.
        case refuse
        /// The socket is closed right after the batch was sent: the kernel has the batch,
        /// its verdict is lost, and every later call on the socket fails with EBADF.
        case closeAfterSend
        /// Runs `action` just before the batch is sent: e.g. a commit from another socket,
        /// which moves the ruleset generation so that the kernel refuses the batch (ERESTART).
        case beforeSend(@Sendable () -> Void)
    }

    /// The table the injected refusal deletes; it never exists.
    static let refusalTable = "sluice-injected-refusal"

    private let lock = NSLock()
    private var plan: [Int: [Fault]]
    private var sent = 0
    private var sendErrors: [(errno: Int32, left: Int)] = []
    private var receiveErrors: [(errno: Int32, left: Int)] = []
    private var injectedCount = 0

    /// `plan`: the faults of each batch, by batch number (1 = the first batch sent).
    init(_ plan: [Int: [Fault]]) {
        self.plan = plan
    }

    /// Aims `faults` at the next batch sent (after those already planned for it).
    func armNext(_ faults: Fault...) {
        locked { plan[sent + 1, default: []] += faults }
    }

    /// Batches sent so far (attempts: a batch whose `sendmsg` failed counts too).
    var batchesSent: Int { locked { sent } }
    /// Faults that took effect: each errno returned, each refusal, close and action.
    var injected: Int { locked { injectedCount } }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Called once per batch before its first `sendmsg`: counts it, runs its `beforeSend`
    /// actions, arms its send and receive errors, and applies a refusal to `iov`. Returns
    /// what `afterBatchSent` needs and what must stay alive until the send is over.
    func willSendBatch(_ iov: inout [iovec]) -> PreparedBatch {
        let faults: [Fault] = locked {
            sent += 1
            let faults = plan.removeValue(forKey: sent) ?? []
            for f in faults {
                switch f {
                case .sendError(let e, let n): sendErrors.append((e, n))
                case .receiveError(let e, let n): receiveErrors.append((e, n))
                default: break
                }
            }
            return faults
        }
        var prepared = PreparedBatch()
        for f in faults {
            switch f {
            case .beforeSend(let action): action()
            case .refuse: prepared.refusal = Self.appendRefusal(to: &iov)
            case .closeAfterSend: prepared.close = true
            case .sendError, .receiveError: break
            }
        }
        let effective = faults.filter {
            switch $0 {
            case .beforeSend, .closeAfterSend: return true
            case .refuse: return prepared.refusal != nil
            case .sendError, .receiveError: return false  // counted when they fire
            }
        }.count
        if effective > 0 { locked { injectedCount += effective } }
        return prepared
    }

    /// Whether this `sendmsg` attempt fails, and with which errno.
    func sendErrno() -> Int32? { locked { take(&sendErrors) } }

    /// Whether this `recv` fails, and with which errno.
    func receiveErrno() -> Int32? { locked { take(&receiveErrors) } }

    private func take(_ armed: inout [(errno: Int32, left: Int)]) -> Int32? {
        guard !armed.isEmpty else { return nil }
        let e = armed[0].errno
        armed[0].left -= 1
        if armed[0].left <= 0 { armed.removeFirst() }
        injectedCount += 1
        return e
    }

    /// Per-batch state between `willSendBatch` and the end of the send.
    struct PreparedBatch {
        /// The refusal message (freed once sent).
        var refusal: UnsafeMutableRawPointer?
        /// Close the socket once the batch is sent.
        var close = false

        func release() { refusal?.deallocate() }
    }

    /// Inserts a DELTABLE of `refusalTable` right before NFNL_MSG_BATCH_END (the last
    /// message of the last iovec), with the end marker's sequence number so the reply
    /// belongs to the batch. Returns the message's buffer (nil if no end marker was found).
    private static func appendRefusal(to iov: inout [iovec]) -> UnsafeMutableRawPointer? {
        guard let last = iov.last, let base = last.iov_base else { return nil }
        var offset = 0
        var endOffset: Int?
        while offset + MemoryLayout<nlmsghdr>.size <= last.iov_len {
            let h = base.advanced(by: offset).assumingMemoryBound(to: nlmsghdr.self)
            if h.pointee.nlmsg_type == UInt16(NLMSG_MIN_TYPE + 1) { endOffset = offset; break }  // NFNL_MSG_BATCH_END
            offset += Int(sluice_nlmsg_align(h.pointee.nlmsg_len))
        }
        guard let endOffset, let table = try? Lower.table(refusalTable) else { return nil }
        let seq = base.advanced(by: endOffset).assumingMemoryBound(to: nlmsghdr.self).pointee.nlmsg_seq
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 8)
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: 512)
        let h = nftnl_nlmsg_build_hdr(buffer.assumingMemoryBound(to: CChar.self), MsgType.delTable, Family.ip.nfproto, 0, seq)!
        nftnl_table_nlmsg_build_payload(h, table.raw)
        let message = iovec(iov_base: buffer, iov_len: Int(h.pointee.nlmsg_len))
        let before = iovec(iov_base: base, iov_len: endOffset)
        let end = iovec(iov_base: base.advanced(by: endOffset), iov_len: last.iov_len - endOffset)
        iov.removeLast()
        iov += [before, message, end]
        return buffer
    }
}

extension NetlinkSocket {
    /// Consulted before a batch's `sendmsg` (only when an injector is attached).
    func injectBeforeBatch(_ faults: NetlinkFaultInjector, _ iov: inout [iovec]) throws -> NetlinkFaultInjector.PreparedBatch {
        try failIfClosed("sendmsg")
        return faults.willSendBatch(&iov)
    }

    /// After a batch went out: closes the socket if the plan says so.
    func injectAfterBatch(_ prepared: NetlinkFaultInjector.PreparedBatch) {
        prepared.release()
        if prepared.close { closeUnderneath() }
    }

    /// Consulted at every `recv` (only when an injector is attached): a closed socket fails
    /// with EBADF; an armed receive error is returned (ENOBUFS first drops what is queued).
    func injectedReceiveErrno(_ faults: NetlinkFaultInjector) -> Int32? {
        if isClosed { return EBADF }
        guard let e = faults.receiveErrno() else { return nil }
        if e == ENOBUFS { discardQueued() }
        return e
    }

    /// Throws EBADF if the injector closed this socket.
    func failIfClosed(_ operation: String) throws {
        if isClosed { throw NetlinkError(kind: .system, errno: EBADF, operation: operation, detail: "socket closed (injected fault)") }
    }

    /// Closes the netlink socket in the kernel (its port id is released, a table it owned is
    /// orphaned) while keeping the descriptor number taken by `/dev/null`, so `deinit`
    /// closes a descriptor that is still ours.
    private func closeUnderneath() {
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        if devNull >= 0 {
            dup2(devNull, fd)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            close(devNull)
        }
        isClosed = true
    }

    /// Reads and drops every datagram queued on the socket.
    private func discardQueued() {
        var scratch = [UInt8](repeating: 0, count: 65536)
        while scratch.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) >= 0 {}
    }
}
