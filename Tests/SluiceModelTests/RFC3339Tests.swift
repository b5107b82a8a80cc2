import Foundation
import Testing
@testable import SluiceModel

/// `parseRFC3339` reads trigger times by hand; it must agree with Foundation's ISO 8601
/// formatter on what both accept, and refuse what is malformed.
@Suite("RFC 3339 timestamps")
struct RFC3339Tests {
    static func reference(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)
    }

    @Test("agrees with ISO8601DateFormatter", arguments: [
        "2026-11-26T18:19:03Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "2000-02-29T12:00:00Z",
        "2024-12-31T23:59:59.5Z", "2026-11-26T18:19:03.123Z", "2026-11-26T18:19:03+02:00",
        "2026-11-26T18:19:03-05:30", "2026-01-01T00:00:00.250+01:00", "2100-03-01T00:00:00Z",
    ])
    func agrees(_ text: String) throws {
        let mine = try #require(parseRFC3339(text))
        let theirs = try #require(Self.reference(text))
        #expect(abs(mine.timeIntervalSince1970 - theirs.timeIntervalSince1970) < 1e-3)
    }

    @Test("nanoseconds as Kubernetes writes them", arguments: ["2026-11-26T18:19:03.123456789Z"])
    func nanoseconds(_ text: String) throws {
        let d = try #require(parseRFC3339(text))
        #expect(abs(d.timeIntervalSince1970 - 1_795_717_143.123456789) < 1e-5)
    }

    @Test("refuses malformed text", arguments: [
        "", "2026-11-26", "2026-11-26T18:19:03", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
        "2025-02-29T00:00:00Z", "2026-11-26T24:00:00Z", "2026-11-26T18:60:00Z", "2026-11-26T18:19:60Z",
        "2026-11-26T18:19:03.Z", "2026-11-26T18:19:03Zjunk", "2026-11-26T18:19:03+0200", "2026/11/26T18:19:03Z",
        "20x6-11-26T18:19:03Z", "2026-11-26T18:19:03+25:00",
    ])
    func refuses(_ text: String) {
        #expect(parseRFC3339(text) == nil)
    }
}
