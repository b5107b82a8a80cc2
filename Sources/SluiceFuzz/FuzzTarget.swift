import Foundation
import SluiceModel

/// Fuzz targets (libFuzzer), chosen by `SLUICE_FUZZ_TARGET`:
/// - `json-reader`: the hand-written readers (`Service(json:)`, `EndpointSlice(json:)`) against
///   `JSONDecoder` on the same bytes: whatever the reader accepts, it must read exactly as
///   `JSONDecoder` does, or the target traps;
/// - `manifest`: `ManifestLoader.parse` on the bytes as a YAML file and as a JSON file: it
///   must return (objects and diagnostics), never crash;
/// - `stream-splitter`: `JSONStreamSplitter` fed the bytes whole and in chunks (sizes taken
///   from the input) must cut the same values, each one an object or array.
///
/// Built with `--sanitize fuzzer -Xswiftc -DFUZZING` by `scripts/fuzz.sh`. Without `FUZZING`
/// the executable replays files instead (`sluice-fuzz TARGET FILE…`), for crash reproducers.
enum FuzzTarget: String {
    case jsonReader = "json-reader"
    case manifest
    case streamSplitter = "stream-splitter"

    static let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["SLUICE_FUZZ_TARGET"] ?? "json-reader"
        guard let t = FuzzTarget(rawValue: name) else { fatalError("SLUICE_FUZZ_TARGET: unknown target \(name)") }
        return t
    }()

    func run(_ bytes: [UInt8]) {
        switch self {
        case .jsonReader:
            agree(Service.self, bytes) { try Service(json: &$0) }
            agree(EndpointSlice.self, bytes) { try EndpointSlice(json: &$0) }
        case .manifest:
            let text = String(decoding: bytes, as: UTF8.self)
            _ = ManifestLoader().parse(text: text, file: "fuzz.yaml")
            _ = ManifestLoader().parse(text: text, file: "fuzz.json")
        case .streamSplitter:
            split(bytes)
        }
    }

    /// The values and the error (if any) of one stream, fed whole and fed in chunks.
    private func split(_ bytes: [UInt8]) {
        func run(_ chunks: [ArraySlice<UInt8>]) -> (values: [[UInt8]], failed: Bool) {
            var splitter = JSONStreamSplitter(maxValueBytes: 1 << 20)
            var values: [[UInt8]] = []
            for chunk in chunks {
                guard let v = try? splitter.feed(chunk) else { return (values, true) }
                values += v
            }
            return (values, false)
        }
        let whole = run([bytes[...]])
        var chunks: [ArraySlice<UInt8>] = []
        var (i, k) = (0, 0)
        while i < bytes.count {
            let n = 1 + Int(bytes[k % bytes.count]) % 17
            chunks.append(bytes[i..<min(bytes.count, i + n)])
            (i, k) = (i + n, k + 1)
        }
        let chunked = run(chunks)
        // Fed whole, a failing stream hands out nothing; in chunks, the values before the
        // failing chunk. Either way both fail, and a stream that does not fail cuts the same values.
        guard whole.failed == chunked.failed, whole.failed || whole.values == chunked.values else {
            fatalError("JSONStreamSplitter: whole \(whole) and chunked \(chunked) differ on \(bytes)")
        }
        for v in whole.values where !(v.first == UInt8(ascii: "{") && v.last == UInt8(ascii: "}"))
            && !(v.first == UInt8(ascii: "[") && v.last == UInt8(ascii: "]")) {
            fatalError("JSONStreamSplitter cut \(v), not an object or array")
        }
    }

    private func agree<T: Decodable & Equatable>(_ type: T.Type, _ bytes: [UInt8], _ read: (inout JSONReader) throws -> T) {
        guard let fast = JSONReader.read(bytes, read) else { return }
        let slow = try? JSONDecoder().decode(T.self, from: Data(bytes))
        guard slow == fast else {
            fatalError("JSONReader and JSONDecoder differ on \(String(decoding: bytes, as: UTF8.self)):\nreader \(fast)\ndecoder \(String(describing: slow))")
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTarget.selected.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#else
@main
struct Replay {
    static func main() throws {
        let args = CommandLine.arguments.dropFirst()
        guard let name = args.first, let target = FuzzTarget(rawValue: name) else {
            print("usage: sluice-fuzz json-reader|manifest|stream-splitter FILE…")
            return
        }
        for path in args.dropFirst() {
            target.run(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            print("ok \(path)")
        }
    }
}
#endif
