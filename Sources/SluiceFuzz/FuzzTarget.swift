import Foundation
import SluiceModel

/// Fuzz targets (libFuzzer), chosen by `SLUICE_FUZZ_TARGET`:
/// - `json-reader`: the hand-written readers (`Service(json:)`, `EndpointSlice(json:)`) against
///   `JSONDecoder` on the same bytes: whatever the reader accepts, it must read exactly as
///   `JSONDecoder` does, or the target traps;
/// - `manifest`: `ManifestLoader.parse` on the bytes as a YAML file and as a JSON file: it
///   must return (objects and diagnostics), never crash.
///
/// Built with `--sanitize fuzzer -Xswiftc -DFUZZING` by `scripts/fuzz.sh`. Without `FUZZING`
/// the executable replays files instead (`sluice-fuzz TARGET FILE…`), for crash reproducers.
enum FuzzTarget: String {
    case jsonReader = "json-reader"
    case manifest

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
            print("usage: sluice-fuzz json-reader|manifest FILE…")
            return
        }
        for path in args.dropFirst() {
            target.run(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            print("ok \(path)")
        }
    }
}
#endif
