import SluiceModel

/// A list as it arrives (the pages of a LIST, or the initial events of a watch-list), kept
/// as little as the reflector needs when the list ends.
///
/// The first list (`comparing` false) is handed out whole, so every object is kept. A
/// relist is compared with the cache as each object arrives: an object the cache already
/// holds unchanged leaves only its key behind (in `seen`), so a relist of 100k objects of
/// which ten changed holds ten objects, not 100k. The cache does not change while a list
/// is received (only the reflector's own task writes it, and it is busy listing), so
/// comparing on arrival gives what comparing at the end would.
struct ListedObjects<Object: KubeObject>: Sendable {
    /// Keys listed so far (nil: the first list, where `changed` holds every object).
    private var seen: Set<ObjectKey>?
    /// Objects to hand out: all of them for the first list; for a relist the new and changed ones.
    private(set) var changed: [ObjectKey: Object] = [:]

    init(comparing: Bool) { seen = comparing ? [] : nil }

    /// Takes one listed object (a later one replaces an earlier one with the same key);
    /// `cache` is the reflector's, which a relist compares with.
    mutating func add(_ object: Object, cache: ReflectorCache<Object>) {
        let key = object.key
        guard seen != nil else {
            changed[key] = object
            return
        }
        seen!.insert(key)
        changed[key] = cache.isChanged(object) == false ? nil : object
    }

    /// Hands out the new and changed objects taken so far, in key order, and forgets them
    /// (their keys stay listed): a relist streams its differences out as they arrive.
    mutating func takeChanged() -> [Object] {
        guard !changed.isEmpty else { return [] }
        defer { changed = [:] }
        return changed.values.sorted { $0.key < $1.key }
    }

    /// Forgets a key (an object deleted while the list was streamed).
    mutating func remove(_ key: ObjectKey) {
        seen?.remove(key)
        changed[key] = nil
    }

    /// Whether the list holds `key`.
    func contains(_ key: ObjectKey) -> Bool {
        seen?.contains(key) ?? (changed[key] != nil)
    }
}
