import Foundation

/// Scalar interpretation shared by `NodeDecoder`'s three containers, on a `YAMLTree` node's
/// bytes. The coding path is an autoclosure: it is built only for an error.
enum NodeScalar {
    /// A plain `~`, `null`, `Null`, `NULL` or empty scalar.
    static func isNull(_ tree: YAMLTree, _ node: Int) -> Bool {
        tree.withPlainBytes(node) { b in
            switch b.count {
            case 0: true
            case 1: b[0] == UInt8(ascii: "~")
            case 4: equals(b, "null") || equals(b, "Null") || equals(b, "NULL")
            default: false
            }
        } ?? false
    }

    /// Whether `bytes` are `literal`'s UTF-8 (an ASCII literal).
    static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        bytes.count == literal.utf8CodeUnitCount
            && (bytes.count == 0 || memcmp(bytes.baseAddress!, literal.utf8Start, bytes.count) == 0)
    }

    static func string(_ tree: YAMLTree, _ node: Int, _ path: @autoclosure () -> [any CodingKey]) throws -> String {
        guard let s = tree.string(node) else { throw mismatch(String.self, path()) }
        return s
    }

    static func bool(_ tree: YAMLTree, _ node: Int, _ path: @autoclosure () -> [any CodingKey]) throws -> Bool {
        guard let value = tree.withPlainBytes(node, boolValue), let value else { throw mismatch(Bool.self, path()) }
        return value
    }

    /// YAML 1.1 booleans (`true`/`yes`/`on`, `false`/`no`/`off` in three cases).
    static func boolValue(_ b: UnsafeBufferPointer<UInt8>) -> Bool? {
        for literal: StaticString in ["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"] where equals(b, literal) { return true }
        for literal: StaticString in ["false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"] where equals(b, literal) { return false }
        return nil
    }

    static func integer<T: FixedWidthInteger>(
        _ type: T.Type, _ tree: YAMLTree, _ node: Int, _ path: @autoclosure () -> [any CodingKey]
    ) throws -> T {
        let fast = tree.withPlainBytes(node) { decimal($0).flatMap { T(exactly: $0) } }
        guard let fast else { throw mismatch(T.self, path()) }  // not a plain scalar
        if let fast { return fast }
        guard let s = tree.string(node), let v = parseInteger(T.self, s) else { throw mismatch(T.self, path()) }
        return v
    }

    /// Up to 18 ASCII decimal digits without a sign (what `Int(text)` reads the same way
    /// for every integer type); nil for anything else, which takes `parseInteger`.
    static func decimal(_ b: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard (1...18).contains(b.count) else { return nil }
        var v: Int64 = 0
        for c in b {
            guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else { return nil }
            v = v * 10 + Int64(c - UInt8(ascii: "0"))
        }
        return v
    }

    /// YAML 1.1 integers: optional sign, `_` separators, `0x`/`0o`/`0b`/leading-`0` radixes.
    static func parseInteger<T: FixedWidthInteger>(_ type: T.Type, _ text: String) -> T? {
        if let v = T(text) { return v }  // the common case: plain decimal
        var digits = text.contains("_") ? text.replacingOccurrences(of: "_", with: "")[...] : text[...]
        var sign = ""
        if let first = digits.first, first == "-" || first == "+" {
            if first == "-" { sign = "-" }
            digits = digits.dropFirst()
        }
        for (prefix, radix) in [("0x", 16), ("0b", 2), ("0o", 8), ("0", 8)] where digits.hasPrefix(prefix) && digits.count > prefix.count {
            return T(sign + digits.dropFirst(prefix.count), radix: radix)
        }
        return T(sign + digits)
    }

    static func double(_ tree: YAMLTree, _ node: Int, _ path: @autoclosure () -> [any CodingKey]) throws -> Double {
        guard tree.nodes[node].kind == .plainScalar, let s = tree.string(node),
              let v = Double(s.replacingOccurrences(of: "_", with: "")) else { throw mismatch(Double.self, path()) }
        return v
    }

    /// A list of strings (addresses, CIDRs, IPs) without a container per element.
    static func strings(_ tree: YAMLTree, _ node: Int, _ path: @autoclosure () -> [any CodingKey]) throws -> [String] {
        guard tree.nodes[node].kind == .sequence else { throw mismatch([Any].self, path()) }
        let items = tree.childRange(node)
        var out: [String] = []
        out.reserveCapacity(items.count)
        for (i, child) in items.enumerated() {
            let item = Int(tree.children[child])
            if isNull(tree, item) { throw DecodingError.valueNotFound(String.self, .init(codingPath: path() + [ListIndex(i)], debugDescription: "null")) }
            out.append(try string(tree, item, path() + [ListIndex(i)]))
        }
        return out
    }

    /// Decodes any `Decodable` from `node`, taking the scalar types directly.
    static func decode<T: Decodable>(_ type: T.Type, _ tree: YAMLTree, _ node: Int, _ path: @autoclosure () -> [any CodingKey]) throws -> T {
        if T.self == String.self { return try string(tree, node, path()) as! T }
        if T.self == Int.self { return try integer(Int.self, tree, node, path()) as! T }
        if T.self == Bool.self { return try bool(tree, node, path()) as! T }
        if T.self == [String].self { return try strings(tree, node, path()) as! T }
        return try T(from: NodeDecoder(tree, node, codingPath: path()))
    }
}
