import Foundation
import Yams

/// Loads Kubernetes manifests: files and directories (recursively; `.yaml`, `.yml`, `.json`,
/// sorted by path for determinism; hidden entries such as a ConfigMap mount's `..data` are
/// skipped), several YAML documents per file, JSON files, and `List` / `ServiceList` /
/// `EndpointSliceList` / `NodeList` / `ServiceCIDRList` / `PodList` objects (`kubectl get
/// pods -o yaml` gives a `List` of Pods) (items of typed lists may
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
        var documents = DocumentCache()
        return loadFile(path, documents: &documents)
    }

    /// Reads and parses one file, re-parsing only the YAML documents that are not in
    /// `documents` (what the previous version of the file gave); `documents` is replaced by
    /// this version's. A watched file edited in one place is parsed in that place only.
    public func loadFile(_ path: String, documents: inout DocumentCache) -> Result {
        guard let data = FileManager.default.contents(atPath: path) else {
            documents = DocumentCache()
            return Result(diagnostics: [Diagnostic(file: path, message: "cannot read file")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            documents = DocumentCache()
            return Result(diagnostics: [Diagnostic(file: path, message: "file is not UTF-8 text")])
        }
        return parse(text: text, file: path, documents: &documents)
    }

    /// Parses manifest text. `.json` files are one JSON document, decoded by `JSONDecoder`;
    /// otherwise the text is split into YAML documents at `---` lines so that one broken
    /// document does not hide the rest.
    public func parse(text: String, file: String) -> Result {
        var documents = DocumentCache()
        return parse(text: text, file: file, documents: &documents)
    }

    /// `parse(text:file:)`, taking unchanged YAML documents from `documents` (see `loadFile(_:documents:)`).
    public func parse(text: String, file: String, documents cache: inout DocumentCache) -> Result {
        if file.lowercased().hasSuffix(".json") {
            cache = DocumentCache()
            return parseJSON(Data(text.utf8), file: file)
        }
        var result = Result()
        var next = DocumentCache()
        for document in splitYAMLDocuments(text) {
            let key = DocumentCache.Key(document)
            let parsed: Result
            if let known = cache.results[key], known.fits(document) {
                parsed = known.result
            } else {
                parsed = parse(document: document, file: file)
                next.lastParsed += 1
            }
            next.results[key] = DocumentCache.Entry(result: parsed, document)
            result.append(parsed)
        }
        cache = next
        return result
    }

    /// Composes one YAML document (`YAMLComposer`, libyaml's events) and decodes it with `NodeDecoder`.
    private func parse(document: YAMLDocumentText, file: String) -> Result {
        let tree: YAMLTree?
        do {
            tree = try YAMLComposer.compose(document.text)
        } catch {
            return Result(diagnostics: [Diagnostic(file: file, document: document.index,
                                                   message: describeParseError(error, lineOffset: document.firstLine - 1))])
        }
        guard let tree else { return Result() }  // empty document
        var decoder = ObjectDecoder(file: file, document: document.index)
        decoder.decodeDocument(NodeDecoder(tree, tree.root))
        return Result(objects: decoder.objects, diagnostics: decoder.diagnostics)
    }

    /// Decodes one JSON document straight into model types.
    func parseJSON(_ data: Data, file: String) -> Result {
        let json = JSONDecoder()
        json.userInfo[JSONManifest.fileKey] = file
        do {
            let decoded = try json.decode(JSONManifest.self, from: data)
            return Result(objects: decoded.decoder.objects, diagnostics: decoded.decoder.diagnostics)
        } catch {
            return Result(diagnostics: [Diagnostic(file: file, message: describeJSONError(error))])
        }
    }
}

/// A JSON manifest decoded by `JSONDecoder`: the document goes through `ObjectDecoder`.
struct JSONManifest: Decodable {
    static let fileKey = CodingUserInfoKey(rawValue: "sluice.manifest.file")!
    var decoder: ObjectDecoder

    init(from decoder: any Decoder) throws {
        self.decoder = ObjectDecoder(file: decoder.userInfo[Self.fileKey] as? String ?? "", document: nil)
        self.decoder.decodeDocument(decoder)
    }
}

/// One-line text for a JSON syntax error.
func describeJSONError(_ error: any Error) -> String {
    if case DecodingError.dataCorrupted(let context) = error, let underlying = context.underlyingError {
        let text = (underlying as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(underlying)"
        return "JSON parse error: \(text)"
    }
    return "JSON parse error: \(error)"
}

/// What each YAML document of a file gave, by its text: a document whose text is unchanged
/// parses to the same objects wherever it now stands in the file, so an edit that adds or
/// removes lines (or documents) re-parses only what it touched. A result with diagnostics
/// names its document's number and lines, so it is reused only in the same place. Keyed by a
/// 64-bit hash of the text plus its length, so the texts themselves are not kept.
public struct DocumentCache: Sendable {
    struct Key: Hashable, Sendable {
        var textHash: Int
        var length: Int

        init(_ d: YAMLDocumentText) {
            var h = Hasher()
            h.combine(d.text)
            textHash = h.finalize()
            length = d.text.utf8.count
        }
    }

    /// A document's result and where the document stood.
    struct Entry: Sendable {
        var result: ManifestLoader.Result
        var index: Int?
        var firstLine: Int

        init(result: ManifestLoader.Result, _ d: YAMLDocumentText) {
            self.result = result
            index = d.index
            firstLine = d.firstLine
        }

        /// Whether the result holds for `d`, which has the same text: always without
        /// diagnostics, else only in the same place.
        func fits(_ d: YAMLDocumentText) -> Bool {
            result.diagnostics.isEmpty || (index == d.index && firstLine == d.firstLine)
        }
    }

    var results: [Key: Entry] = [:]

    public init() {}

    /// Documents remembered.
    public var count: Int { results.count }
    /// Documents the call that made this cache had to parse (the others were remembered).
    public internal(set) var lastParsed = 0
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
/// A leading chunk holding only comments or blank lines is not counted as a document, nor is
/// a trailing one after the last `---`. One pass over the bytes; a document's text starts
/// right after its `---` (so its line 1 is the marker's line). Streams with `...` markers
/// take the line-by-line path.
func splitYAMLDocuments(_ text: String) -> [YAMLDocumentText] {
    var text = text
    guard let cuts = text.withUTF8({ documentMarkers($0) }) else { return splitYAMLDocumentsByLines(text) }
    let utf8 = text.utf8
    func slice(_ from: Int, _ to: Int) -> Substring {
        Substring(utf8[utf8.index(utf8.startIndex, offsetBy: from)..<utf8.index(utf8.startIndex, offsetBy: to)])
    }
    var documents: [YAMLDocumentText] = []
    let head = slice(0, cuts.first?.lineStart ?? utf8.count)
    if !isBlankYAML(head) { documents.append(YAMLDocumentText(text: String(head), index: 1, firstLine: 1)) }
    for (k, cut) in cuts.enumerated() {
        let end = k + 1 < cuts.count ? cuts[k + 1].lineStart : utf8.count
        documents.append(YAMLDocumentText(text: String(slice(cut.contentStart, end)), index: documents.count + 1, firstLine: cut.line))
    }
    if documents.count > 1, let last = documents.last, isBlankYAML(last.text[...], directives: false) { documents.removeLast() }
    return documents
}

/// `---` lines: their line number, where the line starts and where the text after `---`
/// starts (byte offsets). Nil when the stream has a `...` line.
private func documentMarkers(_ b: UnsafeBufferPointer<UInt8>) -> [(line: Int, lineStart: Int, contentStart: Int)]? {
    var cuts: [(line: Int, lineStart: Int, contentStart: Int)] = []
    var i = 0
    var line = 1
    func isMarker(_ c: UInt8) -> Bool {
        guard i + 2 < b.count, b[i] == c, b[i + 1] == c, b[i + 2] == c else { return false }
        return i + 3 == b.count || [UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: " "), UInt8(ascii: "\t")].contains(b[i + 3])
    }
    while i < b.count {
        if isMarker(UInt8(ascii: "-")) { cuts.append((line, i, i + 3)) }
        if isMarker(UInt8(ascii: ".")) { return nil }
        guard let nl = b[i...].firstIndex(of: UInt8(ascii: "\n")) else { break }
        i = nl + 1
        line += 1
    }
    return cuts
}

/// Only blank lines and comments (and, before the first document, directives).
private func isBlankYAML(_ text: Substring, directives: Bool = true) -> Bool {
    text.split(separator: "\n").allSatisfy { line in
        let t = line.drop { $0 == " " || $0 == "\t" || $0 == "\r" }
        return t.isEmpty || t.hasPrefix("#") || (directives && t.hasPrefix("%"))
    }
}

/// The line-by-line splitter (streams with `...` document-end markers).
func splitYAMLDocumentsByLines(_ text: String) -> [YAMLDocumentText] {
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
    if let e = error as? YAMLComposer.SyntaxError {
        return "YAML parse error at line \(e.line + lineOffset), column \(e.column): \(e.problem)"
    }
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

/// Turns decoded documents (a `NodeDecoder` over YAML, or `JSONDecoder`) into typed objects,
/// collecting diagnostics: one per bad object, which is left out.
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
        "NodeList": "Node", "ServiceCIDRList": "ServiceCIDR", "PodList": "Pod",
    ]

    /// What is read of any object before it is decoded as its kind.
    enum HeadKeys: String, CodingKey { case kind, metadata, items }

    /// `metadata.namespace` and `metadata.name`, for diagnostics; anything malformed is nil.
    struct Identity: Decodable {
        var namespace: String?
        var name: String?

        enum CodingKeys: String, CodingKey { case namespace, name }
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            namespace = try? c.decodeIfPresent(String.self, forKey: .namespace)
            name = try? c.decodeIfPresent(String.self, forKey: .name)
        }
    }

    /// A whole document: it must be a mapping.
    mutating func decodeDocument(_ decoder: any Decoder) {
        guard let head = try? decoder.container(keyedBy: HeadKeys.self) else {
            diagnostics.append(Diagnostic(file: file, document: document,
                                          message: "document is not a mapping (expected a Kubernetes object)"))
            return
        }
        decodeObject(decoder, head: head, inferredKind: nil)
    }

    private mutating func decodeObject(_ decoder: any Decoder, head: KeyedDecodingContainer<HeadKeys>, inferredKind: String?) {
        let kind = (try? head.decodeIfPresent(String.self, forKey: .kind)).flatMap { $0.isEmpty ? nil : $0 } ?? inferredKind
        guard let kind else {
            diagnostics.append(diagnostic(head, kind: nil, field: fieldPath(decoder.codingPath), message: "object has no kind"))
            return
        }
        switch kind {
        case "Service":
            if let o = decode(Service.self, decoder, head, kind: kind) { objects.services.append(o) }
        case "EndpointSlice":
            if let o = decode(EndpointSlice.self, decoder, head, kind: kind) { objects.endpointSlices.append(o) }
        case "Node":
            if let o = decode(Node.self, decoder, head, kind: kind) { objects.nodes.append(o) }
        case "ServiceCIDR":
            if let o = decode(ServiceCIDR.self, decoder, head, kind: kind) { objects.serviceCIDRs.append(o) }
        case "Pod":
            if let o = decode(Pod.self, decoder, head, kind: kind) { objects.pods.append(o) }
        default:
            guard kind == "List" || kind.hasSuffix("List") else { return }  // unknown kind: ignored
            decodeList(head, kind: kind)
        }
    }

    private mutating func decodeList(_ head: KeyedDecodingContainer<HeadKeys>, kind: String) {
        guard (try? head.decodeNil(forKey: .items)) == false else { return }  // absent or null
        guard var items = try? head.nestedUnkeyedContainer(forKey: .items) else {
            diagnostics.append(diagnostic(head, kind: kind, field: fieldPath(head.codingPath + [HeadKeys.items as any CodingKey]),
                                          message: "items is not a list"))
            return
        }
        while !items.isAtEnd {
            let path = fieldPath(items.codingPath + [ListIndex(items.currentIndex) as any CodingKey])
            let isNull = (try? items.decodeNil()) == true
            guard !isNull, let item = try? items.superDecoder() else {
                if !isNull { return }
                diagnostics.append(diagnostic(head, kind: kind, field: path, message: "list item is not an object"))
                continue
            }
            guard let itemHead = try? item.container(keyedBy: HeadKeys.self) else {
                diagnostics.append(diagnostic(head, kind: kind, field: path, message: "list item is not an object"))
                continue
            }
            decodeObject(item, head: itemHead, inferredKind: Self.listItemKinds[kind])
        }
    }

    private mutating func decode<T: Decodable & Sendable & Hashable>(
        _ type: T.Type, _ decoder: any Decoder, _ head: KeyedDecodingContainer<HeadKeys>, kind: String
    ) -> Sourced<T>? {
        do {
            return Sourced(try T(from: decoder), file: file)
        } catch let error as DecodingError {
            let (field, message) = describeDecodingError(error)
            diagnostics.append(diagnostic(head, kind: kind, field: field, message: message))
        } catch {
            diagnostics.append(diagnostic(head, kind: kind, field: fieldPath(decoder.codingPath), message: "cannot decode: \(error)"))
        }
        return nil
    }

    private func diagnostic(_ head: KeyedDecodingContainer<HeadKeys>, kind: String?, field: String?, message: String) -> Diagnostic {
        let identity = try? head.decodeIfPresent(Identity.self, forKey: .metadata)
        let namespaced = kind == "Service" || kind == "EndpointSlice" || kind == "Pod"
        return Diagnostic(file: file, document: document, kind: kind,
                          namespace: identity?.namespace ?? (namespaced ? "default" : nil),
                          name: identity?.name, field: field, message: message)
    }
}

/// The coding key of a list element.
struct ListIndex: CodingKey {
    var intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(_ i: Int) { intValue = i }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
}

/// `spec.ports[0].port` for a coding path; nil for the empty path.
func fieldPath(_ codingPath: [any CodingKey]) -> String? {
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

/// `(field path, message)` for a decoding error, e.g. `("spec.ports[0].port", "expected a number")`.
func describeDecodingError(_ error: DecodingError) -> (String?, String) {
    let path = fieldPath
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
