import Foundation
import Yams

/// Loads Kubernetes manifests: files and directories (recursively; `.yaml`, `.yml`, `.json`,
/// sorted by path for determinism; hidden entries such as a ConfigMap mount's `..data` are
/// skipped), several YAML documents per file, JSON files, and `List` / `ServiceList` /
/// `EndpointSliceList` / `NodeList` / `ServiceCIDRList` objects (items of typed lists may
/// lack `kind`/`apiVersion`; they are inferred from the list kind).
///
/// Unknown kinds are ignored silently. A document that cannot be parsed or decoded yields a
/// diagnostic naming the file and document, and loading continues.
public struct ManifestLoader: Sendable {
    /// The result of loading: objects with their files, and what went wrong.
    public struct Result: Sendable, Hashable {
        public var objects: ClusterObjects
        public var diagnostics: [Diagnostic]

        public init(objects: ClusterObjects = ClusterObjects(), diagnostics: [Diagnostic] = []) {
            self.objects = objects
            self.diagnostics = diagnostics
        }

        mutating func append(_ other: Result) {
            objects.append(contentsOf: other.objects)
            diagnostics += other.diagnostics
        }
    }

    /// File name extensions read when walking a directory.
    public static let manifestExtensions: Set<String> = ["yaml", "yml", "json"]

    public init() {}

    /// Loads every path in order: a file is read whatever its extension, a directory is
    /// walked recursively.
    public func load(paths: [String]) -> Result {
        var result = Result()
        for path in paths { result.append(load(path: path)) }
        return result
    }

    /// Loads one file or directory.
    public func load(path: String) -> Result {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return Result(diagnostics: [Diagnostic(file: path, message: "no such file or directory")])
        }
        if !isDirectory.boolValue { return loadFile(path) }
        var result = Result()
        for file in manifestFiles(under: path) { result.append(loadFile(file)) }
        return result
    }

    /// The manifest files under a directory, sorted, with paths as `dir/relative/path`.
    public func manifestFiles(under directory: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
        var files: [String] = []
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        while let relative = enumerator.nextObject() as? String {
            let components = relative.split(separator: "/")
            if components.contains(where: { $0.hasPrefix(".") }) {
                enumerator.skipDescendants()
                continue
            }
            let ext = (relative as NSString).pathExtension.lowercased()
            guard Self.manifestExtensions.contains(ext) else { continue }
            var isDirectory: ObjCBool = false
            let full = base + relative
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(full)
            }
        }
        return files.sorted()
    }

    /// Reads and parses one file.
    public func loadFile(_ path: String) -> Result {
        guard let data = FileManager.default.contents(atPath: path) else {
            return Result(diagnostics: [Diagnostic(file: path, message: "cannot read file")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return Result(diagnostics: [Diagnostic(file: path, message: "file is not UTF-8 text")])
        }
        return parse(text: text, file: path)
    }

    /// Parses manifest text. `.json` files are one document; otherwise the text is split
    /// into YAML documents at `---` lines so that one broken document does not hide the rest.
    public func parse(text: String, file: String) -> Result {
        let isJSON = file.lowercased().hasSuffix(".json")
        let documents = isJSON ? [YAMLDocumentText(text: text, index: nil, firstLine: 1)] : splitYAMLDocuments(text)
        var result = Result()
        for document in documents {
            result.append(parse(document: document, file: file))
        }
        return result
    }

    private func parse(document: YAMLDocumentText, file: String) -> Result {
        let node: Yams.Node?
        do {
            node = try Yams.compose(yaml: document.text)
        } catch {
            return Result(diagnostics: [Diagnostic(file: file, document: document.index,
                                                   message: describeParseError(error, lineOffset: document.firstLine - 1))])
        }
        guard let node else { return Result() }  // empty document
        guard node.mapping != nil else {
            return Result(diagnostics: [Diagnostic(file: file, document: document.index,
                                                   message: "document is not a mapping (expected a Kubernetes object)")])
        }
        var decoder = ObjectDecoder(file: file, document: document.index)
        decoder.decodeObject(node, inferredKind: nil, path: nil)
        return Result(objects: decoder.objects, diagnostics: decoder.diagnostics)
    }
}

/// One YAML document cut out of a file.
struct YAMLDocumentText: Sendable {
    var text: String
    /// 1-based document number; nil for a file that is a single JSON document.
    var index: Int?
    /// Line of the file where `text` starts.
    var firstLine: Int
}

/// Splits a YAML stream at document markers (`---` at column 0; `...` ends a document).
/// A leading chunk holding only comments or blank lines is not counted as a document.
func splitYAMLDocuments(_ text: String) -> [YAMLDocumentText] {
    var documents: [YAMLDocumentText] = []
    var current: [Substring] = []
    var currentStart = 1
    var lineNumber = 0
    var sawMarker = false
    func flush(nextStart: Int) {
        let body = current.joined(separator: "\n")
        let blank = current.allSatisfy { line in
            let t = line.drop { $0 == " " || $0 == "\t" }
            return t.isEmpty || t.hasPrefix("#") || t.hasPrefix("%")
        }
        if !(blank && !sawMarker && documents.isEmpty) {
            documents.append(YAMLDocumentText(text: body, index: documents.count + 1, firstLine: currentStart))
        }
        current = []
        currentStart = nextStart
    }
    for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
        lineNumber += 1
        let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
        if line == "---" || line.hasPrefix("--- ") || line.hasPrefix("---\t") {
            flush(nextStart: lineNumber)
            sawMarker = true
            let rest = line.dropFirst(3)
            current.append(rest.allSatisfy { $0 == " " || $0 == "\t" } ? "" : rest)
        } else if line == "..." || line.hasPrefix("... ") {
            current.append("")
        } else {
            current.append(line)
        }
    }
    flush(nextStart: lineNumber + 1)
    // A trailing empty document after the last `---` is not a document.
    if let last = documents.last, documents.count > 1,
       last.text.split(separator: "\n").allSatisfy({ $0.allSatisfy { $0 == " " || $0 == "\t" } || $0.drop(while: { $0 == " " }).hasPrefix("#") }) {
        documents.removeLast()
    }
    return documents
}

/// One-line text for a YAML parse error, with the line number in the file.
func describeParseError(_ error: any Error, lineOffset: Int) -> String {
    guard let yamlError = error as? YamlError else { return "parse error: \(error)" }
    switch yamlError {
    case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
        return "YAML parse error at line \(mark.line + lineOffset), column \(mark.column): \(problem)"
    case let .reader(problem, _, _, _):
        return "YAML read error: \(problem)"
    default:
        return "YAML parse error: \(String(describing: yamlError).split(separator: "\n").first ?? "")"
    }
}

/// Turns composed YAML nodes into typed objects, collecting diagnostics.
struct ObjectDecoder {
    let file: String
    let document: Int?
    var objects = ClusterObjects()
    var diagnostics: [Diagnostic] = []

    init(file: String, document: Int?) {
        self.file = file
        self.document = document
    }

    /// Item kinds of typed lists.
    static let listItemKinds: [String: String] = [
        "ServiceList": "Service", "EndpointSliceList": "EndpointSlice",
        "NodeList": "Node", "ServiceCIDRList": "ServiceCIDR",
    ]

    /// `path` names the object inside a list (`items[3]`) for diagnostics.
    mutating func decodeObject(_ node: Yams.Node, inferredKind: String?, path: String?) {
        let kind = node["kind"]?.string.flatMap { $0.isEmpty ? nil : $0 } ?? inferredKind
        guard let kind else {
            diagnostics.append(diagnostic(node, kind: nil, field: path, message: "object has no kind"))
            return
        }
        switch kind {
        case "Service":
            if let o = decode(Service.self, node, kind: kind, path: path) { objects.services.append(o) }
        case "EndpointSlice":
            if let o = decode(EndpointSlice.self, node, kind: kind, path: path) { objects.endpointSlices.append(o) }
        case "Node":
            if let o = decode(Node.self, node, kind: kind, path: path) { objects.nodes.append(o) }
        case "ServiceCIDR":
            if let o = decode(ServiceCIDR.self, node, kind: kind, path: path) { objects.serviceCIDRs.append(o) }
        default:
            guard kind == "List" || kind.hasSuffix("List") else { return }  // unknown kind: ignored
            decodeList(node, kind: kind, path: path)
        }
    }

    private mutating func decodeList(_ node: Yams.Node, kind: String, path: String?) {
        let itemKind = Self.listItemKinds[kind]
        guard let itemsNode = node["items"], itemsNode.null == nil else { return }
        guard let items = itemsNode.sequence else {
            diagnostics.append(diagnostic(node, kind: kind, field: join(path, "items"), message: "items is not a list"))
            return
        }
        for (i, item) in items.enumerated() {
            let itemPath = join(path, "items[\(i)]")
            guard item.mapping != nil else {
                diagnostics.append(diagnostic(node, kind: kind, field: itemPath, message: "list item is not an object"))
                continue
            }
            decodeObject(item, inferredKind: itemKind, path: itemPath)
        }
    }

    private mutating func decode<T: Decodable & Sendable & Hashable>(
        _ type: T.Type, _ node: Yams.Node, kind: String, path: String?
    ) -> Sourced<T>? {
        do {
            return Sourced(try YAMLDecoder().decode(T.self, from: node), file: file)
        } catch let error as DecodingError {
            let (field, message) = describeDecodingError(error)
            diagnostics.append(diagnostic(node, kind: kind, field: join(path, field), message: message))
        } catch {
            diagnostics.append(diagnostic(node, kind: kind, field: path, message: "cannot decode: \(error)"))
        }
        return nil
    }

    private func diagnostic(_ node: Yams.Node, kind: String?, field: String?, message: String) -> Diagnostic {
        let metadata = node["metadata"]
        let namespaced = kind == "Service" || kind == "EndpointSlice"
        return Diagnostic(file: file, document: document, kind: kind,
                          namespace: metadata?["namespace"]?.string ?? (namespaced ? "default" : nil),
                          name: metadata?["name"]?.string,
                          field: field, message: message)
    }

    private func join(_ a: String?, _ b: String?) -> String? {
        switch (a, b) {
        case (nil, nil): nil
        case (let a?, nil): a
        case (nil, let b?): b
        case (let a?, let b?): b.isEmpty ? a : "\(a).\(b)"
        }
    }
}

/// `(field path, message)` for a decoding error, e.g. `("spec.ports[0].port", "expected a number")`.
func describeDecodingError(_ error: DecodingError) -> (String?, String) {
    func path(_ codingPath: [any CodingKey]) -> String? {
        var out = ""
        for key in codingPath {
            if let i = key.intValue {
                out += "[\(i)]"
            } else {
                out += out.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return out.isEmpty ? nil : out
    }
    switch error {
    case let .typeMismatch(type, context):
        return (path(context.codingPath), "expected \(typeName(type))")
    case let .valueNotFound(type, context):
        return (path(context.codingPath), "expected \(typeName(type)), found null")
    case let .keyNotFound(key, context):
        return (path(context.codingPath + [key]), "required field is missing")
    case let .dataCorrupted(context):
        return (path(context.codingPath), context.debugDescription)
    @unknown default:
        return (nil, "cannot decode: \(error)")
    }
}

private func typeName(_ type: Any.Type) -> String {
    if type is Int.Type || type is Int32.Type || type is Int64.Type || type is UInt16.Type { return "a number" }
    if type is String.Type { return "a string" }
    if type is Bool.Type { return "true or false" }
    let name = String(describing: type)
    if name.hasPrefix("Array") { return "a list" }
    if name.hasPrefix("Dictionary") { return "a mapping" }
    return "an object"
}
