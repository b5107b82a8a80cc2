import Foundation
@testable import SluiceKube
import SluiceKubeFake
import SluiceModel
import SluiceTestSupport
import Testing

/// The hand-written readers (`Service(json:)`, `EndpointSlice(json:)`, list pages, watch
/// events) against `JSONDecoder`: whatever they accept, they read exactly as `JSONDecoder`
/// does, and they accept every document of the plain shape.
@Suite("JSON reader")
struct JSONReaderTests {
    @Test("random Services and EndpointSlices: the reader agrees with JSONDecoder, and reads every plain document", arguments: [1, 2, 3, 4])
    func differential(seed: UInt64) throws {
        var gen = DocumentGenerator(rng: SeededGenerator(state: seed))
        var (plainRead, fellBack) = (0, 0)
        for i in 0..<1500 {
            let isService = i % 2 == 0
            let doc = gen.document(isService ? DocumentGenerator.service : DocumentGenerator.endpointSlice)
            let bytes = Array(doc.text.utf8)
            if isService {
                try check(Service.self, bytes, plain: doc.plain, read: { try Service(json: &$0) })
            } else {
                try check(EndpointSlice.self, bytes, plain: doc.plain, read: { try EndpointSlice(json: &$0) })
            }
            if doc.plain { plainRead += 1 } else { fellBack += 1 }
        }
        // Both kinds of document were generated in numbers.
        #expect(plainRead > 100 && fellBack > 100, "plain \(plainRead), irregular \(fellBack)")
    }

    private func check<T: Decodable & Equatable>(_ type: T.Type, _ bytes: [UInt8], plain: Bool,
                                                  read: (inout JSONReader) throws -> T) throws {
        let text = String(decoding: bytes, as: UTF8.self)
        let fast = JSONReader.read(bytes, read)
        let slow = try? JSONDecoder().decode(T.self, from: Data(bytes))
        if let fast {
            #expect(slow == fast, "reader and JSONDecoder differ on \(text)")
        }
        if plain {
            #expect(fast != nil, "plain document left to JSONDecoder: \(text)")
        }
    }

    @Test("objects as the API server serves them (managedFields, escaped annotations, targetRef) are read, and no prefix of them is")
    func apiServerObjects() throws {
        try readWhole(Service.self, Self.service) { try Service(json: &$0) }
        try readWhole(EndpointSlice.self, Self.slice) { try EndpointSlice(json: &$0) }
        let svc = try #require(JSONReader.read(Array(Self.service.utf8)) { try Service(json: &$0) })
        #expect(svc.metadata.annotations == nil && svc.metadata.labels == [WellKnownKeys.serviceProxyName: "sluice"])
        #expect(svc.spec.ports == [Service.Port(name: "http", protocol: "TCP", port: 80, targetPort: .string("web"))])
        let slice = try #require(JSONReader.read(Array(Self.slice.utf8)) { try EndpointSlice(json: &$0) })
        #expect(slice.endpoints?.map(\.addresses) == [["10.1.0.7"], ["10.1.0.8"]])
        #expect(slice.endpoints?.first?.hints?.forZones?.first?.name == "z1")
    }

    /// `text` is read as `JSONDecoder` reads it, and none of its prefixes is.
    private func readWhole<T: Decodable & Equatable>(_ type: T.Type, _ text: String, read: @escaping (inout JSONReader) throws -> T) throws {
        let bytes = Array(text.utf8)
        let fast = JSONReader.read(bytes, read)
        let slow = try JSONDecoder().decode(T.self, from: Data(bytes))
        #expect(fast == slow)
        for end in 0..<bytes.count {
            #expect(JSONReader.read(Array(bytes[..<end]), read) == nil, "prefix of \(end) bytes read")
        }
    }

    @Test("list pages and watch events of Services and EndpointSlices take the reader; other kinds and irregular events JSONDecoder")
    func pagesAndEvents() throws {
        let page = #"{"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"7","remainingItemCount":3},"items":["#
            + Self.slice + "]}"
        let body = try #require(JSONReader.read(Array(page.utf8), KubeAPIClient.ListBody<EndpointSlice>.init(json:)))
        #expect(body.metadata == ListMeta(resourceVersion: "7", continue: nil, remainingItemCount: 3) && body.items?.count == 1)
        #expect(try KubeAPIClient.decodeListPage(EndpointSlice.self, from: Data(page.utf8)).items.first?.kind == "EndpointSlice")
        // A Node has no reader: the page goes through JSONDecoder, with the same result.
        let nodes = #"{"metadata":{"resourceVersion":"9"},"items":[{"metadata":{"name":"n1"}}]}"#
        #expect(JSONReader.read(Array(nodes.utf8), KubeAPIClient.ListBody<Node>.init(json:)) == nil)
        #expect(try KubeAPIClient.decodeListPage(Node.self, from: Data(nodes.utf8)).items.map(\.metadata.name) == ["n1"])

        typealias Envelope = Reflector<EndpointSlice>.Envelope
        let added = Array((#"{"type":"ADDED","object":"# + Self.slice + "}").utf8)
        #expect(Envelope.read(added)?.object?.metadata.name == "web-abc")
        for irregular in [#"{"object":"# + Self.slice + #","type":"ADDED"}"#,            // object before type
                          #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"5"}}}"#,
                          #"{"type":"ERROR","object":{"code":410}}"#,
                          #"{"type":"ADDED","object":null}"#] {
            #expect(Envelope.read(Array(irregular.utf8)) == nil, "\(irregular)")
        }
    }

    @Test("the fake server's JSON values parse as JSONDecoder parses them, and render escaped as Go's encoder does")
    func fakeServerValues() throws {
        var gen = DocumentGenerator(rng: SeededGenerator(state: 9))
        for i in 0..<600 {
            let text = gen.document(i % 2 == 0 ? DocumentGenerator.service : DocumentGenerator.endpointSlice).text
            let slow = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            #expect((try? JSONValue.parse(text)) == slow, "\(text)")
        }
        #expect(JSONValue.string("plain-text 10.0.0.1").rendered() == #""plain-text 10.0.0.1""#)
        #expect(JSONValue.string("a<b>&\"\\\n\u{1}é").rendered() == #""a\u003cb\u003e\u0026\"\\\n\u0001é""#)
    }

    @Test("nesting deeper than the reader's limit is left to JSONDecoder")
    func deepNesting() {
        let deep = String(repeating: "[", count: JSONReader.maxDepth + 1) + String(repeating: "]", count: JSONReader.maxDepth + 1)
        #expect(JSONReader.read(Array(#"{"x":\#(deep)}"#.utf8)) { try Service(json: &$0) } == nil)
        let shallow = String(repeating: "[", count: 10) + String(repeating: "]", count: 10)
        #expect(JSONReader.read(Array(#"{"x":\#(shallow)}"#.utf8)) { try Service(json: &$0) } != nil)
    }

    static let service = #"""
        {"kind":"Service","apiVersion":"v1","metadata":{"name":"web","namespace":"shop","uid":"5e0c-11","resourceVersion":"41",
         "creationTimestamp":"2026-01-01T00:00:00Z","labels":{"app":"web","service.kubernetes.io/service-proxy-name":"sluice"},
         "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"x\":\"\u00e9\\\"\"}\n"},
         "managedFields":[{"manager":"kubectl","operation":"Update","apiVersion":"v1","time":"2026-01-01T00:00:00Z","fieldsType":"FieldsV1",
           "fieldsV1":{"f:spec":{"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{}}}}}]},
         "spec":{"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":"web"}],"selector":{"app":"web"},"clusterIP":"10.96.0.10",
          "clusterIPs":["10.96.0.10"],"type":"ClusterIP","sessionAffinity":"None","ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack",
          "internalTrafficPolicy":"Cluster","weight":-1.5e+3,"flag":true,"nothing":null},
         "status":{"loadBalancer":{}}}
        """#

    static let slice = #"""
        {"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"web-abc","namespace":"shop",
          "labels":{"kubernetes.io/service-name":"web","endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io"},
          "annotations":{"endpoints.kubernetes.io/last-change-trigger-time":"2026-01-01T00:00:00Z"},
          "ownerReferences":[{"apiVersion":"v1","kind":"Service","name":"web","uid":"5e0c-11","controller":true,"blockOwnerDeletion":true}]},
         "addressType":"IPv4",
         "endpoints":[{"addresses":["10.1.0.7"],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"n1","zone":"z1",
                       "hints":{"forZones":[{"name":"z1"}]},"targetRef":{"kind":"Pod","namespace":"shop","name":"web-1","uid":"aa"}},
                      {"addresses":["10.1.0.8"],"conditions":{"ready":false},"nodeName":"n2","targetRef":{"kind":"Pod","name":"web-2"}}],
         "ports":[{"name":"http","protocol":"TCP","port":8080}]}
        """#
}

/// Random JSON documents of a schema, with irregularities (escapes, wrong types, fractions,
/// duplicates, broken syntax) in places the reader reads. `plain` is false once one was made.
struct DocumentGenerator {
    indirect enum Shape: Sendable {
        case string, int, bool, intOrString
        case array(Shape)
        case object([(String, Shape)])
        /// A string map of which the proxy keeps `keys`.
        case kept([String])
    }

    var rng: SeededGenerator
    var plain = true

    mutating func document(_ shape: Shape) -> (text: String, plain: Bool) {
        plain = true
        var text = value(shape, nullable: false)
        if chance(40) { text = damage(text) }
        return (text, plain)
    }

    mutating func chance(_ n: Int) -> Bool { rng.int(n) == 0 }

    mutating func irregular(_ text: String) -> String {
        plain = false
        return text
    }

    mutating func value(_ shape: Shape, nullable: Bool = true) -> String {
        if nullable && chance(15) { return "null" }
        if chance(40) { return irregular(junk(depth: 0)) }   // most likely the wrong type
        switch shape {
        case .string: return string()
        case .int:
            switch rng.int(30) {
            case 0: return irregular("\(rng.int(100)).0")
            case 1: return irregular("\(rng.int(9) + 1)e2")
            case 2: return irregular("123456789012345678901")
            default: return rng.int(5) == 0 ? "-\(rng.int(70000))" : "\(rng.int(70000))"
            }
        case .bool: return chance(2) ? "true" : "false"
        case .intOrString: return chance(2) ? value(.int, nullable: false) : string()
        case .array(let element):
            let items = (0..<rng.int(4)).map { _ in
                chance(25) ? irregular("null") : value(element, nullable: false)
            }
            return "[" + items.joined(separator: ",") + "]"
        case .object(let fields):
            var members = fields.filter { _ in !chance(4) }.map { key(of: $0.0) + ":" + value($0.1) }
            for _ in 0..<rng.int(3) { members.append("\"x-\(rng.int(1000))\":" + junk(depth: 0)) }
            if let dup = fields.randomElement(using: &rng), chance(30) {
                members.append(irregular("\"\(dup.0)\":" + value(dup.1)))
            }
            members.shuffle(using: &rng)
            return "{" + members.joined(separator: chance(5) ? " ,\n " : ",") + "}"
        case .kept(let keys):
            var members: [String] = []
            for key in keys where chance(2) {
                members.append("\"\(key)\":" + (chance(10) ? "null" : chance(20) ? irregular("7") : string()))
            }
            for _ in 0..<rng.int(3) { members.append("\"foreign.io/k\(rng.int(100))\":" + junk(depth: 0)) }
            members.shuffle(using: &rng)
            return "{" + members.joined(separator: ",") + "}"
        }
    }

    /// A key as JSON text, sometimes with its first letter escaped (`"n\u0061me"` is `name`).
    mutating func key(of name: String) -> String {
        guard chance(20), let first = name.unicodeScalars.first else { return "\"\(name)\"" }
        return "\"\\u00" + String(first.value, radix: 16) + name.dropFirst() + "\""
    }

    /// A string the reader reads: mostly plain, sometimes not ASCII, sometimes escaped.
    mutating func string() -> String {
        switch rng.int(20) {
        case 0: return "\"caf\u{e9}-\u{65e5}\u{672c}-\u{1F600}\""
        case 1: return #""a\nb\t\/\\""#
        case 2: return #""\u0041\" \u00e9 \ud83d\ude00""#
        case 3: return irregular(#""lone \ud800 surrogate""#)
        case 4: return "\"\""
        default: return "\"v\(rng.int(100_000))\""
        }
    }

    /// Any valid JSON value, with escapes and exponents: read nowhere, skipped everywhere.
    mutating func junk(depth: Int) -> String {
        switch rng.int(depth > 3 ? 6 : 9) {
        case 0: return #""esc \" \\ \/ \b\f\n\r\t \u00e9 \ud83d\ude00""#
        case 1: return "-0.5e-3"
        case 2: return "1E+9"
        case 3: return "true"
        case 4: return "null"
        case 5: return "\"plain\""
        case 6: return "[" + (0..<rng.int(3)).map { _ in junk(depth: depth + 1) }.joined(separator: ",") + "]"
        case 7: return "{" + (0..<rng.int(3)).map { "\"k\($0)\":" + junk(depth: depth + 1) }.joined(separator: ",") + "}"
        default: return "{\"f:spec\":{\".\":{}}}"
        }
    }

    /// Broken JSON: a byte dropped, a trailing comma, or trailing garbage.
    mutating func damage(_ text: String) -> String {
        plain = false
        var bytes = Array(text.utf8)
        switch rng.int(3) {
        case 0 where bytes.count > 2: bytes.remove(at: 1 + rng.int(bytes.count - 2))
        case 1: bytes.insert(UInt8(ascii: ","), at: bytes.count - 1)
        default: bytes += Array(" x".utf8)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static let meta: Shape = .object([
        ("name", .string), ("namespace", .string), ("resourceVersion", .string), ("deletionTimestamp", .string),
        ("labels", .kept(["kubernetes.io/service-name", "topology.kubernetes.io/zone", "service.kubernetes.io/service-proxy-name",
                          "service.kubernetes.io/headless"])),
        ("annotations", .kept(["sluice.dev/weight", "endpoints.kubernetes.io/last-change-trigger-time"])),
    ])

    static let service: Shape = .object([
        ("apiVersion", .string), ("kind", .string), ("metadata", meta),
        ("spec", .object([
            ("type", .string), ("clusterIP", .string), ("clusterIPs", .array(.string)), ("ipFamilies", .array(.string)),
            ("ports", .array(.object([("name", .string), ("protocol", .string), ("port", .int), ("targetPort", .intOrString),
                                      ("nodePort", .int)]))),
            ("externalIPs", .array(.string)), ("loadBalancerSourceRanges", .array(.string)), ("sessionAffinity", .string),
            ("sessionAffinityConfig", .object([("clientIP", .object([("timeoutSeconds", .int)]))])),
            ("externalTrafficPolicy", .string), ("internalTrafficPolicy", .string), ("healthCheckNodePort", .int),
            ("externalName", .string), ("trafficDistribution", .string),
        ])),
        ("status", .object([("loadBalancer", .object([("ingress", .array(.object([("ip", .string), ("hostname", .string),
                                                                                  ("ipMode", .string)])))]))])),
    ])

    static let endpointSlice: Shape = .object([
        ("apiVersion", .string), ("kind", .string), ("metadata", meta), ("addressType", .string),
        ("endpoints", .array(.object([
            ("addresses", .array(.string)),
            ("conditions", .object([("ready", .bool), ("serving", .bool), ("terminating", .bool)])),
            ("nodeName", .string), ("zone", .string),
            ("hints", .object([("forZones", .array(.object([("name", .string)]))), ("forNodes", .array(.object([("name", .string)])))])),
        ]))),
        ("ports", .array(.object([("name", .string), ("protocol", .string), ("port", .int)]))),
    ])
}
