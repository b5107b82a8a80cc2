import Foundation

/// A composed YAML value (`YAMLComposer`): scalars keep their text and whether they were
/// plain (unquoted); mapping keys are their scalar text. Anchors and aliases are resolved.
indirect enum YAMLNode: Sendable {
    case scalar(String, plain: Bool)
    case mapping([(key: String, value: YAMLNode)])
    case sequence([YAMLNode])
}

/// A lean `Decoder` over a composed YAML value (no tag resolution, so no regular expression
/// per scalar). Scalars are interpreted by the type asked
/// for, with YAML 1.1's rules as `YAMLDecoder` applies them: a plain `~`, `null` or empty scalar
/// is null; numbers and booleans must be plain (a quoted `"80"` is a string); any scalar reads
/// as a string. Keys are found by a linear scan of the mapping's pairs (objects have few keys),
/// so decoding costs no dictionary per object. Errors are `DecodingError`s with the coding path.
struct NodeDecoder: Decoder {
    let node: YAMLNode
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(_ node: YAMLNode, codingPath: [any CodingKey] = []) {
        self.node = node
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .mapping(let mapping) = node else { throw mismatch(ObjectShape.self, codingPath) }
        return KeyedDecodingContainer(NodeKeyedContainer<Key>(pairs: mapping, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .sequence(let sequence) = node else { throw mismatch([Any].self, codingPath) }
        return NodeUnkeyedContainer(items: sequence, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        NodeSingleValueContainer(node: node, codingPath: codingPath)
    }
}

/// Names "an object" in type-mismatch messages.
struct ObjectShape {}

func mismatch(_ type: Any.Type, _ path: [any CodingKey]) -> DecodingError {
    .typeMismatch(type, .init(codingPath: path, debugDescription: "type mismatch"))
}

/// Scalar interpretation shared by the three containers.
enum NodeScalar {
    static func isNull(_ node: YAMLNode) -> Bool {
        guard case .scalar(let s, plain: true) = node else { return false }
        switch s {
        case "", "~", "null", "Null", "NULL": return true
        default: return false
        }
    }

    static func string(_ node: YAMLNode, _ path: [any CodingKey]) throws -> String {
        guard case .scalar(let s, _) = node else { throw mismatch(String.self, path) }
        return s
    }

    static func bool(_ node: YAMLNode, _ path: [any CodingKey]) throws -> Bool {
        guard case .scalar(let s, plain: true) = node else { throw mismatch(Bool.self, path) }
        switch s {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
        default: throw mismatch(Bool.self, path)
        }
    }

    static func integer<T: FixedWidthInteger>(_ type: T.Type, _ node: YAMLNode, _ path: [any CodingKey]) throws -> T {
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

    static func double(_ node: YAMLNode, _ path: [any CodingKey]) throws -> Double {
        guard case .scalar(let s, plain: true) = node,
              let v = Double(s.replacingOccurrences(of: "_", with: "")) else { throw mismatch(Double.self, path) }
        return v
    }

    /// A list of strings (addresses, CIDRs, IPs) without a container per element.
    static func strings(_ node: YAMLNode, _ path: [any CodingKey]) throws -> [String] {
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
    static func decode<T: Decodable>(_ type: T.Type, _ node: YAMLNode, _ path: [any CodingKey]) throws -> T {
        if T.self == String.self { return try string(node, path) as! T }
        if T.self == Int.self { return try integer(Int.self, node, path) as! T }
        if T.self == Bool.self { return try bool(node, path) as! T }
        if T.self == [String].self { return try strings(node, path) as! T }
        return try T(from: NodeDecoder(node, codingPath: path))
    }
}

struct NodeKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let pairs: [(key: String, value: YAMLNode)]
    let codingPath: [any CodingKey]

    init(pairs: [(key: String, value: YAMLNode)], codingPath: [any CodingKey]) {
        self.pairs = pairs
        self.codingPath = codingPath
    }

    var allKeys: [Key] { pairs.compactMap { Key(stringValue: $0.key) } }

    func value(_ key: Key) -> YAMLNode? {
        let name = key.stringValue
        for i in pairs.indices where pairs[i].key == name { return pairs[i].value }
        return nil
    }

    func required(_ key: Key) throws -> YAMLNode {
        guard let v = value(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
        }
        return v
    }

    func contains(_ key: Key) -> Bool { value(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool { NodeScalar.isNull(try required(key)) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try NodeScalar.decode(T.self, try required(key), codingPath + [key])
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let v = value(key), !NodeScalar.isNull(v) else { return nil }
        return try NodeScalar.decode(T.self, v, codingPath + [key])
    }

    func decode(_ type: String.Type, forKey key: Key) throws -> String { try NodeScalar.string(try required(key), codingPath + [key]) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try NodeScalar.bool(try required(key), codingPath + [key]) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try NodeScalar.integer(Int.self, try required(key), codingPath + [key]) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try NodeScalar.double(try required(key), codingPath + [key]) }

    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try NodeScalar.integer(Int8.self, try required(key), codingPath + [key]) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try NodeScalar.integer(Int16.self, try required(key), codingPath + [key]) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try NodeScalar.integer(Int32.self, try required(key), codingPath + [key]) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try NodeScalar.integer(Int64.self, try required(key), codingPath + [key]) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try NodeScalar.integer(UInt.self, try required(key), codingPath + [key]) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try NodeScalar.integer(UInt8.self, try required(key), codingPath + [key]) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try NodeScalar.integer(UInt16.self, try required(key), codingPath + [key]) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try NodeScalar.integer(UInt32.self, try required(key), codingPath + [key]) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try NodeScalar.integer(UInt64.self, try required(key), codingPath + [key]) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try NodeScalar.double(try required(key), codingPath + [key])) }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        guard let v = value(key), !NodeScalar.isNull(v) else { return nil }
        return try NodeScalar.string(v, codingPath + [key])
    }

    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        guard let v = value(key), !NodeScalar.isNull(v) else { return nil }
        return try NodeScalar.integer(Int.self, v, codingPath + [key])
    }

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        guard let v = value(key), !NodeScalar.isNull(v) else { return nil }
        return try NodeScalar.bool(v, codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try NodeDecoder(try required(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try NodeDecoder(try required(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { throw mismatch(ObjectShape.self, codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { NodeDecoder(try required(key), codingPath: codingPath + [key]) }
}

struct NodeUnkeyedContainer: UnkeyedDecodingContainer {
    let items: [YAMLNode]
    let codingPath: [any CodingKey]
    private(set) var currentIndex = 0

    init(items: [YAMLNode], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next<T>(_ type: T.Type, _ body: (YAMLNode, [any CodingKey]) throws -> T) throws -> T {
        let path = codingPath + [ListIndex(currentIndex)]
        guard !isAtEnd else { throw DecodingError.valueNotFound(T.self, .init(codingPath: path, debugDescription: "at end")) }
        let node = items[currentIndex]
        if NodeScalar.isNull(node) { throw DecodingError.valueNotFound(T.self, .init(codingPath: path, debugDescription: "null")) }
        let v = try body(node, path)
        currentIndex += 1
        return v
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, NodeScalar.isNull(items[currentIndex]) else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next(T.self) { try NodeScalar.decode(T.self, $0, $1) } }
    mutating func decode(_ type: String.Type) throws -> String { try next(String.self) { try NodeScalar.string($0, $1) } }
    mutating func decode(_ type: Int.Type) throws -> Int { try next(Int.self) { try NodeScalar.integer(Int.self, $0, $1) } }
    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(Bool.self) { try NodeScalar.bool($0, $1) } }

    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(Int8.self) { try NodeScalar.integer(Int8.self, $0, $1) } }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(Int16.self) { try NodeScalar.integer(Int16.self, $0, $1) } }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(Int32.self) { try NodeScalar.integer(Int32.self, $0, $1) } }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(Int64.self) { try NodeScalar.integer(Int64.self, $0, $1) } }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next(UInt.self) { try NodeScalar.integer(UInt.self, $0, $1) } }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(UInt8.self) { try NodeScalar.integer(UInt8.self, $0, $1) } }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(UInt16.self) { try NodeScalar.integer(UInt16.self, $0, $1) } }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(UInt32.self) { try NodeScalar.integer(UInt32.self, $0, $1) } }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(UInt64.self) { try NodeScalar.integer(UInt64.self, $0, $1) } }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(Double.self) { try NodeScalar.double($0, $1) } }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(Float.self) { Float(try NodeScalar.double($0, $1)) } }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next(KeyedDecodingContainer<NestedKey>.self) { try NodeDecoder($0, codingPath: $1).container(keyedBy: type) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next((any UnkeyedDecodingContainer).self) { try NodeDecoder($0, codingPath: $1).unkeyedContainer() }
    }

    mutating func superDecoder() throws -> any Decoder { try next((any Decoder).self) { NodeDecoder($0, codingPath: $1) } }
}

struct NodeSingleValueContainer: SingleValueDecodingContainer {
    let node: YAMLNode
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { NodeScalar.isNull(node) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try NodeScalar.decode(T.self, node, codingPath) }
    func decode(_ type: String.Type) throws -> String { try NodeScalar.string(node, codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try NodeScalar.integer(Int.self, node, codingPath) }
    func decode(_ type: Bool.Type) throws -> Bool { try NodeScalar.bool(node, codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try NodeScalar.double(node, codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try NodeScalar.integer(Int8.self, node, codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try NodeScalar.integer(Int16.self, node, codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try NodeScalar.integer(Int32.self, node, codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try NodeScalar.integer(Int64.self, node, codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try NodeScalar.integer(UInt.self, node, codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try NodeScalar.integer(UInt8.self, node, codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try NodeScalar.integer(UInt16.self, node, codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try NodeScalar.integer(UInt32.self, node, codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try NodeScalar.integer(UInt64.self, node, codingPath) }
    func decode(_ type: Float.Type) throws -> Float { Float(try NodeScalar.double(node, codingPath)) }
}
