import Foundation

/// A pull reader over the bytes of one JSON document, for the decoders written by hand for the
/// kinds that come by the hundred thousand (`Service(json:)`, `EndpointSlice(json:)`): they
/// read straight into model types, skip what the proxy does not read (`managedFields`,
/// `targetRef`, foreign annotations) without building it, and make no untyped tree.
///
/// The reader takes the plain shape only. Anything else throws `Unsupported`, and the caller
/// decodes the same bytes with `JSONDecoder` (`read(_:_:)` returns nil), so the result and
/// every error message are `JSONDecoder`'s own outside the plain shape:
/// - keys that are not ASCII (after their escapes);
/// - escapes that are not valid Unicode (a lone surrogate);
/// - numbers read as integers that have a fraction or an exponent, or overflow;
/// - a known key given twice;
/// - nesting deeper than `maxDepth`;
/// - anything `JSONDecoder` would reject (wrong types, `null` in a list, bad literals,
///   control characters in strings, trailing bytes).
///
/// Strings that are skipped are not checked for valid UTF-8.
public struct JSONReader {
    /// Thrown when the bytes are outside the plain shape (or not JSON); the caller falls back.
    public struct Unsupported: Error, Sendable {
        public let offset: Int
    }

    public static let maxDepth = 256

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// Reads one whole document with `body`: nil when the document is outside the plain shape,
    /// or when bytes other than whitespace follow it.
    public static func read<T>(_ bytes: [UInt8], _ body: (inout JSONReader) throws -> T) -> T? {
        bytes.withUnsafeBufferPointer { read($0, body) }
    }

    /// `read(_:_:)` over `Data`.
    public static func read<T>(_ data: Data, _ body: (inout JSONReader) throws -> T) -> T? {
        data.withUnsafeBytes { read($0.bindMemory(to: UInt8.self), body) }
    }

    static func read<T>(_ buffer: UnsafeBufferPointer<UInt8>, _ body: (inout JSONReader) throws -> T) -> T? {
        var reader = JSONReader(buffer)
        guard let value = try? body(&reader) else { return nil }
        reader.skipWhitespace()
        return reader.index == buffer.count ? value : nil
    }

    // MARK: Structure

    /// `{ "key": value, … }`: `member` reads (or skips) each value.
    public mutating func readObject(_ member: (inout JSONReader, JSONKey) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        try enter()
        defer { depth -= 1 }
        skipWhitespace()
        if try peek() == UInt8(ascii: "}") { index += 1; return }
        while true {
            skipWhitespace()
            let key = try readKey()
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            try member(&self, key)
            skipWhitespace()
            switch try next() {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "}"): return
            default: throw unsupported()
            }
        }
    }

    /// `[ value, … ]`: `element` reads (or skips) each value.
    public mutating func readArray(_ element: (inout JSONReader) throws -> Void) throws {
        try expect(UInt8(ascii: "["))
        try enter()
        defer { depth -= 1 }
        skipWhitespace()
        if try peek() == UInt8(ascii: "]") { index += 1; return }
        while true {
            try element(&self)
            skipWhitespace()
            switch try next() {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "]"): return
            default: throw unsupported()
            }
        }
    }

    /// What the next value is, by its first byte (nothing is consumed).
    public enum ValueKind: Sendable { case object, array, string, number, bool, null }

    public mutating func peekKind() throws -> ValueKind {
        skipWhitespace()
        switch try peek() {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: return .number
        }
    }

    /// Consumes `null` and returns true, or returns false before any other value.
    public mutating func readNull() throws -> Bool {
        skipWhitespace()
        guard try peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    // MARK: Values

    /// A string, escapes resolved; its text must be valid UTF-8 (a lone surrogate is not).
    public mutating func readString() throws -> String {
        skipWhitespace()
        let (start, end, ascii, escaped) = try scanString()
        if escaped {
            guard let s = String(validating: try unescape(start..<end), as: UTF8.self) else { throw unsupported() }
            return s
        }
        let text = UnsafeBufferPointer(rebasing: bytes[start..<end])
        if ascii { return String(decoding: text, as: UTF8.self) }
        guard let s = String(validating: text, as: UTF8.self) else { throw unsupported() }
        return s
    }

    /// An integer written as one (`-?[0-9]+`, no leading zero), within `Int`.
    public mutating func readInt() throws -> Int {
        skipWhitespace()
        let (digits, negative) = try scanIntegerPart()
        if index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): throw unsupported()
            default: break
            }
        }
        var value = 0
        for i in digits {
            let d = Int(bytes[i] &- UInt8(ascii: "0"))
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = negative ? m.subtractingReportingOverflow(d) : m.addingReportingOverflow(d)
            guard !o1, !o2 else { throw unsupported() }
            value = a
        }
        return value
    }

    /// `true` or `false`.
    public mutating func readBool() throws -> Bool {
        skipWhitespace()
        switch try peek() {
        case UInt8(ascii: "t"): try literal("true"); return true
        case UInt8(ascii: "f"): try literal("false"); return false
        default: throw unsupported()
        }
    }

    /// `null` → nil, else `read`.
    public mutating func readOptional<T>(_ read: (inout JSONReader) throws -> T) throws -> T? {
        try readNull() ? nil : read(&self)
    }

    public mutating func readOptionalString() throws -> String? { try readOptional { try $0.readString() } }
    public mutating func readOptionalInt() throws -> Int? { try readOptional { try $0.readInt() } }
    public mutating func readOptionalBool() throws -> Bool? { try readOptional { try $0.readBool() } }

    /// `null` → nil, else a list whose elements are never `null` (as `JSONDecoder` wants for
    /// `[T]?`).
    public mutating func readOptionalArray<T>(_ element: (inout JSONReader) throws -> T) throws -> [T]? {
        guard try !readNull() else { return nil }
        var out: [T] = []
        try readArray { r in
            guard try !r.readNull() else { throw r.unsupported() }
            out.append(try element(&r))
        }
        return out
    }

    public mutating func readOptionalStrings() throws -> [String]? {
        try readOptionalArray { try $0.readString() }
    }

    /// `null` → nil, else an object of strings (a label selector); a key given twice is
    /// outside the plain shape.
    public mutating func readOptionalStringMap() throws -> [String: String]? {
        guard try !readNull() else { return nil }
        var out: [String: String] = [:]
        try readObject { r, key in
            let value = try r.readString()
            guard out.updateValue(value, forKey: key.text) == nil else { throw r.unsupported() }
        }
        return out
    }

    /// Skips any one value, checking its syntax.
    public mutating func skipValue() throws {
        skipWhitespace()
        switch try peek() {
        case UInt8(ascii: "{"): try readObject { r, _ in try r.skipValue() }
        case UInt8(ascii: "["): try readArray { try $0.skipValue() }
        case UInt8(ascii: "\""): _ = try scanString()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: try skipNumber()
        }
    }

    /// The error to throw where the shape is not the plain one.
    public func unsupported() -> Unsupported { Unsupported(offset: index) }

    // MARK: Bytes

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): index += 1
            default: return
            }
        }
    }

    private func peek() throws -> UInt8 {
        guard index < bytes.count else { throw unsupported() }
        return bytes[index]
    }

    private mutating func next() throws -> UInt8 {
        let b = try peek()
        index += 1
        return b
    }

    private mutating func expect(_ byte: UInt8) throws {
        guard try next() == byte else { throw unsupported() }
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= Self.maxDepth else { throw unsupported() }
    }

    private mutating func literal(_ text: StaticString) throws {
        let n = text.utf8CodeUnitCount
        guard bytes.count - index >= n, memcmp(bytes.baseAddress! + index, text.utf8Start, n) == 0 else { throw unsupported() }
        index += n
    }

    /// `"…"` without control characters: the bounds of its text, whether it is ASCII, and
    /// whether it holds escapes.
    private mutating func scanString() throws -> (start: Int, end: Int, ascii: Bool, escaped: Bool) {
        try expect(UInt8(ascii: "\""))
        let start = index
        var high: UInt8 = 0
        var escaped = false
        while index < bytes.count {
            let b = bytes[index]
            index += 1
            switch b {
            case UInt8(ascii: "\""): return (start, index - 1, high < 0x80, escaped)
            case UInt8(ascii: "\\"):
                escaped = true
                try skipEscape()
            case ..<0x20: throw unsupported()
            default: high |= b
            }
        }
        throw unsupported()
    }

    /// The UTF-8 bytes of a string's text with its escapes (checked by `scanString`) resolved.
    private func unescape(_ range: Range<Int>) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var i = range.lowerBound
        func hex4() throws -> UInt32 {
            let v = UInt32(String(decoding: UnsafeBufferPointer(rebasing: bytes[i..<i + 4]), as: UTF8.self), radix: 16)!
            i += 4
            return v
        }
        while i < range.upperBound {
            let b = bytes[i]
            i += 1
            guard b == UInt8(ascii: "\\") else { out.append(b); continue }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by an escaped low one.
                    guard i + 6 <= range.upperBound, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { throw unsupported() }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw unsupported() }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let u = Unicode.Scalar(scalar) else { throw unsupported() }
                out.append(contentsOf: UTF8.encode(u)!)
            default: out.append(e)   // " \ /
            }
        }
        return out
    }

    private mutating func readKey() throws -> JSONKey {
        let (start, end, ascii, escaped) = try scanString()
        if escaped {
            let text = try unescape(start..<end)
            guard text.allSatisfy({ $0 < 0x80 }) else { throw unsupported() }
            return JSONKey(owned: text)
        }
        guard ascii else { throw unsupported() }
        return JSONKey(bytes: UnsafeBufferPointer(rebasing: bytes[start..<end]))
    }

    private mutating func skipEscape() throws {
        switch try next() {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return
        case UInt8(ascii: "u"):
            for _ in 0..<4 {
                guard (try next()).isHexDigit else { throw unsupported() }
            }
        default: throw unsupported()
        }
    }

    /// `-?(0|[1-9][0-9]*)`: where its digits are, and whether a minus came first.
    private mutating func scanIntegerPart() throws -> (digits: Range<Int>, negative: Bool) {
        let negative = try peek() == UInt8(ascii: "-")
        if negative { index += 1 }
        let first = index
        let count = skipDigits()
        guard count > 0, !(count > 1 && bytes[first] == UInt8(ascii: "0")) else { throw unsupported() }
        return (first..<index, negative)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    private mutating func skipNumber() throws {
        _ = try scanIntegerPart()
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard skipDigits() > 0 else { throw unsupported() }
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard skipDigits() > 0 else { throw unsupported() }
        }
    }

    private mutating func skipDigits() -> Int {
        let first = index
        while index < bytes.count, bytes[index] &- UInt8(ascii: "0") < 10 { index += 1 }
        return index - first
    }
}

/// An object key (ASCII, escapes resolved), valid during the member's read.
/// `switch key { case "name": … }` compares bytes.
public struct JSONKey {
    private let borrowed: UnsafeBufferPointer<UInt8>
    /// The text of a key written with escapes.
    private let owned: [UInt8]?

    init(bytes: UnsafeBufferPointer<UInt8>) {
        borrowed = bytes
        owned = nil
    }

    init(owned: [UInt8]) {
        borrowed = UnsafeBufferPointer(start: nil, count: 0)
        self.owned = owned
    }

    private func withBytes<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        if let owned { return owned.withUnsafeBufferPointer(body) }
        return body(borrowed)
    }

    private static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        a.count == b.count && (a.isEmpty || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
    }

    public static func ~= (pattern: StaticString, key: JSONKey) -> Bool {
        key.withBytes { equal(UnsafeBufferPointer(start: pattern.utf8Start, count: pattern.utf8CodeUnitCount), $0) }
    }

    /// The key as a string.
    public var text: String { withBytes { String(decoding: $0, as: UTF8.self) } }

    /// Whether the key is `text`.
    public func equals(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { t in withBytes { Self.equal(t, $0) } }
    }
}

/// The known keys an object has given, so that a key given twice falls back to `JSONDecoder`.
public struct JSONSeenKeys {
    private var bits: UInt64 = 0

    public init() {}

    /// Marks key number `n` (< 64) as read; throws if it was already.
    public mutating func mark(_ n: Int, _ reader: JSONReader) throws {
        let bit: UInt64 = 1 << UInt64(n)
        guard bits & bit == 0 else { throw reader.unsupported() }
        bits |= bit
    }
}

private extension UInt8 {
    var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self | 0x20)
    }
}
