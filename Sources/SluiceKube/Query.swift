/// URL query building exactly as Go's `url.Values.Encode()` does it: keys sorted, values
/// escaped with `url.QueryEscape` (unreserved characters kept, space as `+`, the rest `%XX`).
public enum Query {
    public static func escape(_ s: String) -> String {
        var out = ""
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                 UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "):
                out += "+"
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%"
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0xF)]))
            }
        }
        return out
    }

    /// `k=v&…` sorted by key (stable for equal keys).
    public static func encode(_ items: [(String, String)]) -> String {
        items.enumerated()
            .sorted { ($0.element.0, $0.offset) < ($1.element.0, $1.offset) }
            .map { "\(escape($0.element.0))=\(escape($0.element.1))" }
            .joined(separator: "&")
    }
}
