import Testing
@testable import SluiceModel

@Suite struct DenseStoreTests {
    struct Item: DenselyKeyed, Hashable {
        var key: Int
        var value: Int
        var denseKey: Int { key }
    }

    @Test("random inserts, updates, in-place changes and removals: the same contents as a Dictionary")
    func matchesDictionary() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            var store = DenseStore<Item>()
            var reference: [Int: Int] = [:]
            for step in 0..<300 {
                let key = Int.random(in: 0..<40, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0, 1:
                    store.update(Item(key: key, value: step))
                    reference[key] = step
                case 2:
                    let found = store.modify(key) { $0.value += 1000 }
                    #expect(found == (reference[key] != nil))
                    if reference[key] != nil { reference[key]! += 1000 }
                default:
                    #expect(store.removeValue(forKey: key)?.value == reference.removeValue(forKey: key))
                }
                let copy = store
                #expect(copy.count == reference.count)
                for k in 0..<40 { #expect(store[k]?.value == reference[k]) }
                #expect(Dictionary(uniqueKeysWithValues: store.elements.map { ($0.key, $0.value) }) == reference)
                #expect(Set(store.keys) == Set(reference.keys))
            }
        }
    }

    @Test("a copy keeps its contents when the original changes")
    func valueSemantics() {
        var store = DenseStore<Item>()
        for k in 0..<5 { store.update(Item(key: k, value: k)) }
        let copy = store
        store.removeValue(forKey: 0)
        store.modify(4) { $0.value = 99 }
        #expect(copy.count == 5 && copy[0]?.value == 0 && copy[4]?.value == 4)
        #expect(store.count == 4 && store[0] == nil && store[4]?.value == 99)
    }
}
