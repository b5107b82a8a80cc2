import SluiceIR

/// The datums of one element's key or data, up to four, held inline: what `compileFragment`
/// hands a `FragmentSink` for every element, so that a sink that packs elements (the
/// incremental compiler's update path) allocates nothing per element. The layout's widest
/// key has four datums (a slot key `addr . proto . port . slot`, a `firewall-allow` key
/// `vip . proto . port . range`); map data has two (`addr . port`).
struct DatumList: Sendable, Equatable {
    static let capacity = 4
    private var storage: (Datum, Datum, Datum, Datum) = (.integer(0), .integer(0), .integer(0), .integer(0))
    private(set) var count = 0

    /// No datum (a plain set's data).
    init() {}

    init(_ a: Datum) { append(a) }

    init(_ a: Datum, _ b: Datum) {
        append(a)
        append(b)
    }

    init(_ a: Datum, _ b: Datum, _ c: Datum) {
        append(a)
        append(b)
        append(c)
    }

    var isEmpty: Bool { count == 0 }

    subscript(i: Int) -> Datum {
        precondition(i < count, "DatumList index out of range")
        switch i {
        case 0: return storage.0
        case 1: return storage.1
        case 2: return storage.2
        default: return storage.3
        }
    }

    mutating func append(_ d: Datum) {
        precondition(count < Self.capacity, "DatumList holds at most \(Self.capacity) datums")
        switch count {
        case 0: storage.0 = d
        case 1: storage.1 = d
        case 2: storage.2 = d
        default: storage.3 = d
        }
        count += 1
    }

    /// This list with `d` after its datums.
    func appending(_ d: Datum) -> DatumList {
        var copy = self
        copy.append(d)
        return copy
    }

    /// The datums as an IR key or data array.
    var array: [Datum] {
        var out: [Datum] = []
        out.reserveCapacity(count)
        for i in 0..<count { out.append(self[i]) }
        return out
    }

    static func == (a: DatumList, b: DatumList) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count where a[i] != b[i] { return false }
        return true
    }
}
