// The decoder over `LegacyYAMLNode` as it was before `YAMLTree` (commit c989b9c), kept as
// the oracle of `YAMLTreeDifferentialTests`.

import Foundation
@testable import SluiceModel

/// A composed YAML value (`YAMLComposer`): scalars keep their text and whether they were
/// plain (unquoted); mapping keys are their scalar text. Anchors and aliases are resolved.
indirect enum LegacyYAMLNode: Sendable {
    case scalar(String, plain: Bool)
    case mapping([(key: String, value: LegacyYAMLNode)])
    case sequence([LegacyYAMLNode])
}

/// A lean `Decoder` over a composed YAML value (no tag resolution, so no regular expression
/// per scalar). Scalars are interpreted by the type asked
/// for, with YAML 1.1's rules as `YAMLDecoder` applies them: a plain `~`, `null` or empty scalar
/// is null; numbers and booleans must be plain (a quoted `"80"` is a string); any scalar reads
/// as a string. Keys are found by a linear scan of the mapping's pairs (objects have few keys),
/// so decoding costs no dictionary per object. Errors are `DecodingError`s with the coding path.
struct LegacyNodeDecoder: Decoder {
    let node: LegacyYAMLNode
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(_ node: LegacyYAMLNode, codingPath: [any CodingKey] = []) {
        self.node = node
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .mapping(let mapping) = node else { throw mismatch(ObjectShape.self, codingPath) }
        return KeyedDecodingContainer(LegacyNodeKeyedContainer<Key>(pairs: mapping, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .sequence(let sequence) = node else { throw mismatch([Any].self, codingPath) }
        return LegacyNodeUnkeyedContainer(items: sequence, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        LegacyNodeSingleValueContainer(node: node, codingPath: codingPath)
    }
}


/// Scalar interpretation shared by the three containers.
enum LegacyNodeScalar {
    static func isNull(_ node: LegacyYAMLNode) -> Bool {
        guard case .scalar(let s, plain: true) = node else { return false }
        switch s {
        case "", "~", "null", "Null", "NULL": return true
        default: return false
        }
    }

    static func string(_ node: LegacyYAMLNode, _ path: [any CodingKey]) throws -> String {
        guard case .scalar(let s, _) = node else { throw mismatch(String.self, path) }
        return s
    }

    static func bool(_ node: LegacyYAMLNode, _ path: [any CodingKey]) throws -> Bool {
        guard case .scalar(let s, plain: true) = node else { throw mismatch(Bool.self, path) }
        switch s {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
        default: throw mismatch(Bool.self, path)
        }
    }

    static func integer<T: FixedWidthInteger>(_ type: T.Type, _ node: LegacyYAMLNode, _ path: [any CodingKey]) throws -> T {
        guard case .scalar(let s, plain: true) = node, let v = parseInteger(T.self, s) else {
            throw mismatch(T.self, path)
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

    static func double(_ node: LegacyYAMLNode, _ path: [any CodingKey]) throws -> Double {
        guard case .scalar(let s, plain: true) = node,
              let v = Double(s.replacingOccurrences(of: "_", with: "")) else { throw mismatch(Double.self, path) }
        return v
    }

    /// A list of strings (addresses, CIDRs, IPs) without a container per element.
    static func strings(_ node: LegacyYAMLNode, _ path: [any CodingKey]) throws -> [String] {
        guard case .sequence(let items) = node else { throw mismatch([Any].self, path) }
        var out: [String] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            if isNull(item) { throw DecodingError.valueNotFound(String.self, .init(codingPath: path + [ListIndex(i)], debugDescription: "null")) }
            out.append(try string(item, path + [ListIndex(i)]))
        }
        return out
    }

    /// Decodes any `Decodable` from `node`, taking the scalar types directly.
    static func decode<T: Decodable>(_ type: T.Type, _ node: LegacyYAMLNode, _ path: [any CodingKey]) throws -> T {
        if T.self == String.self { return try string(node, path) as! T }
        if T.self == Int.self { return try integer(Int.self, node, path) as! T }
        if T.self == Bool.self { return try bool(node, path) as! T }
        if T.self == [String].self { return try strings(node, path) as! T }
        return try T(from: LegacyNodeDecoder(node, codingPath: path))
    }
}

struct LegacyNodeKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let pairs: [(key: String, value: LegacyYAMLNode)]
    let codingPath: [any CodingKey]

    init(pairs: [(key: String, value: LegacyYAMLNode)], codingPath: [any CodingKey]) {
        self.pairs = pairs
        self.codingPath = codingPath
    }

    var allKeys: [Key] { pairs.compactMap { Key(stringValue: $0.key) } }

    func value(_ key: Key) -> LegacyYAMLNode? {
        let name = key.stringValue
        for i in pairs.indices where pairs[i].key == name { return pairs[i].value }
        return nil
    }

    func required(_ key: Key) throws -> LegacyYAMLNode {
        guard let v = value(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
        }
        return v
    }

    func contains(_ key: Key) -> Bool { value(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool { LegacyNodeScalar.isNull(try required(key)) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try LegacyNodeScalar.decode(T.self, try required(key), codingPath + [key])
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let v = value(key), !LegacyNodeScalar.isNull(v) else { return nil }
        return try LegacyNodeScalar.decode(T.self, v, codingPath + [key])
    }

    func decode(_ type: String.Type, forKey key: Key) throws -> String { try LegacyNodeScalar.string(try required(key), codingPath + [key]) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try LegacyNodeScalar.bool(try required(key), codingPath + [key]) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try LegacyNodeScalar.integer(Int.self, try required(key), codingPath + [key]) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try LegacyNodeScalar.double(try required(key), codingPath + [key]) }

    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try LegacyNodeScalar.integer(Int8.self, try required(key), codingPath + [key]) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try LegacyNodeScalar.integer(Int16.self, try required(key), codingPath + [key]) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try LegacyNodeScalar.integer(Int32.self, try required(key), codingPath + [key]) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try LegacyNodeScalar.integer(Int64.self, try required(key), codingPath + [key]) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try LegacyNodeScalar.integer(UInt.self, try required(key), codingPath + [key]) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try LegacyNodeScalar.integer(UInt8.self, try required(key), codingPath + [key]) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try LegacyNodeScalar.integer(UInt16.self, try required(key), codingPath + [key]) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try LegacyNodeScalar.integer(UInt32.self, try required(key), codingPath + [key]) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try LegacyNodeScalar.integer(UInt64.self, try required(key), codingPath + [key]) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try LegacyNodeScalar.double(try required(key), codingPath + [key])) }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        guard let v = value(key), !LegacyNodeScalar.isNull(v) else { return nil }
        return try LegacyNodeScalar.string(v, codingPath + [key])
    }

    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        guard let v = value(key), !LegacyNodeScalar.isNull(v) else { return nil }
        return try LegacyNodeScalar.integer(Int.self, v, codingPath + [key])
    }

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        guard let v = value(key), !LegacyNodeScalar.isNull(v) else { return nil }
        return try LegacyNodeScalar.bool(v, codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try LegacyNodeDecoder(try required(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try LegacyNodeDecoder(try required(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { throw mismatch(ObjectShape.self, codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { LegacyNodeDecoder(try required(key), codingPath: codingPath + [key]) }
}

struct LegacyNodeUnkeyedContainer: UnkeyedDecodingContainer {
    let items: [LegacyYAMLNode]
    let codingPath: [any CodingKey]
    private(set) var currentIndex = 0

    init(items: [LegacyYAMLNode], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next<T>(_ type: T.Type, _ body: (LegacyYAMLNode, [any CodingKey]) throws -> T) throws -> T {
        let path = codingPath + [ListIndex(currentIndex)]
        guard !isAtEnd else { throw DecodingError.valueNotFound(T.self, .init(codingPath: path, debugDescription: "at end")) }
        let node = items[currentIndex]
        if LegacyNodeScalar.isNull(node) { throw DecodingError.valueNotFound(T.self, .init(codingPath: path, debugDescription: "null")) }
        let v = try body(node, path)
        currentIndex += 1
        return v
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, LegacyNodeScalar.isNull(items[currentIndex]) else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next(T.self) { try LegacyNodeScalar.decode(T.self, $0, $1) } }
    mutating func decode(_ type: String.Type) throws -> String { try next(String.self) { try LegacyNodeScalar.string($0, $1) } }
    mutating func decode(_ type: Int.Type) throws -> Int { try next(Int.self) { try LegacyNodeScalar.integer(Int.self, $0, $1) } }
    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(Bool.self) { try LegacyNodeScalar.bool($0, $1) } }

    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(Int8.self) { try LegacyNodeScalar.integer(Int8.self, $0, $1) } }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(Int16.self) { try LegacyNodeScalar.integer(Int16.self, $0, $1) } }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(Int32.self) { try LegacyNodeScalar.integer(Int32.self, $0, $1) } }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(Int64.self) { try LegacyNodeScalar.integer(Int64.self, $0, $1) } }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next(UInt.self) { try LegacyNodeScalar.integer(UInt.self, $0, $1) } }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(UInt8.self) { try LegacyNodeScalar.integer(UInt8.self, $0, $1) } }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(UInt16.self) { try LegacyNodeScalar.integer(UInt16.self, $0, $1) } }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(UInt32.self) { try LegacyNodeScalar.integer(UInt32.self, $0, $1) } }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(UInt64.self) { try LegacyNodeScalar.integer(UInt64.self, $0, $1) } }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(Double.self) { try LegacyNodeScalar.double($0, $1) } }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(Float.self) { Float(try LegacyNodeScalar.double($0, $1)) } }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next(KeyedDecodingContainer<NestedKey>.self) { try LegacyNodeDecoder($0, codingPath: $1).container(keyedBy: type) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next((any UnkeyedDecodingContainer).self) { try LegacyNodeDecoder($0, codingPath: $1).unkeyedContainer() }
    }

    mutating func superDecoder() throws -> any Decoder { try next((any Decoder).self) { LegacyNodeDecoder($0, codingPath: $1) } }
}

struct LegacyNodeSingleValueContainer: SingleValueDecodingContainer {
    let node: LegacyYAMLNode
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { LegacyNodeScalar.isNull(node) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try LegacyNodeScalar.decode(T.self, node, codingPath) }
    func decode(_ type: String.Type) throws -> String { try LegacyNodeScalar.string(node, codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try LegacyNodeScalar.integer(Int.self, node, codingPath) }
    func decode(_ type: Bool.Type) throws -> Bool { try LegacyNodeScalar.bool(node, codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try LegacyNodeScalar.double(node, codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try LegacyNodeScalar.integer(Int8.self, node, codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try LegacyNodeScalar.integer(Int16.self, node, codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try LegacyNodeScalar.integer(Int32.self, node, codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try LegacyNodeScalar.integer(Int64.self, node, codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try LegacyNodeScalar.integer(UInt.self, node, codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try LegacyNodeScalar.integer(UInt8.self, node, codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try LegacyNodeScalar.integer(UInt16.self, node, codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try LegacyNodeScalar.integer(UInt32.self, node, codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try LegacyNodeScalar.integer(UInt64.self, node, codingPath) }
    func decode(_ type: Float.Type) throws -> Float { Float(try LegacyNodeScalar.double(node, codingPath)) }
}
