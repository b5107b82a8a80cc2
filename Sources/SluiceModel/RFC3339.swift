import Foundation

/// An RFC 3339 timestamp (`2026-11-26T18:19:03Z`, `…T18:19:03.123456+02:00`), as
/// Kubernetes writes `metapb.Time` and `endpoints.kubernetes.io/last-change-trigger-time`:
/// read by hand, since every EndpointSlice the controller writes carries one and a
/// formatter per slice cost more than the rest of staging it. Nil when malformed
/// (a lowercase `t`/`z` and a space separator are accepted, as RFC 3339 allows).
func parseRFC3339(_ text: String) -> Date? {
    var copy = text
    return copy.withUTF8 { RFC3339Bytes($0).date }
}

private struct RFC3339Bytes {
    let b: UnsafeBufferPointer<UInt8>
    init(_ b: UnsafeBufferPointer<UInt8>) { self.b = b }

    var date: Date? {
        guard b.count >= 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
              [UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")].contains(b[10]),
              b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
              let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
              (1...12).contains(month), day >= 1, day <= Self.days(inMonth: month, year: year),
              hour < 24, minute < 60, second < 60 else { return nil }
        var i = 19
        var fraction = 0.0
        if b[i] == UInt8(ascii: ".") {
            var scale = 0.1
            i += 1
            let start = i
            while i < b.count, let d = digit(i) {
                fraction += Double(d) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        guard let offset = zoneOffset(from: i) else { return nil }
        let days = Self.daysFromCivil(year: year, month: month, day: day)
        let seconds = ((days * 24 + hour) * 60 + minute) * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    /// Seconds east of UTC of the zone at `i` (`Z` or `±hh:mm`), which must end the text.
    private func zoneOffset(from i: Int) -> Int? {
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") { return i + 1 == b.count ? 0 : nil }
        guard b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), i + 6 == b.count, b[i + 3] == UInt8(ascii: ":"),
              let h = number(i + 1, 2), let m = number(i + 4, 2), h < 24, m < 60 else { return nil }
        return (b[i] == UInt8(ascii: "-") ? -1 : 1) * (h * 3600 + m * 60)
    }

    private func digit(_ i: Int) -> Int? {
        let c = b[i]
        return c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") ? Int(c - UInt8(ascii: "0")) : nil
    }

    private func number(_ start: Int, _ length: Int) -> Int? {
        var n = 0
        for i in start..<start + length {
            guard let d = digit(i) else { return nil }
            n = n * 10 + d
        }
        return n
    }

    static func days(inMonth m: Int, year y: Int) -> Int {
        switch m {
        case 2: return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
