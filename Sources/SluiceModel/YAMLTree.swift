import Foundation

/// A composed YAML document (`YAMLComposer`) in three flat arrays instead of a tree of
/// boxed nodes: a node is an index into `nodes`; a scalar's text is a byte range of `bytes`
/// (Strings are made only for the values a decoder asks for); a collection's children are a
/// range of `children` (a mapping's as key, value, key, value…; its keys are scalars). Anchors
/// and aliases are resolved (an alias is the aliased node's index again); merge keys are applied.
final class YAMLTree: Sendable {
    /// What a node is.
    enum Kind: UInt8, Sendable {
        case scalar, plainScalar, mapping, sequence
    }

    /// One node: for a scalar, `start`/`count` are a range of `bytes`; for a collection, of
    /// `children` (a mapping's `count` is twice its number of entries).
    struct Node: Sendable {
        var kind: Kind
        /// Every byte of the scalar is ASCII (so byte equality is `String` equality).
        var ascii: Bool
        var start: UInt32
        var count: UInt32
    }

    let nodes: [Node]
    let bytes: [UInt8]
    let children: [Int32]
    /// The document's root node.
    let root: Int

    init(nodes: [Node], bytes: [UInt8], children: [Int32], root: Int) {
        self.nodes = nodes
        self.bytes = bytes
        self.children = children
        self.root = root
    }

    /// The scalar text of `node` as a String (nil for a collection).
    func string(_ node: Int) -> String? {
        let n = nodes[node]
        guard n.kind == .scalar || n.kind == .plainScalar else { return nil }
        return Self.text(n, bytes)
    }

    /// A scalar node's text, as `String(decoding:as:)` makes it from its bytes.
    static func text(_ n: Node, _ bytes: [UInt8]) -> String {
        bytes.withUnsafeBufferPointer { b in
            String(decoding: UnsafeBufferPointer(rebasing: b[Int(n.start)..<Int(n.start + n.count)]), as: UTF8.self)
        }
    }

    /// Whether two scalar nodes' texts are equal as Strings compare (canonical equivalence):
    /// their bytes when both are ASCII, else their Strings.
    static func equalText(_ x: Node, _ y: Node, _ bytes: [UInt8]) -> Bool {
        guard x.ascii, y.ascii else { return text(x, bytes) == text(y, bytes) }
        guard x.count == y.count else { return false }
        return bytes.withUnsafeBufferPointer { p in
            x.count == 0 || memcmp(p.baseAddress! + Int(x.start), p.baseAddress! + Int(y.start), Int(x.count)) == 0
        }
    }

    /// The text of a plain (unquoted) scalar, as bytes, for `body`; nil when `node` is not one.
    func withPlainBytes<R>(_ node: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        let n = nodes[node]
        guard n.kind == .plainScalar else { return nil }
        return bytes.withUnsafeBufferPointer { b in body(UnsafeBufferPointer(rebasing: b[Int(n.start)..<Int(n.start + n.count)])) }
    }

    /// The value node of `key` in a mapping node, comparing keys as Strings compare (bytes
    /// when both are ASCII); nil when the mapping has no such key.
    func value(forKey key: String, inMapping node: Int) -> Int? {
        var key = key
        let range = childRange(node)
        return key.withUTF8 { k in
            let asciiKey = k.allSatisfy { $0 < 0x80 }
            return bytes.withUnsafeBufferPointer { b in
                var i = range.lowerBound
                while i < range.upperBound {
                    let keyNode = Int(children[i])
                    let n = nodes[keyNode]
                    if asciiKey && n.ascii {
                        if Int(n.count) == k.count && (k.count == 0 || memcmp(b.baseAddress! + Int(n.start), k.baseAddress!, k.count) == 0) {
                            return Int(children[i + 1])
                        }
                    } else if string(keyNode) == String(decoding: k, as: UTF8.self) {
                        return Int(children[i + 1])
                    }
                    i += 2
                }
                return nil
            }
        }
    }

    /// Whether a scalar node's text equals `text` as Strings compare (bytes when both are ASCII).
    func scalar(_ node: Int, equals text: String) -> Bool {
        let n = nodes[node]
        var text = text
        return text.withUTF8 { t in
            guard n.ascii, t.allSatisfy({ $0 < 0x80 }) else { return string(node) == String(decoding: t, as: UTF8.self) }
            guard t.count == Int(n.count) else { return false }
            return t.count == 0 || bytes.withUnsafeBufferPointer { memcmp($0.baseAddress! + Int(n.start), t.baseAddress!, t.count) == 0 }
        }
    }

    /// The children of a collection node, as indices.
    func childRange(_ node: Int) -> Range<Int> {
        let n = nodes[node]
        return Int(n.start)..<Int(n.start + n.count)
    }
}
