import CNftnl
import Foundation
import Glibc
import SluiceIR

/// One element change announced by the kernel (`NFT_MSG_NEWSETELEM` / `NFT_MSG_DELSETELEM`),
/// captured only while `CommitMonitor.captureElements` is on.
public struct CommittedElement: Sendable, Equatable {
    public var family: Family
    public var table: String
    public var set: String
    public var added: Bool
    /// `NFTA_DATA_VALUE` of the key and (maps) of the data, in network byte order.
    public var key: [UInt8]
    public var data: [UInt8]
}

/// One committed nf_tables transaction, as announced by `NFT_MSG_NEWGEN` (the last message of
/// every commit's notifications), with what the notifications before it reported.
public struct CommitEvent: Sendable {
    /// `CommitMonitor.now()` when the NEWGEN notification was read.
    public var time: Double
    /// The new ruleset generation id.
    public var generation: UInt32
    /// The committing task (the kernel reports the thread id) and process name, when named.
    public var pid: UInt32?
    public var processName: String?
    /// Elements added and deleted by this transaction, per family (an interval such as
    /// `10.96.0.0/12` counts once, as in nft, although the kernel stores its two ends).
    public var elementsAdded: [Family: Int] = [:]
    public var elementsDeleted: [Family: Int] = [:]
    /// Other object notifications (tables, chains, sets, rules) of this transaction.
    public var otherMessages = 0
    /// The element changes, when capturing.
    public var elements: [CommittedElement] = []
}

/// Listens on the nf_tables multicast group (`NFNLGRP_NFTABLES`) of a network namespace and
/// reports every committed transaction, timestamped when its `NFT_MSG_NEWGEN` arrives.
///
/// A reader thread receives the notifications; `next(timeout:)` hands the events out in
/// order; call `stop()` when done. While anyone listens on the group the kernel builds a notification per changed
/// object (element messages included), which adds to the cost of every commit in the namespace.
public final class CommitMonitor: @unchecked Sendable {
    private let socket: NetlinkSocket
    private let cond = NSCondition()
    private var queue: [CommitEvent] = []
    private var head = 0
    private var pending = CommitEvent(time: 0, generation: 0)
    private var stopping = false
    private var finished = false
    private var capture = false
    private var lostNotifications = 0
    private var readerError: String?

    /// The clock of `CommitEvent.time` (CLOCK_MONOTONIC seconds).
    public static func now() -> Double { monotonicSeconds() }

    /// Subscribes in the caller's namespace, or in `/run/netns/<namespace>`, and starts reading.
    public init(namespace: String? = nil, receiveBufferBytes: Int = 64 << 20) throws {
        socket = try NetlinkSocket(namespace: namespace)
        try socket.forceReceiveBuffer(receiveBufferBytes)
        try socket.setReceiveTimeout(seconds: 0.1)
        try socket.joinGroup(UInt32(NFNLGRP_NFTABLES.rawValue))
        let t = Thread { [self] in readLoop() }
        t.name = "sluice-commit-monitor"
        t.start()
    }

    /// Record every element change in the events (off by default: cheap counting only).
    public var captureElements: Bool {
        get { cond.lock(); defer { cond.unlock() }; return capture }
        set { cond.lock(); capture = newValue; cond.unlock() }
    }

    /// Notifications the kernel dropped because the receive buffer was full (ENOBUFS); when
    /// non-zero, element counts are incomplete.
    public var overruns: Int { cond.lock(); defer { cond.unlock() }; return lostNotifications }

    /// The next commit, waiting up to `timeout` seconds; nil on timeout or after `stop()`.
    public func next(timeout: Double) -> CommitEvent? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        cond.lock()
        defer { cond.unlock() }
        while head == queue.count && !finished {
            if !cond.wait(until: deadline) { break }
        }
        guard head < queue.count else { return nil }
        let e = queue[head]
        head += 1
        if head > 4096 && head * 2 > queue.count { queue.removeFirst(head); head = 0 }
        return e
    }

    /// Every commit already received, without waiting.
    public func drain() -> [CommitEvent] {
        cond.lock()
        defer { cond.unlock() }
        let out = Array(queue[head...])
        queue = []
        head = 0
        return out
    }

    /// Stops the reader thread (idempotent); queued events stay readable.
    public func stop() {
        cond.lock()
        stopping = true
        while !finished { cond.wait() }
        cond.unlock()
    }

    /// Why the reader stopped early, if it did.
    public var failure: String? { cond.lock(); defer { cond.unlock() }; return readerError }

    private func readLoop() {
        while true {
            cond.lock()
            let stop = stopping
            cond.unlock()
            if stop { break }
            do {
                try socket.receive { handle($0) }
            } catch let e as NetlinkError where e.errno == EAGAIN || e.errno == EWOULDBLOCK || e.errno == EINTR {
                continue
            } catch let e as NetlinkError where e.errno == ENOBUFS {
                cond.lock(); lostNotifications += 1; cond.unlock()
            } catch {
                cond.lock(); readerError = "\(error)"; cond.unlock()
                break
            }
        }
        cond.lock()
        finished = true
        cond.broadcast()
        cond.unlock()
    }

    /// One notification: counts it into the pending transaction; NEWGEN closes it.
    private func handle(_ h: UnsafePointer<nlmsghdr>) {
        let type = h.pointee.nlmsg_type
        guard type >> 8 == UInt16(NFNL_SUBSYS_NFTABLES) else { return }
        let msg = UInt32(type & 0xff)
        let family = Self.family(h)
        switch msg {
        case NFT_MSG_NEWGEN.rawValue:
            closeTransaction(h)
        case NFT_MSG_NEWSETELEM.rawValue, NFT_MSG_DELSETELEM.rawValue:
            let added = msg == NFT_MSG_NEWSETELEM.rawValue
            cond.lock()
            let capturing = capture
            cond.unlock()
            let n = capturing ? captureElements(h, family: family, added: added) : Self.countElements(h)
            if let family {
                if added { pending.elementsAdded[family, default: 0] += n } else { pending.elementsDeleted[family, default: 0] += n }
            }
        default:
            pending.otherMessages += 1
        }
    }

    private func closeTransaction(_ h: UnsafePointer<nlmsghdr>) {
        var e = pending
        e.time = monotonicSeconds()
        Self.walk(h) { type, attr in
            switch UInt32(type) {
            case NFTA_GEN_ID.rawValue: e.generation = UInt32(bigEndian: mnl_attr_get_u32(attr))
            case NFTA_GEN_PROC_PID.rawValue: e.pid = UInt32(bigEndian: mnl_attr_get_u32(attr))
            case NFTA_GEN_PROC_NAME.rawValue: e.processName = String(cString: mnl_attr_get_str(attr))
            default: break
            }
        }
        pending = CommitEvent(time: 0, generation: 0)
        cond.lock()
        queue.append(e)
        cond.broadcast()
        cond.unlock()
    }

    private static func family(_ h: UnsafePointer<nlmsghdr>) -> Family? {
        let nfproto = UnsafeRawPointer(mnl_nlmsg_get_payload(h)!).load(as: UInt8.self)
        switch nfproto {
        case 2: return .ip
        case 10: return .ip6
        default: return nil
        }
    }

    /// Calls `body` for each top-level attribute after the nfgenmsg header.
    private static func walk(_ h: UnsafePointer<nlmsghdr>, _ body: (UInt16, UnsafePointer<nlattr>) -> Void) {
        let start = UnsafeRawPointer(h).advanced(by: Int(sluice_nfgen_payload_offset()))
        let len = Int(h.pointee.nlmsg_len) - Int(sluice_nfgen_payload_offset())
        forEachAttribute(start, len, body)
    }

    /// Calls `body` for each nested attribute of `a`.
    private static func nested(_ a: UnsafePointer<nlattr>, _ body: (UInt16, UnsafePointer<nlattr>) -> Void) {
        forEachAttribute(UnsafeRawPointer(mnl_attr_get_payload(a)!), Int(mnl_attr_get_payload_len(a)), body)
    }

    /// Elements listed in one element message (normally one per notification).
    private static func countElements(_ h: UnsafePointer<nlmsghdr>) -> Int {
        var n = 0
        walk(h) { type, attr in
            guard UInt32(type) == NFTA_SET_ELEM_LIST_ELEMENTS.rawValue else { return }
            nested(attr) { _, elem in if !isIntervalEnd(elem) { n += 1 } }
        }
        return n
    }

    private func captureElements(_ h: UnsafePointer<nlmsghdr>, family: Family?, added: Bool) -> Int {
        var table = "", set = ""
        var found: [(key: [UInt8], data: [UInt8])] = []
        Self.walk(h) { type, attr in
            switch UInt32(type) {
            case NFTA_SET_ELEM_LIST_TABLE.rawValue: table = String(cString: mnl_attr_get_str(attr))
            case NFTA_SET_ELEM_LIST_SET.rawValue: set = String(cString: mnl_attr_get_str(attr))
            case NFTA_SET_ELEM_LIST_ELEMENTS.rawValue:
                Self.nested(attr) { _, elem in if !Self.isIntervalEnd(elem) { found.append(Self.keyAndData(elem)) } }
            default: break
            }
        }
        if let family {
            for f in found {
                pending.elements.append(CommittedElement(family: family, table: table, set: set, added: added, key: f.key, data: f.data))
            }
        }
        return found.count
    }

    /// An interval set's end marker (NFT_SET_ELEM_INTERVAL_END): the kernel's half of an
    /// element such as `10.96.0.0/12`, which is one element in nft's (and the IR's) terms.
    private static func isIntervalEnd(_ elem: UnsafePointer<nlattr>) -> Bool {
        var end = false
        nested(elem) { type, attr in
            if UInt32(type) == NFTA_SET_ELEM_FLAGS.rawValue {
                end = UInt32(bigEndian: mnl_attr_get_u32(attr)) & UInt32(NFT_SET_ELEM_INTERVAL_END.rawValue) != 0
            }
        }
        return end
    }

    /// NFTA_SET_ELEM_KEY / NFTA_SET_ELEM_DATA → their NFTA_DATA_VALUE bytes.
    private static func keyAndData(_ elem: UnsafePointer<nlattr>) -> (key: [UInt8], data: [UInt8]) {
        var key: [UInt8] = [], data: [UInt8] = []
        nested(elem) { type, attr in
            guard UInt32(type) == NFTA_SET_ELEM_KEY.rawValue || UInt32(type) == NFTA_SET_ELEM_DATA.rawValue else { return }
            var bytes: [UInt8] = []
            nested(attr) { t, v in
                guard UInt32(t) == NFTA_DATA_VALUE.rawValue else { return }
                let p = UnsafeRawPointer(mnl_attr_get_payload(v)!)
                bytes = Array(UnsafeRawBufferPointer(start: p, count: Int(mnl_attr_get_payload_len(v))))
            }
            if UInt32(type) == NFTA_SET_ELEM_KEY.rawValue { key = bytes } else { data = bytes }
        }
        return (key, data)
    }
}
