/// Kubernetes API machinery: `metav1.Status` error bodies and the errors this module throws.
import SluiceModel

/// A `metav1.Status` as the API server sends it in error responses and in watch `ERROR` events.
public struct APIStatus: Sendable, Hashable, Codable {
    public var kind: String?
    public var apiVersion: String?
    public var status: String?
    public var message: String?
    public var reason: String?
    public var code: Int?
    public var details: Details?
    public var metadata: ListMeta?

    public init(message: String? = nil, reason: String? = nil, code: Int? = nil) {
        self.kind = "Status"
        self.apiVersion = "v1"
        self.status = "Failure"
        self.message = message
        self.reason = reason
        self.code = code
    }

    public struct Details: Sendable, Hashable, Codable {
        public var name: String?
        public var kind: String?
        public var causes: [Cause]?
        public var retryAfterSeconds: Int?
    }

    public struct Cause: Sendable, Hashable, Codable {
        public var reason: String?
        public var message: String?
        public var field: String?
    }

    /// `410 Expired`/`Gone` (too old resource version, expired continue token).
    public var isExpired: Bool { code == 410 || reason == "Expired" || reason == "Gone" }

    /// The 504 "Too large resource version" answer (client-go `isTooLargeResourceVersionError`).
    public var isTooLargeResourceVersion: Bool {
        if details?.causes?.contains(where: { $0.reason == "ResourceVersionTooLarge" }) == true { return true }
        return (message ?? "").contains("Too large resource version")
    }
}

/// `metadata` of a list (and of some Status bodies).
public struct ListMeta: Sendable, Hashable, Codable {
    public var resourceVersion: String?
    public var `continue`: String?
    public var remainingItemCount: Int?
}

extension ListMeta {
    /// As `init(from:)` through `JSONDecoder` (see `JSONReader`).
    init(json r: inout JSONReader) throws {
        var seen = JSONSeenKeys()
        try r.readObject { r, key in
            switch key {
            case "resourceVersion": try seen.mark(0, r); resourceVersion = try r.readOptionalString()
            case "continue": try seen.mark(1, r); self.continue = try r.readOptionalString()
            case "remainingItemCount": try seen.mark(2, r); remainingItemCount = try r.readOptionalInt()
            default: try r.skipValue()
            }
        }
    }
}

/// Errors from talking to the API server.
public enum KubeAPIError: Error, Sendable, CustomStringConvertible {
    /// The server answered with a non-2xx status (body decoded as a Status when it was one).
    case status(httpCode: Int, status: APIStatus?, retryAfter: Duration?)
    /// A watch stream carried an `ERROR` event.
    case watchError(APIStatus)
    /// A body could not be decoded.
    case decoding(String)
    /// Connection refused, reset, TLS failure, timeout …
    case transport(String)

    public var httpCode: Int? {
        switch self {
        case .status(let code, _, _): code
        case .watchError(let s): s.code
        default: nil
        }
    }

    public var apiStatus: APIStatus? {
        switch self {
        case .status(_, let s, _): s
        case .watchError(let s): s
        default: nil
        }
    }

    /// 410 on a list/watch, or an `ERROR` event with code 410.
    public var isExpired: Bool {
        httpCode == 410 || (apiStatus?.isExpired ?? false)
    }

    /// The server does not serve lists by watch (`sendInitialEvents`): 422 Invalid while
    /// its WatchList gate is off, 400 from servers that predate it.
    public var refusesWatchList: Bool {
        if case .status(let code, _, _) = self { return code == 422 || code == 400 }
        return false
    }

    public var isTooLargeResourceVersion: Bool {
        apiStatus?.isTooLargeResourceVersion ?? false
    }

    /// `Retry-After` header, else `details.retryAfterSeconds`.
    public var retryAfter: Duration? {
        if case .status(_, _, let ra?) = self { return ra }
        if let s = apiStatus?.details?.retryAfterSeconds, s > 0 { return .seconds(s) }
        return nil
    }

    public var description: String {
        switch self {
        case .status(let code, let status, _):
            "HTTP \(code)\(status?.reason.map { " \($0)" } ?? ""): \(status?.message ?? "(no Status body)")"
        case .watchError(let s):
            "watch ERROR event \(s.code ?? 0) \(s.reason ?? ""): \(s.message ?? "")"
        case .decoding(let m): "decoding error: \(m)"
        case .transport(let m): "transport error: \(m)"
        }
    }
}
