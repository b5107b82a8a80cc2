import CYaml

/// Turns libyaml's event stream into a `YAMLTree`: the children of the open collections wait
/// in one scratch array (a stack of ranges) and are copied to `children` when their
/// collection ends.
struct YAMLTreeBuilder {
    struct Position { var line: Int; var column: Int }

    /// An open collection: its children are `scratch[start...]`.
    struct Frame {
        var isMapping: Bool
        var start: Int
        var mark: Position
        var anchor: String?
    }

    var nodes: [YAMLTree.Node] = []
    var bytes: [UInt8] = []
    var children: [Int32] = []
    var scratch: [Int32] = []
    var stack: [Frame] = []
    var anchors: [String: Int32] = [:]
    var root: Int32?
    var documents = 0

    /// Reserves room for a document of `capacity` bytes (its scalars' text is no longer).
    init(capacity: Int) {
        bytes.reserveCapacity(capacity)
        nodes.reserveCapacity(capacity / 8)
        children.reserveCapacity(capacity / 8)
        scratch.reserveCapacity(64)
    }

    mutating func run(_ parser: inout yaml_parser_t) throws -> YAMLTree? {
        var event = yaml_event_t()
        while true {
            guard yaml_parser_parse(&parser, &event) == 1 else { throw error(parser) }
            defer { yaml_event_delete(&event) }
            if event.type == YAML_STREAM_END_EVENT {
                return root.map { YAMLTree(nodes: nodes, bytes: bytes, children: children, root: Int($0)) }
            }
            try handle(event)
        }
    }

    mutating func handle(_ event: yaml_event_t) throws {
        let mark = Position(line: event.start_mark.line + 1, column: event.start_mark.column + 1)
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            documents += 1
            if documents > 1 { throw YAMLComposer.SyntaxError(problem: "expected a single document in the stream", line: mark.line, column: mark.column) }
        case YAML_SCALAR_EVENT:
            let s = event.data.scalar
            let node = try addScalar(UnsafeBufferPointer(start: s.value, count: s.length), plain: s.style == YAML_PLAIN_SCALAR_STYLE)
            try add(node, anchor: string(s.anchor))
        case YAML_ALIAS_EVENT:
            let name = string(event.data.alias.anchor) ?? ""
            guard let node = anchors[name] else {
                throw YAMLComposer.SyntaxError(problem: "found undefined alias \(name)", line: mark.line, column: mark.column)
            }
            try add(node, anchor: nil)
        case YAML_MAPPING_START_EVENT:
            stack.append(Frame(isMapping: true, start: scratch.count, mark: mark, anchor: string(event.data.mapping_start.anchor)))
        case YAML_SEQUENCE_START_EVENT:
            stack.append(Frame(isMapping: false, start: scratch.count, mark: mark, anchor: string(event.data.sequence_start.anchor)))
        case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT:
            try close()
        default:
            break  // stream and document boundaries
        }
    }

    /// Appends a scalar node (its text copied to `bytes`).
    mutating func addScalar(_ text: UnsafeBufferPointer<UInt8>, plain: Bool) throws -> Int32 {
        try checkRoom(bytes: text.count, children: 0)
        let start = bytes.count
        var high: UInt8 = 0
        if text.count > 0 {
            bytes.append(contentsOf: text)
            for b in text { high |= b }
        }
        nodes.append(YAMLTree.Node(kind: plain ? .plainScalar : .scalar, ascii: high < 0x80,
                                   start: UInt32(start), count: UInt32(text.count)))
        return Int32(nodes.count - 1)
    }

    /// Appends a collection node whose children are `scratch[from...]`.
    mutating func addCollection(_ kind: YAMLTree.Kind, _ from: Int) throws -> Int32 {
        try checkRoom(bytes: 0, children: scratch.count - from)
        let start = children.count
        scratch.withUnsafeBufferPointer { children.append(contentsOf: UnsafeBufferPointer(rebasing: $0[from...])) }
        return appendCollectionNode(kind, start: start)
    }

    /// Appends a collection node whose children are `items`.
    mutating func addCollection(_ kind: YAMLTree.Kind, _ items: [Int32]) throws -> Int32 {
        try checkRoom(bytes: 0, children: items.count)
        let start = children.count
        children.append(contentsOf: items)
        return appendCollectionNode(kind, start: start)
    }

    /// The node of a collection whose children are `children[start...]`.
    mutating func appendCollectionNode(_ kind: YAMLTree.Kind, start: Int) -> Int32 {
        let items = children.count - start
        nodes.append(YAMLTree.Node(kind: kind, ascii: true, start: UInt32(start), count: UInt32(items)))
        return Int32(nodes.count - 1)
    }

    /// Ends the innermost collection and adds it to its parent.
    mutating func close() throws {
        let frame = stack.removeLast()
        let node: Int32
        if frame.isMapping {
            if (scratch.count - frame.start) % 2 == 1 { scratch.removeLast() }  // a key without a value
            try checkDuplicates(frame.start, frame.mark)
            node = mergeKeyIndex(frame.start) == nil
                ? try addCollection(.mapping, frame.start)
                : try addCollection(.mapping, merged(Array(scratch[frame.start...])))
        } else {
            node = try addCollection(.sequence, frame.start)
        }
        scratch.removeSubrange(frame.start...)
        try add(node, anchor: frame.anchor)
    }

    /// Adds a finished node to the innermost open collection (as a key or a value), or makes it the root.
    mutating func add(_ node: Int32, anchor: String?) throws {
        if let anchor { anchors[anchor] = node }
        guard let top = stack.last else {
            root = node
            return
        }
        let isKey = top.isMapping && (scratch.count - top.start) % 2 == 0
        scratch.append(isKey ? try keyNode(node, entry: (scratch.count - top.start) / 2) : node)
    }

    /// A key: a scalar node as is; a collection used as a key (never a field name) gets a
    /// scalar with a unique placeholder text.
    mutating func keyNode(_ node: Int32, entry index: Int) throws -> Int32 {
        let kind = nodes[Int(node)].kind
        if kind == .scalar || kind == .plainScalar { return node }
        return try Array("\u{0}key\(index)".utf8).withUnsafeBufferPointer { try addScalar($0, plain: false) }
    }

    /// A tree indexes its bytes and children with 32 bits and its nodes with 31: a document
    /// that would need more (over 2 GiB of scalars, or merge keys copying entries billions of
    /// times) is an error rather than a trap.
    func checkRoom(bytes more: Int, children moreChildren: Int) throws {
        guard bytes.count + more <= Int(UInt32.max), children.count + moreChildren <= Int(UInt32.max), nodes.count < Int(Int32.max) else {
            throw YAMLComposer.SyntaxError(problem: "document too large", line: 0, column: 0)
        }
    }

    /// The text of a key node.
    func keyText(_ node: Int32) -> String { YAMLTree.text(nodes[Int(node)], bytes) }

    /// Whether a key node is the merge key `<<`.
    func isMergeKey(_ node: Int32) -> Bool {
        let n = nodes[Int(node)]
        guard n.ascii else { return keyText(node) == "<<" }
        return n.count == 2 && bytes[Int(n.start)] == UInt8(ascii: "<") && bytes[Int(n.start) + 1] == UInt8(ascii: "<")
    }

    /// The offset of the first merge key among the open mapping's entries at `scratch[start...]`.
    func mergeKeyIndex(_ start: Int) -> Int? {
        stride(from: start, to: scratch.count, by: 2).first { isMergeKey(scratch[$0]) }
    }

    /// Applies YAML merge keys (`<<: *base` or `<<: [*a, *b]`) to `entries` (key, value,
    /// key, value…): the merged mappings' entries are added unless the mapping sets them
    /// itself (or an earlier merge did).
    func merged(_ entries: [Int32]) -> [Int32] {
        var out: [Int32] = []
        for i in stride(from: 0, to: entries.count, by: 2) where !isMergeKey(entries[i]) {
            out += [entries[i], entries[i + 1]]
        }
        var keys = Set(stride(from: 0, to: out.count, by: 2).map { keyText(out[$0]) })
        for i in stride(from: 0, to: entries.count, by: 2) where isMergeKey(entries[i]) {
            let value = nodes[Int(entries[i + 1])]
            let sources = value.kind == .sequence ? Array(children[Int(value.start)..<Int(value.start + value.count)]) : [entries[i + 1]]
            for source in sources where nodes[Int(source)].kind == .mapping {
                let s = nodes[Int(source)]
                for j in stride(from: Int(s.start), to: Int(s.start + s.count), by: 2) where keys.insert(keyText(children[j])).inserted {
                    out += [children[j], children[j + 1]]
                }
            }
        }
        return out
    }

    /// YAML forbids a key twice in one mapping (Yams reports it; so does this).
    func checkDuplicates(_ start: Int, _ mark: Position) throws {
        let count = (scratch.count - start) / 2
        guard count > 1 else { return }
        if count > 16 {  // large mappings: a set; small ones: no allocation
            var seen = Set<String>(minimumCapacity: count)
            for i in stride(from: start, to: scratch.count, by: 2) where !seen.insert(keyText(scratch[i])).inserted {
                throw duplicate(keyText(scratch[i]), mark)
            }
            return
        }
        for i in 1..<count {
            let key = nodes[Int(scratch[start + 2 * i])]
            for j in 0..<i where YAMLTree.equalText(nodes[Int(scratch[start + 2 * j])], key, bytes) {
                throw duplicate(keyText(scratch[start + 2 * i]), mark)
            }
        }
    }

    func duplicate(_ key: String, _ mark: Position) -> YAMLComposer.SyntaxError {
        YAMLComposer.SyntaxError(problem: "duplicated mapping key \"\(key)\"", line: mark.line, column: mark.column)
    }

    func error(_ parser: yaml_parser_t) -> YAMLComposer.SyntaxError {
        let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
        return YAMLComposer.SyntaxError(problem: problem, line: parser.problem_mark.line + 1, column: parser.problem_mark.column + 1)
    }

    func string(_ pointer: UnsafePointer<UInt8>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}
