import Foundation
import Testing
@testable import SluiceModel

/// `YAMLTree` + `NodeDecoder` (bytes, node indices, coding paths built only for errors)
/// against the path they replaced (`LegacyYAMLComposer` + `LegacyNodeDecoder`, a tree of
/// Strings): every document, well-formed, broken or odd, must give the same objects, the same
/// diagnostics and the same syntax errors.
@Suite struct YAMLTreeDifferentialTests {
    /// What one YAML document gives.
    enum Outcome: Equatable, CustomStringConvertible {
        case syntax(String, Int, Int)
        case empty
        case decoded(ManifestLoader.Result)
        case probe(Probe?)
        case probeError(String)

        var description: String {
            switch self {
            case let .syntax(p, l, c): "syntax(\(p) at \(l):\(c))"
            case .empty: "empty"
            case let .decoded(r): "decoded(\(r.objects.count) objects, \(r.diagnostics.map(\.description)))"
            case let .probe(p): "probe(\(String(reflecting: p)))"
            case let .probeError(e): "probeError(\(e))"
            }
        }
    }

    /// The document through the old composer and decoder, as `ObjectDecoder` sees it.
    static func legacy(_ text: String) -> Outcome {
        do {
            guard let node = try LegacyYAMLComposer.compose(text) else { return .empty }
            var d = ObjectDecoder(file: "f.yaml", document: 1)
            d.decodeDocument(LegacyNodeDecoder(node))
            return .decoded(ManifestLoader.Result(objects: d.objects, diagnostics: d.diagnostics))
        } catch let e as LegacyYAMLComposer.SyntaxError {
            return .syntax(e.problem, e.line, e.column)
        } catch {
            return .syntax("\(error)", 0, 0)
        }
    }

    /// The document through `YAMLComposer` and `NodeDecoder`.
    static func current(_ text: String) -> Outcome {
        do {
            guard let tree = try YAMLComposer.compose(text) else { return .empty }
            var d = ObjectDecoder(file: "f.yaml", document: 1)
            d.decodeDocument(NodeDecoder(tree, tree.root))
            return .decoded(ManifestLoader.Result(objects: d.objects, diagnostics: d.diagnostics))
        } catch let e as YAMLComposer.SyntaxError {
            return .syntax(e.problem, e.line, e.column)
        } catch {
            return .syntax("\(error)", 0, 0)
        }
    }

    /// `Probe` (every scalar type, lists, maps) through both decoders: the value or the error.
    static func probes(_ text: String) -> (legacy: Outcome, current: Outcome) {
        func run(_ body: () throws -> Probe?) -> Outcome {
            do { return .probe(try body()) } catch {
                return .probeError(String(reflecting: error).replacingOccurrences(of: "SluiceModelTests.LegacyYAMLComposer", with: "SluiceModel.YAMLComposer"))
            }
        }
        let old = run { try LegacyYAMLComposer.compose(text).map { try Probe(from: LegacyNodeDecoder($0)) } }
        let new = run { try YAMLComposer.compose(text).map { try Probe(from: NodeDecoder($0, $0.root)) } }
        return (old, new)
    }

    /// A Service and its EndpointSlice as `kubectl get -o yaml` prints them (block style).
    static func objects(_ i: Int) -> [String] {
        let service = """
            apiVersion: v1
            kind: Service
            metadata:
              name: svc-\(i)
              namespace: ns-\(i % 7)
              labels: {app: app-\(i), service.kubernetes.io/headless: ""}
              annotations:
                sluice.dev/load-balancing: maglev
                team.example.com/owner: team-\(i)
            spec:
              type: NodePort
              clusterIP: 10.96.0.\(i)
              clusterIPs: [10.96.0.\(i)]
              selector: {app: app-\(i)}
              sessionAffinity: ClientIP
              sessionAffinityConfig: {clientIP: {timeoutSeconds: 0x\(i)}}
              ports:
              - {name: http, port: 80, targetPort: "8080", nodePort: 3\(i)000}
              - name: dns
                protocol: UDP
                port: 053
                targetPort: dns
            status: {loadBalancer: {ingress: [{ip: 192.0.2.\(i), ipMode: VIP}]}}

            """
        let slice = """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: svc-\(i)-abcde
              namespace: ns-\(i % 7)
              labels:
                kubernetes.io/service-name: svc-\(i)
              annotations: {sluice.dev/weight: '\(i)', endpoints.kubernetes.io/last-change-trigger-time: "2026-11-26T18:19:03Z"}
              managedFields: [{manager: m, fieldsV1: {"f:metadata": {}}}]
            addressType: IPv4
            ports: [{name: http, port: 8080, protocol: TCP}]
            endpoints:
            - addresses: [10.1.0.\(i)]
              conditions: {ready: yes, serving: on, terminating: False}
              nodeName: node-\(i)
              zone: zone-a
              hints: {forZones: [{name: zone-a}], forNodes: [{name: node-\(i)}]}
              targetRef: {kind: Pod, name: p, uid: u}
            - addresses: ["10.1.1.\(i)"]
              conditions: {ready: ~}

            """
        return [service, slice]
    }

    /// Documents that reach the odd corners: anchors, merge keys, duplicates, collection
    /// keys, non-ASCII keys (`K` and the Kelvin sign are equal Strings), nulls, radixes, errors.
    static let oddDocuments: [String] = [
        "",
        "# only a comment\n",
        "just text",
        "[a, b]",
        "kind: Service\nmetadata: {name: a}\n---\nkind: Service\n",
        "kind: Service\nmetadata: {name: a, name: b}\n",
        "kind: Service\nmetadata: {name: a, \u{212A}: 1, K: 2}\n",
        "kind: Service\nmetadata: {name: a}\nspec: {selector: {\u{212A}: 1, caf\u{E9}: x, \"cafe\u{301}\": y}}\n",
        "kind: Service\nmetadata: {name: a}\nspec: {selector: {caf\u{E9}: x, \"cafe\u{301}\": y}}\n",
        "kind: Service\nmetadata: {name: a}\nspec: {selector: {[x]: y, {k: v}: z}}\n",
        "kind: Pod\nmetadata: {name: a, labels: {[x]: y, app: \"\"}}\n",
        "base: &b {type: NodePort, clusterIP: 10.96.0.9}\nkind: Service\nmetadata: {name: m}\nspec:\n  <<: *b\n  clusterIP: 10.96.0.2\n",
        "a: &a {type: A}\nb: &b {type: B, clusterIP: c}\nkind: Service\nmetadata: {name: m}\nspec: {<<: [*a, *b, x], sessionAffinity: None}\n",
        "a: &a x\nkind: Service\nmetadata: {name: m}\nspec: {<<: *a}\n",
        "kind: Service\nmetadata: {name: m}\nspec: {<<: {type: A}, <<: {type: B}}\n",
        "kind: &k Service\nmetadata: {name: *k}\n",
        "kind: Service\nmetadata: {name: *nope}\n",
        "&n name: x\nkind: Service\nmetadata: {*n : y}\n",
        "kind: Service\nmetadata: {name: a}\nspec: {" + (0..<20).map { "k\($0): v" }.joined(separator: ", ") + ", k3: again}\n",
        "kind: Service\nmetadata: {name: a}\nspec: {" + (0..<20).map { "k\($0): v" }.joined(separator: ", ") + "}\n",
        "kind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 0x50}, {port: 0o17}, {port: 017}, {port: 0b101}, {port: -12}, {port: +12}, {port: 1_000}]}\n",
        "kind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 99999999999999999999}]}\n",
        "kind: Service\nmetadata: {name: a}\nspec: {ports: [{port: '80'}]}\n",
        "kind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80, targetPort: 0x1F}, {port: 81, targetPort: 08}, null, ~]}\n",
        "kind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}, [1]]}\n",
        "kind: Service\nmetadata: {name: a}\nspec: {publishNotReadyAddresses: TRUE, healthCheckNodePort: \"\", externalIPs: [a, null]}\n",
        "kind: Service\nmetadata: {name: a}\nspec: {publishNotReadyAddresses: TrUe}\n",
        "kind: Service\nmetadata: {name: a}\nspec: {clusterIPs: {a: b}}\n",
        "kind: Service\nmetadata: {name: a, namespace: NULL, resourceVersion: Null}\nspec: null\nstatus: ~\n",
        "kind: Service\nmetadata: [a]\n",
        "kind: ServiceList\nitems:\n- metadata: {name: a}\n- null\n- 3\n- [x]\n",
        "kind: List\nitems: {a: b}\n",
        "kind: List\nitems: ~\n",
        "kind: \"\"\n",
        "kind: [Service]\n",
        "kind: Service\nmetadata: {name: [\n",
        "kind: Service\nmetadata: {name: a}\nspec: {clusterIP: \"\\u00e9\\t\", type: |\n    multi\n    line\n}\n",
        "kind: Service\nmetadata:\n  name: a\n  annotations:\n    sluice.dev/weight: [1]\n",
        "kind: Service\nmetadata:\n  name: a\n  annotations:\n    other: [1]\n    sluice.dev/weight: '2'\n",
        "kind: Service\nmetadata: {name: a, annotations: {caf\u{E9}: [x], sluice.dev/weight: '1', \"\": y, sluice.dev/load-balancing: [x]}}\n",
        "kind: EndpointSlice\nmetadata: {name: s, labels: {kubernetes.io/service-name: a, \u{212A}: b, [k]: v, topology.kubernetes.io/zone: ~}}\n",
        "kind: EndpointSlice\nmetadata: {name: s}\nendpoints: [{addresses: [10.0.0.1], conditions: {ready: maybe}}]\n",
        "kind: EndpointSlice\nmetadata: {name: s}\nendpoints: [{addresses: [~]}]\n",
        "kind: Node\nmetadata: {name: n, labels: {topology.kubernetes.io/zone: z}}\nspec: {podCIDRs: [10.0.0.0/24]}\n",
        "kind: ServiceCIDR\nmetadata: {name: c}\nspec: {cidrs: [10.96.0.0/12]}\n",
        "kind: Pod\nmetadata: {name: p, namespace: d, labels: {app: web}}\nstatus: {podIP: 10.0.0.1, podIPs: [{ip: 10.0.0.1}], conditions: [{type: Ready, status: \"True\"}]}\n",
        "%YAML 1.1\n---\nkind: Service\nmetadata: {name: a}\n",
        "kind: Service\nmetadata: !!map {name: !!str a}\n",
        "? kind\n: Service\n? metadata\n: {name: a}\n",
    ]

    @Test("the same results as the old path on objects, odd documents and broken ones")
    func sameOutcomes() {
        let documents = (0..<12).flatMap(Self.objects) + Self.oddDocuments
        for text in documents {
            let (old, new) = (Self.legacy(text), Self.current(text))
            #expect(old == new, "\(text)\nold: \(old)\nnew: \(new)")
        }
    }

    @Test("the same results as the old path on randomly mutated documents")
    func sameOutcomesOnMutations() {
        var rng = SplitMix(seed: 0x5EED)
        let bases = Self.objects(3) + Self.objects(42) + Self.oddDocuments.filter { $0.count > 40 }
        let inserts = Array(":-[]{}&*!|>'\"#,? \n\tx0~<\u{E9}\u{212A}")
        for round in 0..<1500 {
            var chars = Array(bases[round % bases.count])
            for _ in 0..<(1 + Int(rng.next() % 3)) where !chars.isEmpty {
                let at = Int(rng.next() % UInt64(chars.count))
                switch rng.next() % 3 {
                case 0: chars.remove(at: at)
                case 1: chars.insert(inserts[Int(rng.next() % UInt64(inserts.count))], at: at)
                default: chars[at] = inserts[Int(rng.next() % UInt64(inserts.count))]
                }
            }
            let text = String(chars)
            let (old, new) = (Self.legacy(text), Self.current(text))
            #expect(old == new, "\(text)\nold: \(old)\nnew: \(new)")
        }
    }

    @Test("every scalar type, list and map reads as before, errors included")
    func sameProbes() {
        var rng = SplitMix(seed: 7)
        let scalars = ["0", "12", "-12", "+12", "0x1F", "0o17", "017", "08", "0b101", "1_000", "255", "256", "-129", "4294967296",
                       "99999999999999999999", "18446744073709551615", "-0", "1.5", "1_0.5", "1e3", ".inf", "'12'", "\"1.5\"",
                       "true", "yes", "Off", "TrUe", "~", "null", "NULL", "\"\"", "''", "[1, 2]", "[a, ~]", "{a: b}", "{a: 1, \u{212A}: 2}",
                       "[[a], [b, c]]", "[1, null, 3]", "caf\u{E9}", "\u{212A}"]
        let keys = ["i8", "i16", "i32", "i64", "u", "u8", "u16", "u32", "u64", "d", "f", "b", "s", "i", "list", "strings", "map",
                    "ints8", "doubles", "bools", "nestedLists", "optionals", "tp", "\u{212A}elvin", "Kelvin", "required"]
        for _ in 0..<1500 {
            let fields = (0..<(1 + Int(rng.next() % 5))).map { _ in
                "\(keys[Int(rng.next() % UInt64(keys.count))]): \(scalars[Int(rng.next() % UInt64(scalars.count))])"
            }
            let text = "{" + fields.joined(separator: ", ") + ", nested: [{" + fields.joined(separator: ", ") + "}, {}]}"
            let (old, new) = Self.probes(text)
            #expect(old == new, "\(text)\nold: \(old)\nnew: \(new)")
        }
    }
}

/// Every kind of field the decoders read: each integer width, floating point, booleans,
/// strings, lists of each, maps, nested objects, a required field and a non-ASCII key.
struct Probe: Decodable, Equatable {
    var i8: Int8?, i16: Int16?, i32: Int32?, i64: Int64?, u: UInt?, u8: UInt8?, u16: UInt16?, u32: UInt32?, u64: UInt64?
    var d: Double?, f: Float?, b: Bool?, s: String?, i: Int?
    var list: [Int]?, strings: [String]?, map: [String: String]?, nested: [Probe]?
    var ints8: [Int8]?, doubles: [Double]?, bools: [Bool]?, nestedLists: [[String]]?, optionals: [Int?]?
    var tp: IntOrString?
    var kelvin: String?
    var required: Required?

    enum CodingKeys: String, CodingKey {
        case i8, i16, i32, i64, u, u8, u16, u32, u64, d, f, b, s, i, list, strings, map, nested
        case ints8, doubles, bools, nestedLists, optionals, tp, required
        case kelvin = "Kelvin"
    }

    /// A field that must be there, read with `decode` rather than `decodeIfPresent`.
    struct Required: Decodable, Equatable {
        var value: Int

        init(from decoder: any Decoder) throws {
            if let c = try? decoder.singleValueContainer(), let v = try? c.decode(Int.self) {
                value = v
                return
            }
            var list = try decoder.unkeyedContainer()
            value = Int(try list.decode(Int16.self)) + Int(try list.decode(UInt8.self))
        }
    }
}
