/// A value that carries its own key (for `DenseStore`).
protocol DenselyKeyed {
    associatedtype Key: Hashable
    var denseKey: Key { get }
}

/// A keyed table whose values sit in one dense array, the dictionary mapping each key to
/// its index. A `Dictionary` stores values inline in its buckets, up to 4 in 3 of them
/// empty past a resize: for large values (a validated Service is ~130 bytes) most of its
/// memory is empty buckets, and every resize moves every value. Here the buckets hold a
/// 4-byte index, and a removal moves the last value into the hole (swap-remove), so the
/// array has no holes. Order is unspecified and changes on removal. A value type: copies
/// share storage until written, like `Dictionary`.
struct DenseStore<Element: DenselyKeyed> {
    private var index: [Element.Key: Int32] = [:]
    /// Every value, in no particular order.
    private(set) var elements: [Element] = []

    init() {}

    var count: Int { elements.count }
    var isEmpty: Bool { elements.isEmpty }

    /// Every key, in the order of `elements`.
    var keys: LazyMapSequence<[Element], Element.Key> { elements.lazy.map(\.denseKey) }

    subscript(key: Element.Key) -> Element? {
        guard let i = index[key] else { return nil }
        return elements[Int(i)]
    }

    /// Inserts `element` under its key, or replaces the value that has it.
    mutating func update(_ element: Element) {
        let key = element.denseKey
        if let i = index[key] {
            elements[Int(i)] = element
        } else {
            index[key] = Int32(elements.count)
            elements.append(element)
        }
    }

    /// Removes and returns the value under `key`; the last value takes its place.
    @discardableResult
    mutating func removeValue(forKey key: Element.Key) -> Element? {
        guard let i = index.removeValue(forKey: key).map(Int.init) else { return nil }
        let last = elements.removeLast()
        guard i < elements.count else { return last }
        let removed = elements[i]
        elements[i] = last
        index[last.denseKey] = Int32(i)
        return removed
    }

    /// Changes the value under `key` in place (not its key); false when there is none.
    @discardableResult
    mutating func modify(_ key: Element.Key, _ body: (inout Element) -> Void) -> Bool {
        guard let i = index[key].map(Int.init) else { return false }
        body(&elements[i])
        precondition(elements[i].denseKey == key, "DenseStore.modify changed a key")
        return true
    }

    mutating func reserveCapacity(_ n: Int) {
        index.reserveCapacity(n)
        elements.reserveCapacity(n)
    }
}

extension DenseStore: Sendable where Element: Sendable, Element.Key: Sendable {}
