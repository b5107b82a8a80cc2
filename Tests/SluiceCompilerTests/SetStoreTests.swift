import Testing
@testable import SluiceCompiler
import SluiceIR

/// `SetStore` counts the service ports that contribute each element: an element goes with
/// its last user, and a map key keeps its first data.
struct SetStoreTests {
    let key: [Datum] = [.ipv4(0x0A60_0001), .proto(6), .port(80)]
    let key6: [Datum] = [.ipv6(0xFD00, 1), .proto(6), .port(80)]
    let data: [Datum] = [.integer(7)]
    let data6: [Datum] = [.ipv6(0xFD00, 2)]

    @Test("a plain set element shared by two service ports survives one removal and goes with the second",
          arguments: [false, true])
    func plainShared(ipv6: Bool) {
        let k = ipv6 ? key6 : key
        var s = SetStore(isMap: false)
        #expect(s.insert(k, []) == .added)
        #expect(s.insert(k, []) == .counted)
        #expect(s.users(k, []) == 2 && s.count == 1)
        #expect(s.remove(k, []) == .counted)
        #expect(s.lookup(k) == [])
        #expect(s.remove(k, []) == .removed)
        #expect(s.lookup(k) == nil && s.isEmpty)
        #expect(s.remove(k, []) == .absent)
    }

    @Test("a map element: a second user with other data is refused; counts above two go down one by one",
          arguments: [(false, false), (true, false), (false, true)])
    func mapCounts(ipv6Key: Bool, ipv6Data: Bool) {
        let k = ipv6Key ? key6 : key, d = ipv6Data ? data6 : data
        var s = SetStore(isMap: true)
        #expect(s.insert(k, d) == .added)
        #expect(s.insert(k, [.integer(8)]) == .conflict)
        #expect(s.lookup(k) == d)
        for _ in 0..<3 { #expect(s.insert(k, d) == .counted) }
        #expect(s.users(k, d) == 4)
        #expect(s.remove(k, [.integer(8)]) == .absent)
        for n in (1...3).reversed() {
            #expect(s.remove(k, d) == .counted)
            #expect(s.users(k, d) == n)
        }
        #expect(s.remove(k, d) == .removed)
        #expect(s.isEmpty && s.users(k, d) == 0)
        #expect(s.insert(k, d) == .added, "a re-added element starts again at one user")
        #expect(s.remove(k, d) == .removed)
    }

    @Test("a plain set refuses an element with data; forEach lists each element once")
    func plainWithDataAndForEach() {
        var s = SetStore(isMap: false)
        #expect(s.insert(key, []) == .added)
        #expect(s.insert(key, data) == .conflict)
        #expect(s.remove(key, data) == .absent)
        #expect(s.insert(key6, []) == .added)
        #expect(s.insert(key, []) == .counted, "the general path (spilled not empty) counts too")
        var seen: [[Datum]] = []
        s.forEach { k, d in
            #expect(d.isEmpty)
            seen.append(k)
        }
        #expect(seen.count == 2 && Set(seen) == [key, key6])
        #expect(s.remove(key, []) == .counted && s.remove(key, []) == .removed && s.count == 1)
    }
}
