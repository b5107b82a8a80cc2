import Glibc
import SluiceIR

/// A failure of the netlink datapath: a libnftnl/libmnl call, a socket call, or a kernel
/// reply (`NLMSG_ERROR` with a negative errno) to one message of a batch.
///
/// Kernel errors carry the IR `Operation` whose message the kernel rejected and the
/// kernel's extended-ack text (`NLMSGERR_ATTR_MSG`), when it sent one.
public struct NetlinkError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, coarsely.
    public enum Kind: Sendable, Equatable {
        /// The kernel rejected a message of a batch (the batch was rolled back).
        case kernel
        /// A system or library call failed locally (socket, setns, allocation …).
        case system
        /// The IR asks for something this lowering cannot express.
        case unsupported
        /// The ruleset generation moved on since we last looked (a concurrent writer).
        case generationMismatch
        /// A reply could not be parsed.
        case malformedReply
        /// A batch was sent but its verdict never arrived (the receive failed or the socket
        /// was closed): the kernel applied all of it or none of it, and only reading the
        /// tables back tells which. `errno` is the receive's.
        case outcomeUnknown
    }

    public var kind: Kind
    /// The positive errno value (0 when not applicable).
    public var errno: Int32
    /// The errno's symbolic name, e.g. `ENOENT`.
    public var errnoName: String
    /// The call or netlink message that failed, e.g. `sendmsg` or `NFT_MSG_NEWRULE`.
    public var operation: String
    /// The IR operation whose message the kernel rejected.
    public var irOperation: SluiceIR.Operation?
    /// The kernel's extended-ack message, if any.
    public var kernelMessage: String?
    /// Free-form detail.
    public var detail: String?

    public init(kind: Kind, errno: Int32 = 0, operation: String, irOperation: SluiceIR.Operation? = nil,
                kernelMessage: String? = nil, detail: String? = nil) {
        self.kind = kind
        self.errno = errno
        self.errnoName = errno == 0 ? "" : SluiceNetlink.errnoName(errno)
        self.operation = operation
        self.irOperation = irOperation
        self.kernelMessage = kernelMessage
        self.detail = detail
    }

    public var description: String {
        var s = "netlink \(kind) error in \(operation)"
        if errno != 0 { s += ": \(errnoName) (\(String(cString: strerror(errno))))" }
        if let kernelMessage, !kernelMessage.isEmpty { s += " — kernel: \(kernelMessage)" }
        if let irOperation { s += " — caused by IR operation \(describe(irOperation))" }
        if let detail { s += " — \(detail)" }
        return s
    }

    /// The kernel has no such table, chain, set or element (`ENOENT`).
    public var isNotFound: Bool { errno == ENOENT }

    /// The batch may or may not be in the kernel (its verdict was lost): what the caller
    /// believes is committed must be read back before it is trusted again.
    public var isOutcomeUnknown: Bool { kind == .outcomeUnknown }

    /// Someone else committed since the batch's state was read (the kernel refused it with
    /// ERESTART): nothing of it went in.
    public var isGenerationChanged: Bool { kind == .generationMismatch }

    /// The socket is gone (closed under its user): a new one must be opened.
    public var isSocketClosed: Bool { (kind == .system || kind == .outcomeUnknown) && (errno == EBADF || errno == ENOTSOCK) }

    /// A transient failure rather than a refusal of the content: the same change can
    /// succeed when tried again (after reading the tables back where the outcome is
    /// unknown or the generation changed): a lost verdict, a changed generation, a closed
    /// socket, or a system call that ran out of buffers or time.
    public var isRetriable: Bool {
        switch kind {
        case .outcomeUnknown, .generationMismatch: return true
        case .system: return [EINTR, EAGAIN, ENOBUFS, ENOMEM, ETIMEDOUT, EBADF, ENOTSOCK].contains(errno)
        case .kernel: return [ENOBUFS, ENOMEM, EAGAIN, EINTR].contains(errno)
        case .unsupported, .malformedReply: return false
        }
    }

    /// This error as a lost verdict (`.outcomeUnknown`), for a failure after the batch was sent.
    func verdictLost() -> NetlinkError {
        guard kind == .system else { return self }
        var e = self
        e.kind = .outcomeUnknown
        e.detail = (detail.map { $0 + "; " } ?? "") + "the batch was sent but its verdict was lost: the kernel applied all of it or none of it"
        return e
    }

    static func unsupported(_ what: String) -> NetlinkError {
        NetlinkError(kind: .unsupported, operation: "lowering", detail: what)
    }

    static func malformed(_ what: String) -> NetlinkError {
        NetlinkError(kind: .malformedReply, operation: "parse", detail: what)
    }
}

/// A short, human-readable rendering of an IR operation for error messages.
func describe(_ op: SluiceIR.Operation) -> String {
    switch op {
    case .addTable(let f, let t, _): return "add table \(f.rawValue) \(t)"
    case .deleteTable(let f, let t): return "delete table \(f.rawValue) \(t)"
    case .addChain(let f, let t, let c): return "add chain \(f.rawValue) \(t) \(c.name)"
    case .flushChain(let f, let t, let c): return "flush chain \(f.rawValue) \(t) \(c)"
    case .deleteChain(let f, let t, let c): return "delete chain \(f.rawValue) \(t) \(c)"
    case .addRule(let f, let t, let c, _): return "add rule \(f.rawValue) \(t) \(c)"
    case .addSet(let f, let t, let s): return "add \(s.isMap ? "map" : "set") \(f.rawValue) \(t) \(s.name)"
    case .deleteSet(let f, let t, let s): return "delete \(s.isMap ? "map" : "set") \(f.rawValue) \(t) \(s.name)"
    case .addElements(let f, let t, let s, let e): return "add element \(f.rawValue) \(t) \(s.name) (\(e.count) elements)"
    case .deleteElements(let f, let t, let s, let e): return "delete element \(f.rawValue) \(t) \(s.name) (\(e.count) elements)"
    }
}

private let errnoNames: [Int32: String] = Dictionary(([
    EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO", E2BIG: "E2BIG",
    EBADF: "EBADF", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT",
    EBUSY: "EBUSY", EEXIST: "EEXIST", ENODEV: "ENODEV", ENOTDIR: "ENOTDIR", EINVAL: "EINVAL",
    ENFILE: "ENFILE", EMFILE: "EMFILE", ENOSPC: "ENOSPC", ERANGE: "ERANGE", ELOOP: "ELOOP",
    ENAMETOOLONG: "ENAMETOOLONG", EMSGSIZE: "EMSGSIZE", EPROTO: "EPROTO", EOPNOTSUPP: "EOPNOTSUPP",
    ENOBUFS: "ENOBUFS", ETIMEDOUT: "ETIMEDOUT", ECONNREFUSED: "ECONNREFUSED", EAFNOSUPPORT: "EAFNOSUPPORT",
    EPROTONOSUPPORT: "EPROTONOSUPPORT", ERESTART: "ERESTART", EOVERFLOW: "EOVERFLOW", ENOTSOCK: "ENOTSOCK",
] as KeyValuePairs<Int32, String>).map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })

/// The symbolic name of an errno value (`ENOENT`), or `E<number>`.
public func errnoName(_ e: Int32) -> String { errnoNames[e] ?? "E\(e)" }

// MARK: - The funnel: every C call that can fail goes through one of these.

/// Unwraps the result of a libnftnl/libmnl allocator; `nil` becomes a typed error.
@inline(__always)
func cAlloc<T>(_ operation: String, _ body: () -> T?) throws(NetlinkError) -> T {
    if let v = body() { return v }
    throw NetlinkError(kind: .system, errno: Glibc.errno == 0 ? ENOMEM : Glibc.errno, operation: operation)
}

/// Checks the return code of a C call that reports failure as a negative value plus errno.
@inline(__always)
@discardableResult
func cCheck(_ operation: String, _ rc: Int32) throws(NetlinkError) -> Int32 {
    if rc >= 0 { return rc }
    throw NetlinkError(kind: .system, errno: Glibc.errno, operation: operation)
}

/// Checks the return code of a C call that returns `ssize_t`.
@inline(__always)
@discardableResult
func cCheck(_ operation: String, _ rc: Int) throws(NetlinkError) -> Int {
    if rc >= 0 { return rc }
    throw NetlinkError(kind: .system, errno: Glibc.errno, operation: operation)
}

/// Runs a system call again while it fails with EINTR (a signal arrived before it did anything).
@inline(__always)
func retryingEINTR<T: BinaryInteger>(_ call: () -> T) -> T {
    while true {
        let r = call()
        if r >= 0 || Glibc.errno != EINTR { return r }
    }
}
