// The YAML path as it was before `YAMLTree` (commit c989b9c), kept as the oracle of
// `YAMLTreeDifferentialTests`: the new path must give the same results, errors included.

import CYaml
@testable import SluiceModel

/// Composes one YAML document into `LegacyYAMLNode`s straight from libyaml's event API (libyaml as
/// Yams bundles it, its `CYaml` module). Yams' own composer allocates an event object, a tag
/// object, a mark and a weak anchor reference per node and hashes every mapping's keys
/// through its regular-expression tag resolver; this one keeps only text, plainness and
/// structure, which is all `NodeDecoder` reads.
struct LegacyYAMLComposer {
    /// A libyaml parse error; `line` and `column` are 1-based within the document text.
    struct SyntaxError: Error, Sendable {
        var problem: String
        var line: Int
        var column: Int
    }

    /// The document's root, or nil for an empty document.
    static func compose(_ text: String) throws -> LegacyYAMLNode? {
        var text = text
        return try text.withUTF8 { bytes in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { throw SyntaxError(problem: "out of memory", line: 0, column: 0) }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, bytes.baseAddress, bytes.count)
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            var builder = Builder()
            return try builder.run(&parser)
        }
    }

    /// Turns the event stream into nodes with an explicit stack of open collections.
    private struct Builder {
        struct Position { var line: Int; var column: Int }

        enum Frame {
            case mapping(pairs: [(key: String, value: LegacyYAMLNode)], key: String?, mark: Position, anchor: String?)
            case sequence(items: [LegacyYAMLNode], mark: Position, anchor: String?)
        }

        var stack: [Frame] = []
        var anchors: [String: LegacyYAMLNode] = [:]
        var root: LegacyYAMLNode?
        var documents = 0

        mutating func run(_ parser: inout yaml_parser_t) throws -> LegacyYAMLNode? {
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(&parser, &event) == 1 else { throw error(parser) }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT { return root }
                try handle(event)
            }
        }

        mutating func handle(_ event: yaml_event_t) throws {
            let mark = Position(line: event.start_mark.line + 1, column: event.start_mark.column + 1)
            switch event.type {
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 { throw SyntaxError(problem: "expected a single document in the stream", line: mark.line, column: mark.column) }
            case YAML_SCALAR_EVENT:
                let s = event.data.scalar
                let value = String(decoding: UnsafeBufferPointer(start: s.value, count: s.length), as: UTF8.self)
                try add(.scalar(value, plain: s.style == YAML_PLAIN_SCALAR_STYLE), anchor: string(s.anchor))
            case YAML_ALIAS_EVENT:
                let name = string(event.data.alias.anchor) ?? ""
                guard let node = anchors[name] else {
                    throw SyntaxError(problem: "found undefined alias \(name)", line: mark.line, column: mark.column)
                }
                try add(node, anchor: nil)
            case YAML_MAPPING_START_EVENT:
                stack.append(.mapping(pairs: [], key: nil, mark: mark, anchor: string(event.data.mapping_start.anchor)))
            case YAML_SEQUENCE_START_EVENT:
                stack.append(.sequence(items: [], mark: mark, anchor: string(event.data.sequence_start.anchor)))
            case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT:
                try close()
            default:
                break  // stream and document boundaries
            }
        }

        /// Ends the innermost collection and adds it to its parent.
        mutating func close() throws {
            switch stack.removeLast() {
            case let .mapping(pairs, _, mark, anchor):
                try checkDuplicates(pairs, mark)
                try add(.mapping(Self.merged(pairs)), anchor: anchor)
            case let .sequence(items, _, anchor):
                try add(.sequence(items), anchor: anchor)
            }
        }

        /// Adds a finished node to the innermost open collection (as a key or a value), or makes it the root.
        mutating func add(_ node: LegacyYAMLNode, anchor: String?) throws {
            if let anchor { anchors[anchor] = node }
            guard let top = stack.popLast() else {
                root = node
                return
            }
            switch top {
            case let .mapping(pairs, nil, mark, anchor):
                stack.append(.mapping(pairs: pairs, key: Self.keyText(node, pairs.count), mark: mark, anchor: anchor))
            case .mapping(var pairs, let key?, let mark, let anchor):
                pairs.append((key, node))
                stack.append(.mapping(pairs: pairs, key: nil, mark: mark, anchor: anchor))
            case .sequence(var items, let mark, let anchor):
                items.append(node)
                stack.append(.sequence(items: items, mark: mark, anchor: anchor))
            }
        }

        /// Applies YAML merge keys (`<<: *base` or `<<: [*a, *b]`): the merged mappings'
        /// entries are added unless the mapping sets them itself (or an earlier merge did).
        static func merged(_ pairs: [(key: String, value: LegacyYAMLNode)]) -> [(key: String, value: LegacyYAMLNode)] {
            guard pairs.contains(where: { $0.key == "<<" }) else { return pairs }
            var out = pairs.filter { $0.key != "<<" }
            var keys = Set(out.map(\.key))
            for (key, value) in pairs where key == "<<" {
                let sources: [LegacyYAMLNode]
                if case .sequence(let items) = value { sources = items } else { sources = [value] }
                for case .mapping(let inherited) in sources {
                    for entry in inherited where keys.insert(entry.key).inserted { out.append(entry) }
                }
            }
            return out
        }

        /// A key's text; a collection used as a key (never a field name) gets a unique placeholder.
        static func keyText(_ node: LegacyYAMLNode, _ index: Int) -> String {
            if case .scalar(let text, _) = node { return text }
            return "\u{0}key\(index)"
        }

        /// YAML forbids a key twice in one mapping (Yams reports it; so does this).
        func checkDuplicates(_ pairs: [(key: String, value: LegacyYAMLNode)], _ mark: Position) throws {
            guard pairs.count > 1 else { return }
            if pairs.count > 16 {  // large mappings: a set; small ones: no allocation
                var seen = Set<String>(minimumCapacity: pairs.count)
                for (key, _) in pairs where !seen.insert(key).inserted { throw duplicate(key, mark) }
                return
            }
            for i in 1..<pairs.count {
                for j in 0..<i where pairs[j].key == pairs[i].key { throw duplicate(pairs[i].key, mark) }
            }
        }

        func duplicate(_ key: String, _ mark: Position) -> SyntaxError {
            SyntaxError(problem: "duplicated mapping key \"\(key)\"", line: mark.line, column: mark.column)
        }

        func error(_ parser: yaml_parser_t) -> SyntaxError {
            let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
            return SyntaxError(problem: problem, line: parser.problem_mark.line + 1, column: parser.problem_mark.column + 1)
        }

        func string(_ pointer: UnsafePointer<UInt8>?) -> String? {
            pointer.map { String(cString: $0) }
        }
    }
}
