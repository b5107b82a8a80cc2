import Foundation
import SluiceIR
import SluiceKube
import SluiceModel
import SluiceNetlink

/// Fuzz targets (libFuzzer), chosen by `SLUICE_FUZZ_TARGET`:
/// - `json-reader`: the hand-written readers (`Service(json:)`, `EndpointSlice(json:)`) against
///   `JSONDecoder` on the same bytes: whatever the reader accepts, it must read exactly as
///   `JSONDecoder` does, or the target traps;
/// - `manifest`: `ManifestLoader.parse` on the bytes as a YAML file and as a JSON file: it
///   must return (objects and diagnostics), never crash;
/// - `stream-splitter`: `JSONStreamSplitter` fed the bytes whole and in chunks (sizes taken
///   from the input) must cut the same values, each one an object or array;
/// - `kubeconfig`: `Kubeconfig.parse` on the bytes, then `clientConfiguration` for the current
///   context and each named one (relative paths resolve in a scratch directory holding a
///   `token` and a `ca.crt`): each must return or throw, never crash;
/// - `netlink-reply`: the bytes as a stream of nf_tables reply messages (NEWTABLE, NEWCHAIN,
///   NEWSET, NEWRULE, NEWSETELEM, as a dump returns them), each parsed by read-back's own
///   parser (`ReadBackReply.parse`, libnftnl underneath) with the sets parsed before it in
///   scope: it must return or throw, never crash or exit. No kernel, no socket.
///
/// Built with `--sanitize fuzzer -Xswiftc -DFUZZING` by `scripts/fuzz.sh`. Without `FUZZING`
/// the executable replays files instead (`sluice-fuzz TARGET FILE…`), for crash reproducers.
enum FuzzTarget: String {
    case jsonReader = "json-reader"
    case manifest
    case streamSplitter = "stream-splitter"
    case kubeconfig
    case netlinkReply = "netlink-reply"

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
        case .kubeconfig:
            configure(bytes)
        case .netlinkReply:
            replies(bytes)
        }
    }

    /// A scratch directory for the relative paths of fuzzed kubeconfigs.
    private static let kubeconfigDirectory: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-fuzz-kubeconfig-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try? Data("fuzz-token\n".utf8).write(to: dir.appendingPathComponent("token"))
        try? Data("not a certificate\n".utf8).write(to: dir.appendingPathComponent("ca.crt"))
        return dir.path
    }()

    /// Parses a kubeconfig and resolves its current context and up to four named ones.
    private func configure(_ bytes: [UInt8]) {
        guard let config = try? Kubeconfig.parse(String(decoding: bytes, as: UTF8.self), origin: "fuzz") else { return }
        for name in [nil] + config.contexts.prefix(4).map(\.name) {
            _ = try? config.clientConfiguration(context: name, baseDirectory: Self.kubeconfigDirectory)
        }
    }

    /// The nf_tables message types a read-back dump returns: NEWTABLE, NEWCHAIN, NEWRULE,
    /// NEWSET, NEWSETELEM.
    private static let replyTypes: [UInt16] = [0, 3, 6, 9, 12]

    /// Cuts the bytes into netlink messages and parses each. The framing comes from the input
    /// but is made to fit (so the fuzzer reaches the attributes): a length is clamped to at
    /// least the headers and at most what is left, and a type that is not one of the replies
    /// becomes one of them (`type % 5`). Sets parsed so far are in scope for later messages.
    private func replies(_ bytes: [UInt8]) {
        let header = 20   // nlmsghdr + nfgenmsg
        var sets: [SetDecl] = []
        var i = 0
        while bytes.count - i >= header {
            let declared = Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24
            let length = min(max(declared, header), bytes.count - i)
            var message = Array(bytes[i..<i + length])
            withUnsafeBytes(of: UInt32(length).littleEndian) { message.replaceSubrange(0..<4, with: $0) }
            let type = UInt16(message[4]) | UInt16(message[5]) << 8
            if type >> 8 != 10 || !Self.replyTypes.contains(type & 0xff) {
                let fixed = 10 << 8 | Self.replyTypes[Int(type) % Self.replyTypes.count]
                message[4] = UInt8(fixed & 0xff)
                message[5] = UInt8(fixed >> 8)
            }
            let family: Family = message[16] == 10 ? .ip6 : .ip
            if case .set(let decl)? = try? ReadBackReply.parse(message, family: family, sets: sets) {
                sets.removeAll { $0.name == decl.name }
                sets.append(decl)
            }
            i += (length + 3) & ~3
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
            print("usage: sluice-fuzz json-reader|manifest|stream-splitter|kubeconfig|netlink-reply FILE…")
            return
        }
        for path in args.dropFirst() {
            target.run(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            print("ok \(path)")
        }
    }
}
#endif
