import Foundation
import NIOConcurrencyHelpers

/// Where the bearer token comes from. A token file (a projected service-account token, rotated
/// by the kubelet) is re-read at most every `recheckInterval` (client-go: 1 minute) when its
/// modification time or size changed, and at once after `invalidate()` (called on a 401).
public final class TokenSource: Sendable {
    public enum Origin: Sendable, Hashable {
        case fixed(String)
        case file(String)
    }

    public let origin: Origin
    public let recheckInterval: Duration

    private struct State {
        var token: String?
        var lastCheck: ContinuousClock.Instant?
        var fileStamp: FileStamp?
        var invalidated = false
    }

    private struct FileStamp: Equatable {
        var mtime: Date?
        var size: Int?
    }

    private let state = NIOLockedValueBox(State())

    public init(_ origin: Origin, recheckInterval: Duration = .seconds(60)) {
        self.origin = origin
        self.recheckInterval = recheckInterval
    }

    /// The current token (trimmed of surrounding whitespace).
    public func token() throws -> String {
        switch origin {
        case .fixed(let t):
            return t
        case .file(let path):
            return try state.withLockedValue { s -> String in
                let now = ContinuousClock.now
                if let t = s.token, !s.invalidated, let last = s.lastCheck, now - last < recheckInterval {
                    return t
                }
                let stamp = Self.stamp(path)
                s.lastCheck = now
                if let t = s.token, !s.invalidated, stamp == s.fileStamp {
                    return t
                }
                let data: [UInt8]
                do {
                    data = try KubeClientConfiguration.readFile(path)
                } catch {
                    if let t = s.token { return t }   // keep the old token while the file is being replaced
                    throw error
                }
                let t = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                s.token = t
                s.fileStamp = stamp
                s.invalidated = false
                return t
            }
        }
    }

    /// Forces a re-read on the next `token()` (after a 401). Returns whether the token can change.
    @discardableResult
    public func invalidate() -> Bool {
        guard case .file = origin else { return false }
        state.withLockedValue { $0.invalidated = true }
        return true
    }

    private static func stamp(_ path: String) -> FileStamp? {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        return FileStamp(mtime: attrs[.modificationDate] as? Date, size: (attrs[.size] as? NSNumber)?.intValue)
    }
}
