@testable import SluiceKube
import SluiceModel
import Testing

/// A relist keeps what changed, not the whole list (issue 11: the soak's RSS stepped up at
/// every relist while the reflector held the whole list beside its cache).
@Suite("ListedObjects: what a list keeps while it arrives")
struct ListedObjectsTests {
    private func cached(_ versions: [String: String]) -> ReflectorCache<Service> {
        var cache = ReflectorCache<Service>(keepsContent: false)
        for (name, rv) in versions { cache.store(service(name, rv: rv)) }
        return cache
    }

    private func service(_ name: String, rv: String) -> Service {
        Service(metadata: ObjectMeta(name: name, namespace: "default", resourceVersion: rv), spec: Service.Spec())
    }

    @Test("a relist keeps only new and changed objects, and the keys of the unchanged ones")
    func relistKeepsChanges() {
        let cache = cached(["a": "1", "b": "2", "c": "3"])
        var list = ListedObjects<Service>(comparing: true)
        for (name, rv) in [("a", "1"), ("b", "7"), ("c", "3"), ("d", "8")] { list.add(service(name, rv: rv), cache: cache) }
        #expect(Set(list.changed.keys.map(\.name)) == ["b", "d"])
        for name in ["a", "b", "c", "d"] { #expect(list.contains(service(name, rv: "").key)) }
        #expect(!list.contains(service("e", rv: "").key))
    }

    @Test("a later copy of a key wins, and a deletion during the list forgets the key")
    func laterCopyAndDeletion() {
        let cache = cached(["a": "1", "b": "2"])
        var list = ListedObjects<Service>(comparing: true)
        list.add(service("a", rv: "5"), cache: cache)
        list.add(service("a", rv: "1"), cache: cache)
        list.add(service("b", rv: "6"), cache: cache)
        list.remove(service("b", rv: "").key)
        #expect(list.changed.isEmpty)
        #expect(list.contains(service("a", rv: "").key))
        #expect(!list.contains(service("b", rv: "").key))
    }

    @Test("the first list keeps every object, even one the cache holds unchanged")
    func firstListKeepsAll() {
        let cache = cached(["a": "1"])
        var list = ListedObjects<Service>(comparing: false)
        for name in ["a", "b"] { list.add(service(name, rv: "1"), cache: cache) }
        #expect(Set(list.changed.keys.map(\.name)) == ["a", "b"])
        #expect(list.contains(service("a", rv: "").key))
    }
}
