import Foundation
import SluiceKube
import SluiceKubeFake
import SluiceModel
import Testing

@Suite("pieces")
struct UnitTests {
    @Test("JSON stream splitter: any chunking gives the same values")
    func splitter() throws {
        let events = [
            #"{"type":"ADDED","object":{"metadata":{"name":"a}{\"x"},"s":"[\\"}}"#,
            #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7"}}}"#,
            "{\n  \"type\": \"DELETED\",\n  \"object\": {\"k\": [1, {\"n\": null}]}\n}",
        ]
        let stream = Array(events.joined(separator: "\n").utf8) + Array("\n".utf8)
        for chunk in [1, 2, 3, 7, 64, stream.count] {
            var s = JSONStreamSplitter()
            var out: [String] = []
            var i = 0
            while i < stream.count {
                let j = min(stream.count, i + chunk)
                out += try s.feed(stream[i..<j]).map { String(decoding: $0, as: UTF8.self) }
                i = j
            }
            #expect(out == events, "chunk size \(chunk)")
            #expect(s.pendingByteCount == 0)
        }
        var s = JSONStreamSplitter()
        #expect(throws: JSONStreamSplitter.SplitError.self) { try s.feed(Array("x".utf8)) }
    }

    @Test("a closing bracket that does not match its opener fails the stream (found by the stream-splitter fuzz target)")
    func splitterMismatchedBrackets() throws {
        // The fuzzer's reproducer, shortened: the value opened with `{` was closed by `]`.
        for broken in [#"{"object": {"s": "a \" } { [ ] \\", "n": [1, 2, {"x": null}]}\#n1,2]"#, #"{"a": [1, 2}"#, "[{]}"] {
            #expect(throws: JSONStreamSplitter.SplitError.self, "\(broken)") {
                var s = JSONStreamSplitter()
                _ = try s.feed(Array(broken.utf8))
            }
        }
        var s = JSONStreamSplitter()
        let values = try s.feed(Array(#"{"a": [1, {"b": "]}"}]}[{}]"#.utf8))
        #expect(values.count == 2)
    }

    @Test("query encoding matches Go's url.Values.Encode")
    func query() {
        #expect(Query.encode([("watch", "true"), ("labelSelector", "!a/b,c=d e"), ("allowWatchBookmarks", "true")])
                == "allowWatchBookmarks=true&labelSelector=%21a%2Fb%2Cc%3Dd+e&watch=true")
        #expect(ProxySelectors.labelSelector() == "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name")
    }

    @Test("label selector operators", arguments: [
        ("a=1", true), ("a==1", true), ("a!=1", false), ("a!=2", true), ("missing!=x", true),
        ("a in (1,2)", true), ("a in (2,3)", false), ("a notin (2,3)", true), ("missing notin (2)", true), ("missing in (2)", false),
        ("a", true), ("missing", false), ("!missing", true), ("!a", false), ("a=1,b", true), ("a=1,!b", false),
        ("a in (1, 2),b=", true),
    ])
    func labelSelector(text: String, expected: Bool) throws {
        #expect(try LabelSelector(parsing: text).matches(["a": "1", "b": ""]) == expected)
    }

    @Test("backoff: 800 ms jittered, doubling, capped at 30 s")
    func backoff() {
        var b = Backoff()
        let first = b.next()
        #expect(first >= .milliseconds(800) && first < .milliseconds(1600))
        var last = Duration.zero
        for _ in 0..<10 { last = b.next() }
        #expect(last == .seconds(30))
        b.reset()
        #expect(b.next() < .milliseconds(1600))
    }
}
