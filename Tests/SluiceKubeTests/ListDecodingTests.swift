import Foundation
import SluiceKube
import SluiceModel
import Testing

@Suite("list decoding")
struct ListDecodingTests {
    @Test("a list page decodes into model objects that hold no managedFields, foreign labels or annotations")
    func listPageKeepsOnlyWhatTheProxyReads() throws {
        let page = #"""
            {"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"42","continue":"next"},"items":[
             {"metadata":{"name":"web","namespace":"shop","uid":"5e0c","resourceVersion":"41",
               "labels":{"app":"web","service.kubernetes.io/service-proxy-name":"sluice"},
               "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\"}\n"},
               "managedFields":[{"manager":"kubectl","operation":"Update","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:ports":{}}}}]},
              "spec":{"clusterIP":"10.96.0.10","selector":{"app":"web"},"ports":[{"port":80,"appProtocol":"http"}]}}]}
            """#
        let decoded = try KubeAPIClient.decodeListPage(Service.self, from: Data(page.utf8))
        #expect(decoded.metadata.resourceVersion == "42" && decoded.metadata.continue == "next")
        let svc = try #require(decoded.items.first)
        #expect(svc.kind == "Service" && svc.apiVersion == "v1")
        #expect(svc.metadata.labels == [WellKnownKeys.serviceProxyName: "sluice"])
        #expect(svc.metadata.annotations == nil)
        #expect(svc.metadata.resourceVersion == "41")
        #expect(svc.spec.ports?.first?.port == 80)
        // `spec.selector` is kept (Pods by selector, in file mode); the foreign label `app` is not.
        #expect(svc.spec.selector == ["app": "web"])
        var withoutSelector = svc
        withoutSelector.spec.selector = nil
        let encoded = String(decoding: try JSONEncoder().encode(withoutSelector), as: UTF8.self)
        for dropped in ["managedFields", "last-applied", "uid", "appProtocol", "\"app\""] {
            #expect(!encoded.contains(dropped), "\(dropped) kept: \(encoded)")
        }
    }

    @Test("object keys sort as their `namespace/name` text does")
    func keyOrder() {
        let keys = [ObjectKey(namespace: "a-b", name: "x"), ObjectKey(namespace: "a", name: "x"), ObjectKey(namespace: nil, name: "a/y"),
                    ObjectKey(namespace: "a", name: "x-1"), ObjectKey(namespace: "ab", name: ""), ObjectKey(namespace: nil, name: "a"),
                    ObjectKey(namespace: "a", name: "x"), ObjectKey(namespace: "", name: "z")]
        #expect(keys.sorted().map(\.description) == keys.map(\.description).sorted())
        for a in keys { for b in keys { #expect((a < b) == (a.description < b.description), "\(a) < \(b)") } }
    }
}
