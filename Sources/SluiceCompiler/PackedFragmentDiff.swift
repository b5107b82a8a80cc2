import SluiceIR
import SluiceModel

/// What one update takes out of the table and puts into it for one service port, with
/// packed keys: the old and the new plan are compiled into one flat list (no IR key, no
/// dictionary per set), which is sorted so that the elements both fragments have drop out,
/// as `ServiceFragment.dropCommon` drops them. The incremental compiler's update and load
/// path whenever every key and data packs (IPv4); otherwise there is none (`init` fails)
/// and the general one is taken.
struct PackedFragmentDiff: FragmentSink {
    enum Side: UInt8 { case old, new }

    /// One element of the old or the new fragment.
    struct Entry {
        /// Index into `sets`.
        var set: UInt8
        var side: Side
        /// Order of the add, so that of two adds of one key the later one counts.
        var seq: UInt32
        var key: Packed
        /// A map's packed data (one word); 0 in a plain set.
        var data: UInt64
    }

    let name: ServicePortName
    /// The sets the entries belong to.
    private(set) var sets: [SetID] = []
    private var entries: [Entry] = []
    private var side = Side.old
    /// Some element did not pack: the diff is given up.
    private var unpackable = false
    /// The elements only the old fragment has, and only the new one has (see `changes()`).
    private(set) var removed: [Entry] = []
    private(set) var added: [Entry] = []

    /// Compiles both plans; nil if an element does not pack. An IPv6 family is never tried:
    /// its addresses alone fill `Packed`'s 128 bits (every IPv4 key and data of the layout fits).
    init?(name: ServicePortName, old: ServicePortPlan?, new: ServicePortPlan?, context: FamilyContext) {
        guard context.family == .ipv4 else { return nil }
        self.name = name
        entries.reserveCapacity(64)
        if let old { compileFragment(old, context: context, into: &self) }
        side = .new
        if let new { compileFragment(new, context: context, into: &self) }
        guard !unpackable else { return nil }
        (removed, added) = changes()
        entries = []
    }

    mutating func reserve(_ set: SetID, _ n: Int) {}

    mutating func add(_ set: SetID, _ key: DatumList, _ data: DatumList) {
        guard !unpackable, let k = Packed(key), let s = index(of: set),
              let d = SetStore.dataWord(isMap: set.isMap, isEmpty: data.isEmpty, packed: Packed(data)) else {
            unpackable = true
            return
        }
        entries.append(Entry(set: s, side: side, seq: UInt32(entries.count), key: k, data: d))
    }

    /// The number of added elements in each set.
    var addedPerSet: [(SetID, Int)] {
        var counts = [Int](repeating: 0, count: sets.count)
        for e in added { counts[Int(e.set)] += 1 }
        return zip(sets, counts).filter { $0.1 > 0 }
    }

    private mutating func index(of set: SetID) -> UInt8? {
        if let i = sets.lastIndex(of: set) { return UInt8(i) }
        guard sets.count < Int(UInt8.max) else { return nil }
        sets.append(set)
        return UInt8(sets.count - 1)
    }

    /// The elements only the old fragment has (`removed`) and only the new one has (`added`);
    /// an element both have with the same data is in neither. Of two adds of one key to one
    /// fragment the later one counts, as in a `ServiceFragment`.
    private func changes() -> (removed: [Entry], added: [Entry]) {
        var sorted = entries
        sorted.sort { a, b in (a.set, a.key.hi, a.key.lo, a.side.rawValue, a.seq) < (b.set, b.key.hi, b.key.lo, b.side.rawValue, b.seq) }
        var removed: [Entry] = [], added: [Entry] = []
        var i = 0
        while i < sorted.count {
            // One key of one set: its last old entry and its last new entry.
            var old: Entry?, new: Entry?
            let first = sorted[i]
            while i < sorted.count, sorted[i].set == first.set, sorted[i].key == first.key {
                if sorted[i].side == .old { old = sorted[i] } else { new = sorted[i] }
                i += 1
            }
            if let o = old, let n = new, o.data == n.data { continue }
            if let old { removed.append(old) }
            if let new { added.append(new) }
        }
        return (removed, added)
    }
}
