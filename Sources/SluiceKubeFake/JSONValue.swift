import Foundation
import SluiceModel

/// A JSON document as the fake stores it: objects keep every field (unknown ones included), so
/// what a test writes is what the client receives.
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Parses JSON text: by `JSONReader` (integers and the rest), or by `JSONDecoder` where
    /// the reader cannot (fractions, exponents).
    public static func parse(_ text: String) throws -> JSONValue {
        let bytes = Array(text.utf8)
        if let value = JSONReader.read(bytes, read) { return value }
        return try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    private static func read(_ r: inout JSONReader) throws -> JSONValue {
        switch try r.peekKind() {
        case .null: _ = try r.readNull(); return .null
        case .bool: return .bool(try r.readBool())
        case .number: return .int(Int64(try r.readInt()))
        case .string: return .string(try r.readString())
        case .array:
            var items: [JSONValue] = []
            try r.readArray { items.append(try read(&$0)) }
            return .array(items)
        case .object:
            var members: [String: JSONValue] = [:]
            try r.readObject { r, key in
                let name = key.text
                guard members[name] == nil else { throw r.unsupported() }
                members[name] = try read(&r)
            }
            return .object(members)
        }
    }

    /// Any Encodable value (e.g. a SluiceModel object) as JSON.
    public static func from<T: Encodable>(_ value: T) throws -> JSONValue {
        let data = try JSONEncoder().encode(value)
        return try JSONReader.read(data, read) ?? JSONDecoder().decode(JSONValue.self, from: data)
    }

    /// Decodes this value as `T`.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(rendered().utf8))
    }

    public subscript(key: String) -> JSONValue? {
        get { if case .object(let o) = self { return o[key] } else { return nil } }
        set {
            guard case .object(var o) = self else { return }
            o[key] = newValue
            self = .object(o)
        }
    }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }

    /// `metadata.labels` as a dictionary.
    var labels: [String: String] {
        guard case .object(let l)? = self["metadata"]?["labels"] else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in l { if let s = v.stringValue { out[k] = s } }
        return out
    }

    var name: String { self["metadata"]?["name"]?.stringValue ?? "" }
    var namespace: String? { self["metadata"]?["namespace"]?.stringValue }

    /// Compact JSON (no newlines), keys sorted except `kind`, `apiVersion`, `metadata` first,
    /// like the API server's struct order.
    public func rendered() -> String {
        var out = ""
        render(into: &out)
        return out
    }

    private static let leadingKeys = ["kind", "apiVersion", "metadata"]

    func render(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isFinite, d == d.rounded(), abs(d) < 1e15 { out += String(Int64(d)) } else { out += "\(d)" }
        case .string(let s): Self.renderString(s, into: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                v.render(into: &out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            let keys = Self.leadingKeys.filter { o[$0] != nil } + o.keys.filter { !Self.leadingKeys.contains($0) }.sorted()
            for (i, k) in keys.enumerated() {
                if i > 0 { out += "," }
                Self.renderString(k, into: &out)
                out += ":"
                o[k]!.render(into: &out)
            }
            out += "}"
        }
    }

    static func renderString(_ s: String, into out: inout String) {
        out += "\""
        defer { out += "\"" }
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "<")
                                    || $0 == UInt8(ascii: ">") || $0 == UInt8(ascii: "&") }) {
            out += s
            return
        }
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"   // Go's encoder escapes HTML characters
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            default:
                if u.value < 0x20 {
                    out += String(format: "\\u%04x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
    }
}
