import Foundation

/// A lean `Decoder` over a composed YAML document (`YAMLTree`; no tag resolution, so no
/// regular expression per scalar). Scalars are interpreted by the type asked
/// for, with YAML 1.1's rules as `YAMLDecoder` applies them: a plain `~`, `null` or empty scalar
/// is null; numbers and booleans must be plain (a quoted `"80"` is a string); any scalar reads
/// as a string. Keys are found by a linear scan of the mapping's entries comparing bytes
/// (objects have few keys), so decoding costs no dictionary per object and no String per key;
/// a String is made only for a value decoded as one. A coding path is built only for a nested
/// decoder or an error. Errors are `DecodingError`s with the coding path.
struct NodeDecoder: Decoder {
    let tree: YAMLTree
    let node: Int
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(_ tree: YAMLTree, _ node: Int, codingPath: [any CodingKey] = []) {
        self.tree = tree
        self.node = node
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard tree.nodes[node].kind == .mapping else { throw mismatch(ObjectShape.self, codingPath) }
        return KeyedDecodingContainer(NodeKeyedContainer<Key>(tree: tree, mapping: node, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard tree.nodes[node].kind == .sequence else { throw mismatch([Any].self, codingPath) }
        return NodeUnkeyedContainer(tree: tree, items: tree.childRange(node), codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        NodeSingleValueContainer(tree: tree, node: node, codingPath: codingPath)
    }
}

extension NodeDecoder {
    /// What `allKeys` of this mapping's container gives for a `Key` enum (each key's
    /// `Key(stringValue:)`, the first case with that raw value, in document order), matching
    /// bytes instead of making a String per key.
    func caseKeys<Key: CodingKey & RawRepresentable<String> & CaseIterable>(_ type: Key.Type) -> [Key] {
        guard tree.nodes[node].kind == .mapping else { return [] }
        let cases = Array(Key.allCases)
        var out: [Key] = []
        for i in stride(from: tree.childRange(node).lowerBound, to: tree.childRange(node).upperBound, by: 2) {
            let keyNode = Int(tree.children[i])
            if let key = cases.first(where: { tree.scalar(keyNode, equals: $0.rawValue) }) { out.append(key) }
        }
        return out
    }
}

/// Names "an object" in type-mismatch messages.
struct ObjectShape {}

func mismatch(_ type: Any.Type, _ path: [any CodingKey]) -> DecodingError {
    .typeMismatch(type, .init(codingPath: path, debugDescription: "type mismatch"))
}

/// A mapping's entries, looked up by key text.
struct NodeKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let tree: YAMLTree
    let mapping: Int
    let codingPath: [any CodingKey]

    init(tree: YAMLTree, mapping: Int, codingPath: [any CodingKey]) {
        self.tree = tree
        self.mapping = mapping
        self.codingPath = codingPath
    }

    var allKeys: [Key] {
        stride(from: tree.childRange(mapping).lowerBound, to: tree.childRange(mapping).upperBound, by: 2).compactMap {
            Key(stringValue: tree.string(Int(tree.children[$0])) ?? "")
        }
    }

    func value(_ key: Key) -> Int? { tree.value(forKey: key.stringValue, inMapping: mapping) }

    func required(_ key: Key) throws -> Int {
        guard let v = value(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
        }
        return v
    }

    /// A present, non-null value.
    func present(_ key: Key) -> Int? {
        guard let v = value(key), !NodeScalar.isNull(tree, v) else { return nil }
        return v
    }

    func contains(_ key: Key) -> Bool { value(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool { NodeScalar.isNull(tree, try required(key)) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try NodeScalar.decode(T.self, tree, try required(key), codingPath + [key])
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let v = present(key) else { return nil }
        return try NodeScalar.decode(T.self, tree, v, codingPath + [key])
    }

    func decode(_ type: String.Type, forKey key: Key) throws -> String { try NodeScalar.string(tree, try required(key), codingPath + [key]) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try NodeScalar.bool(tree, try required(key), codingPath + [key]) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try NodeScalar.integer(Int.self, tree, try required(key), codingPath + [key]) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try NodeScalar.double(tree, try required(key), codingPath + [key]) }

    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try NodeScalar.integer(Int8.self, tree, try required(key), codingPath + [key]) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try NodeScalar.integer(Int16.self, tree, try required(key), codingPath + [key]) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try NodeScalar.integer(Int32.self, tree, try required(key), codingPath + [key]) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try NodeScalar.integer(Int64.self, tree, try required(key), codingPath + [key]) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try NodeScalar.integer(UInt.self, tree, try required(key), codingPath + [key]) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try NodeScalar.integer(UInt8.self, tree, try required(key), codingPath + [key]) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try NodeScalar.integer(UInt16.self, tree, try required(key), codingPath + [key]) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try NodeScalar.integer(UInt32.self, tree, try required(key), codingPath + [key]) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try NodeScalar.integer(UInt64.self, tree, try required(key), codingPath + [key]) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try NodeScalar.double(tree, try required(key), codingPath + [key])) }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        guard let v = present(key) else { return nil }
        return try NodeScalar.string(tree, v, codingPath + [key])
    }

    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        guard let v = present(key) else { return nil }
        return try NodeScalar.integer(Int.self, tree, v, codingPath + [key])
    }

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        guard let v = present(key) else { return nil }
        return try NodeScalar.bool(tree, v, codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try NodeDecoder(tree, try required(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try NodeDecoder(tree, try required(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { throw mismatch(ObjectShape.self, codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { NodeDecoder(tree, try required(key), codingPath: codingPath + [key]) }
}

/// A sequence's items, in order.
struct NodeUnkeyedContainer: UnkeyedDecodingContainer {
    let tree: YAMLTree
    /// The items' range of `tree.children`.
    let items: Range<Int>
    let codingPath: [any CodingKey]
    private(set) var currentIndex = 0

    init(tree: YAMLTree, items: Range<Int>, codingPath: [any CodingKey]) {
        self.tree = tree
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    /// The current item's node.
    var current: Int { Int(tree.children[items.lowerBound + currentIndex]) }

    private mutating func next<T>(_ type: T.Type, _ body: (Int, () -> [any CodingKey]) throws -> T) throws -> T {
        let index = currentIndex
        let path = { [codingPath] in codingPath + [ListIndex(index)] }
        guard !isAtEnd else { throw DecodingError.valueNotFound(T.self, .init(codingPath: path(), debugDescription: "at end")) }
        let node = current
        if NodeScalar.isNull(tree, node) { throw DecodingError.valueNotFound(T.self, .init(codingPath: path(), debugDescription: "null")) }
        let v = try body(node, path)
        currentIndex += 1
        return v
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, NodeScalar.isNull(tree, current) else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next(T.self) { [tree] in try NodeScalar.decode(T.self, tree, $0, $1()) } }
    mutating func decode(_ type: String.Type) throws -> String { try next(String.self) { [tree] in try NodeScalar.string(tree, $0, $1()) } }
    mutating func decode(_ type: Int.Type) throws -> Int { try next(Int.self) { [tree] in try NodeScalar.integer(Int.self, tree, $0, $1()) } }
    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(Bool.self) { [tree] in try NodeScalar.bool(tree, $0, $1()) } }

    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(Int8.self) { [tree] in try NodeScalar.integer(Int8.self, tree, $0, $1()) } }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(Int16.self) { [tree] in try NodeScalar.integer(Int16.self, tree, $0, $1()) } }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(Int32.self) { [tree] in try NodeScalar.integer(Int32.self, tree, $0, $1()) } }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(Int64.self) { [tree] in try NodeScalar.integer(Int64.self, tree, $0, $1()) } }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next(UInt.self) { [tree] in try NodeScalar.integer(UInt.self, tree, $0, $1()) } }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(UInt8.self) { [tree] in try NodeScalar.integer(UInt8.self, tree, $0, $1()) } }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(UInt16.self) { [tree] in try NodeScalar.integer(UInt16.self, tree, $0, $1()) } }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(UInt32.self) { [tree] in try NodeScalar.integer(UInt32.self, tree, $0, $1()) } }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(UInt64.self) { [tree] in try NodeScalar.integer(UInt64.self, tree, $0, $1()) } }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(Double.self) { [tree] in try NodeScalar.double(tree, $0, $1()) } }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(Float.self) { [tree] in Float(try NodeScalar.double(tree, $0, $1())) } }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next(KeyedDecodingContainer<NestedKey>.self) { [tree] in try NodeDecoder(tree, $0, codingPath: $1()).container(keyedBy: type) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next((any UnkeyedDecodingContainer).self) { [tree] in try NodeDecoder(tree, $0, codingPath: $1()).unkeyedContainer() }
    }

    mutating func superDecoder() throws -> any Decoder { try next((any Decoder).self) { [tree] in NodeDecoder(tree, $0, codingPath: $1()) } }
}

/// One node read as a single value.
struct NodeSingleValueContainer: SingleValueDecodingContainer {
    let tree: YAMLTree
    let node: Int
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { NodeScalar.isNull(tree, node) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try NodeScalar.decode(T.self, tree, node, codingPath) }
    func decode(_ type: String.Type) throws -> String { try NodeScalar.string(tree, node, codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try NodeScalar.integer(Int.self, tree, node, codingPath) }
    func decode(_ type: Bool.Type) throws -> Bool { try NodeScalar.bool(tree, node, codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try NodeScalar.double(tree, node, codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try NodeScalar.integer(Int8.self, tree, node, codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try NodeScalar.integer(Int16.self, tree, node, codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try NodeScalar.integer(Int32.self, tree, node, codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try NodeScalar.integer(Int64.self, tree, node, codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try NodeScalar.integer(UInt.self, tree, node, codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try NodeScalar.integer(UInt8.self, tree, node, codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try NodeScalar.integer(UInt16.self, tree, node, codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try NodeScalar.integer(UInt32.self, tree, node, codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try NodeScalar.integer(UInt64.self, tree, node, codingPath) }
    func decode(_ type: Float.Type) throws -> Float { Float(try NodeScalar.double(tree, node, codingPath)) }
}
