import CYaml

/// Composes one YAML document into a `YAMLTree` straight from libyaml's event API (libyaml as
/// Yams bundles it, its `CYaml` module). Yams' own composer allocates an event object, a tag
/// object, a mark and a weak anchor reference per node and hashes every mapping's keys
/// through its regular-expression tag resolver; this one keeps only text, plainness and
/// structure, which is all `NodeDecoder` reads, in three flat arrays (no object per node, no
/// String per scalar).
struct YAMLComposer {
    /// A libyaml parse error; `line` and `column` are 1-based within the document text.
    struct SyntaxError: Error, Sendable {
        var problem: String
        var line: Int
        var column: Int
    }

    /// The document's tree, or nil for an empty document.
    static func compose(_ text: String) throws -> YAMLTree? {
        var text = text
        return try text.withUTF8 { bytes in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { throw SyntaxError(problem: "out of memory", line: 0, column: 0) }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, bytes.baseAddress, bytes.count)
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            var builder = YAMLTreeBuilder(capacity: bytes.count)
            return try builder.run(&parser)
        }
    }
}
