/// A problem found while loading, validating or planning Kubernetes objects.
///
/// Diagnostics are returned alongside results, never thrown: an invalid object (or one
/// invalid entry of it) is left out and everything else is still planned. `description`
/// is the single line to print, e.g.
/// `Rulesets/bad.yaml: Service default/web: spec.ports[1].port: 70000 is outside 1-65535`.
public struct Diagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `error`: something was left out. `warning`: input was accepted but looks wrong.
    public enum Severity: String, Sendable, Hashable, Codable {
        case error
        case warning
    }

    public var severity: Severity
    /// The manifest file the object came from (nil for objects from the API server or flags).
    public var file: String?
    /// 1-based YAML document index inside `file`, for parse errors of multi-document files.
    public var document: Int?
    /// `Service`, `EndpointSlice`, `Node`, `ServiceCIDR`, `KubeProxyConfiguration`, or nil.
    public var kind: String?
    public var namespace: String?
    public var name: String?
    /// JSON path of the offending field, e.g. `spec.ports[1].port`.
    public var field: String?
    public var message: String

    public init(severity: Severity = .error, file: String? = nil, document: Int? = nil, kind: String? = nil,
                namespace: String? = nil, name: String? = nil, field: String? = nil, message: String) {
        self.severity = severity
        self.file = file
        self.document = document
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.field = field
        self.message = message
    }

    /// `namespace/name` (or `name` for cluster-scoped objects).
    public var objectName: String? {
        guard let name else { return namespace.map { "\($0)/<unnamed>" } }
        if let namespace, !namespace.isEmpty { return "\(namespace)/\(name)" }
        return name
    }

    /// `file: Kind ns/name: field: message`, leaving out the parts that are unknown.
    public var description: String {
        var parts: [String] = []
        if let file {
            parts.append(document.map { "\(file) (document \($0))" } ?? file)
        }
        if let kind {
            parts.append([kind, objectName].compactMap { $0 }.joined(separator: " "))
        } else if let objectName {
            parts.append(objectName)
        }
        if let field { parts.append(field) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }

    public var isError: Bool { severity == .error }
}

/// Builds diagnostics for one object; keeps the object's identity in one place.
struct DiagnosticContext: Sendable {
    var file: String?
    var kind: String
    var namespace: String?
    var name: String?

    func error(_ field: String?, _ message: String) -> Diagnostic {
        Diagnostic(severity: .error, file: file, kind: kind, namespace: namespace, name: name, field: field, message: message)
    }

    func warning(_ field: String?, _ message: String) -> Diagnostic {
        Diagnostic(severity: .warning, file: file, kind: kind, namespace: namespace, name: name, field: field, message: message)
    }
}
