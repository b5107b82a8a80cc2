/// Splits a byte stream into top-level JSON values without relying on how the bytes were
/// framed: a value may be split across any number of chunks and several values may share a
/// chunk. Values are separated by newlines in practice (one watch event per line), but the
/// splitter tracks nesting and strings, so pretty-printed values work too.
public struct JSONStreamSplitter: Sendable {
    private var buffer: [UInt8] = []
    /// Scan position in `buffer` and the scanner state at that position.
    private var scanned = 0
    /// The closing bracket each open one expects, innermost last.
    private var closers: [UInt8] = []
    private var inString = false
    private var escaped = false
    private var start: Int? = nil
    /// A limit on one value's size (a broken stream must not eat all memory).
    public var maxValueBytes: Int

    public init(maxValueBytes: Int = 64 << 20) {
        self.maxValueBytes = maxValueBytes
    }

    public enum SplitError: Error, Sendable {
        case valueTooLarge(Int)
        case unexpectedByte(UInt8)
    }

    /// Bytes of an incomplete value still held.
    public var pendingByteCount: Int { buffer.count - (start ?? buffer.count) }

    /// Feeds bytes; returns the complete top-level values (objects or arrays) they finish.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) throws -> [[UInt8]] where Bytes.Element == UInt8 {
        buffer.append(contentsOf: bytes)
        var out: [[UInt8]] = []
        var i = scanned
        while i < buffer.count {
            let b = buffer[i]
            if inString {
                if escaped { escaped = false }
                else if b == UInt8(ascii: "\\") { escaped = true }
                else if b == UInt8(ascii: "\"") { inString = false }
            } else {
                switch b {
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    if closers.isEmpty { start = i }
                    closers.append(b == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]"))
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    // A closer must match its opener: `{ … ]` is a broken stream, not a value.
                    guard closers.last == b else { throw SplitError.unexpectedByte(b) }
                    closers.removeLast()
                    if closers.isEmpty, let s = start {
                        out.append(Array(buffer[s...i]))
                        start = nil
                    }
                case UInt8(ascii: "\""):
                    guard !closers.isEmpty else { throw SplitError.unexpectedByte(b) }
                    inString = true
                case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                    break
                default:
                    // Scalars are only valid inside a value in a watch stream.
                    guard !closers.isEmpty else { throw SplitError.unexpectedByte(b) }
                }
            }
            i += 1
        }
        // Compact: drop everything before the start of the pending value.
        let keepFrom = start ?? buffer.count
        if keepFrom > 0 {
            buffer.removeFirst(keepFrom)
            if start != nil { start = 0 }
            i -= keepFrom
        }
        scanned = i
        if buffer.count > maxValueBytes { throw SplitError.valueTooLarge(buffer.count) }
        return out
    }
}
