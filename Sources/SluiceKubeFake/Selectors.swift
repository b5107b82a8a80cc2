/// Label and field selectors as the API server parses them (`k8s.io/apimachinery/pkg/labels`):
/// `key=v`, `key==v`, `key!=v`, `key in (a,b)`, `key notin (a,b)`, `key`, `!key`, comma-joined.
public struct LabelSelector: Sendable, Hashable, CustomStringConvertible {
    public enum Requirement: Sendable, Hashable {
        case equals(String, String)
        case notEquals(String, String)
        case `in`(String, Set<String>)
        case notIn(String, Set<String>)
        case exists(String)
        case doesNotExist(String)
    }

    public var requirements: [Requirement]
    public let description: String

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public init(parsing text: String) throws {
        description = text
        requirements = []
        for part in Self.splitTopLevel(text) {
            let p = part.trimmingCharactersInSpaces()
            if p.isEmpty { continue }
            requirements.append(try Self.parseRequirement(p))
        }
    }

    public func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { r in
            switch r {
            case .equals(let k, let v): labels[k] == v
            // `!=` matches objects without the key too.
            case .notEquals(let k, let v): labels[k] != v
            case .in(let k, let vs): labels[k].map { vs.contains($0) } ?? false
            case .notIn(let k, let vs): labels[k].map { !vs.contains($0) } ?? true
            case .exists(let k): labels[k] != nil
            case .doesNotExist(let k): labels[k] == nil
            }
        }
    }

    static func splitTopLevel(_ s: String) -> [String] {
        var out: [String] = []
        var cur = ""
        var depth = 0
        for ch in s {
            if ch == "(" { depth += 1 }
            if ch == ")" { depth -= 1 }
            if ch == "," && depth == 0 {
                out.append(cur)
                cur = ""
            } else {
                cur.append(ch)
            }
        }
        out.append(cur)
        return out
    }

    static func parseRequirement(_ p: String) throws -> Requirement {
        if p.hasPrefix("!") {
            let key = String(p.dropFirst()).trimmingCharactersInSpaces()
            try validateKey(key)
            return .doesNotExist(key)
        }
        if let r = p.range(of: "!=") {
            let k = String(p[..<r.lowerBound]).trimmingCharactersInSpaces()
            try validateKey(k)
            return .notEquals(k, String(p[r.upperBound...]).trimmingCharactersInSpaces())
        }
        if let r = p.range(of: "==") {
            let k = String(p[..<r.lowerBound]).trimmingCharactersInSpaces()
            try validateKey(k)
            return .equals(k, String(p[r.upperBound...]).trimmingCharactersInSpaces())
        }
        if let r = p.range(of: "=") {
            let k = String(p[..<r.lowerBound]).trimmingCharactersInSpaces()
            try validateKey(k)
            return .equals(k, String(p[r.upperBound...]).trimmingCharactersInSpaces())
        }
        for (word, isIn) in [(" notin ", false), (" in ", true)] {
            if let r = p.range(of: word) {
                let k = String(p[..<r.lowerBound]).trimmingCharactersInSpaces()
                try validateKey(k)
                var rest = String(p[r.upperBound...]).trimmingCharactersInSpaces()
                guard rest.hasPrefix("("), rest.hasSuffix(")") else {
                    throw ParseError(description: "unable to parse requirement: found '\(rest)', expected: '('")
                }
                rest = String(rest.dropFirst().dropLast())
                let values = Set(rest.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharactersInSpaces() })
                return isIn ? .in(k, values) : .notIn(k, values)
            }
        }
        try validateKey(p)
        return .exists(p)
    }

    static func validateKey(_ k: String) throws {
        if k.isEmpty || k.contains(" ") || k.contains("(") || k.contains(")") {
            throw ParseError(description: "unable to parse requirement: invalid label key \"\(k)\"")
        }
    }
}

/// `fieldSelector`: `metadata.name` and `metadata.namespace` with `=`, `==`, `!=`.
public struct FieldSelector: Sendable, Hashable {
    public enum Requirement: Sendable, Hashable {
        case equals(String, String)
        case notEquals(String, String)
    }
    public var requirements: [Requirement]

    public init(parsing text: String) throws {
        requirements = []
        for part in text.split(separator: ",") {
            let p = String(part).trimmingCharactersInSpaces()
            let (field, value, negate): (String, String, Bool)
            if let r = p.range(of: "!=") {
                (field, value, negate) = (String(p[..<r.lowerBound]), String(p[r.upperBound...]), true)
            } else if let r = p.range(of: "==") {
                (field, value, negate) = (String(p[..<r.lowerBound]), String(p[r.upperBound...]), false)
            } else if let r = p.range(of: "=") {
                (field, value, negate) = (String(p[..<r.lowerBound]), String(p[r.upperBound...]), false)
            } else {
                throw LabelSelector.ParseError(description: "invalid selector: '\(text)'; can't understand '\(p)'")
            }
            guard field == "metadata.name" || field == "metadata.namespace" else {
                throw LabelSelector.ParseError(description: "\"\(field)\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")
            }
            requirements.append(negate ? .notEquals(field, value) : .equals(field, value))
        }
    }

    func matches(name: String, namespace: String?) -> Bool {
        requirements.allSatisfy { r in
            switch r {
            case .equals(let f, let v): (f == "metadata.name" ? name : (namespace ?? "")) == v
            case .notEquals(let f, let v): (f == "metadata.name" ? name : (namespace ?? "")) != v
            }
        }
    }
}

extension String {
    func trimmingCharactersInSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
