import Foundation
import SluiceKube
import SluiceKubeFake
import SluiceModel
import SluiceTestSupport
import Testing

/// The fake's own behaviour, checked through the client's raw list call.
@Suite("fake API server", .timeLimit(.minutes(3)))
struct FakeServerTests {
    func list(_ client: KubeAPIClient, _ path: String, label: String? = nil, field: String? = nil,
              rv: String? = nil, limit: Int? = nil, cont: String? = nil) async throws -> KubeAPIClient.ListPage<Service> {
        try await client.listPage(KubeResource<Service>(path: path, labelSelector: label, fieldSelector: field),
                                  resourceVersion: rv, limit: limit, continueToken: cont)
    }

    @Test("namespaced paths, field selectors, remainingItemCount only without selectors, exact-RV lists")
    func lists() async throws {
        try await withFake { server in
            try server.create(service("a", namespace: "ns1"))
            try server.create(service("b", namespace: "ns1"))
            let rvAfterB = server.resourceVersion
            try server.create(service("c", namespace: "ns2"))
            try server.delete(Service.self, namespace: "ns1", name: "a")
            let client = try makeClient(server)

            #expect(try await list(client, "/api/v1/namespaces/ns1/services").items.map(\.metadata.name) == ["b"])
            #expect(try await list(client, "/api/v1/services", field: "metadata.namespace=ns2").items.map(\.metadata.name) == ["c"])
            #expect(try await list(client, "/api/v1/services", field: "metadata.name!=b").items.map(\.metadata.name) == ["c"])

            let page = try await list(client, "/api/v1/services", limit: 1)
            #expect(page.metadata.remainingItemCount == 1 && page.metadata.continue != nil)
            let selected = try await list(client, "/api/v1/services", label: "!x", limit: 1)
            #expect(selected.metadata.remainingItemCount == nil && selected.metadata.continue != nil)
            let rest = try await list(client, "/api/v1/services", label: "!x", limit: 1, cont: selected.metadata.continue)
            #expect(rest.items.map(\.metadata.name) == ["c"] && rest.metadata.continue == nil)
            #expect(rest.metadata.resourceVersion == selected.metadata.resourceVersion)

            // limit + RV N: the state at exactly N (etcd), "a" still there.
            let past = try await list(client, "/api/v1/services", rv: rvAfterB, limit: 10)
            #expect(past.items.map(\.metadata.name) == ["a", "b"] && past.metadata.resourceVersion == rvAfterB)
            // Without limit: "not older than" from the watch cache, i.e. now.
            let now = try await list(client, "/api/v1/services", rv: rvAfterB)
            #expect(now.items.map(\.metadata.name) == ["b", "c"] && now.metadata.resourceVersion == server.resourceVersion)
            server.compact()
            await #expect(throws: KubeAPIError.self) { _ = try await list(client, "/api/v1/services", rv: rvAfterB, limit: 10) }
            try await client.shutdown()
        }
    }

    @Test("Status errors: unknown path 404, single-object GET 403 (recorded), bad selector 400, empty list items: []")
    func errors() async throws {
        try await withFake { server in
            let client = try makeClient(server)
            do { _ = try await list(client, "/api/v1/pods"); Issue.record("expected 404") } catch let e as KubeAPIError {
                #expect(e.httpCode == 404 && e.apiStatus?.reason == "NotFound")
            }
            do { _ = try await list(client, "/api/v1/namespaces/default/services/web"); Issue.record("expected 403") } catch let e as KubeAPIError {
                #expect(e.httpCode == 403)
                #expect(e.apiStatus?.message == #"services "web" is forbidden: User "system:kube-proxy" cannot get resource "services" in API group "" in the namespace "default""#)
            }
            #expect(server.requests.filter(\.isSingleObjectGet).count == 1)
            do { _ = try await list(client, "/api/v1/services", label: "a in b"); Issue.record("expected 400") } catch let e as KubeAPIError {
                #expect(e.httpCode == 400)
            }
            let empty = try await list(client, "/apis/networking.k8s.io/v1/servicecidrs")
            #expect(empty.items.isEmpty)
            let raw = try await client.get(path: "/api/v1/services", query: [])
            let body = String(buffer: try await raw.body.collect(upTo: 1 << 20))
            #expect(body == #"{"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"100"},"items":[]}"#)
            try await client.shutdown()
        }
    }
}

extension FakeServerTests {
    /// `Configuration.netns`: the listener is created inside a named namespace (the cluster
    /// test's control plane), so clients there reach it while the test process stays put.
    @Test("listens inside a named network namespace: a client there lists what it stores")
    func listensInsideNamespace() async throws {
        try requireKernelTestEnvironment(tools: ["ip", "python3"])
        let ns = try NetworkNamespace(label: "fake")
        defer { ns.close() }
        let helper = try PacketHelper()
        defer { helper.close() }
        var configuration = FakeAPIServer.Configuration()
        configuration.netns = ns.name
        let server = try await FakeAPIServer.start(configuration)
        do {
            try server.create(service("inside", namespace: "ns1"))
            let r = try helper.httpGet(in: ns, server.url + "/api/v1/services")
            #expect(r?.status == 200 && r?.body.contains(#""name":"inside""#) == true, "\(String(describing: r))")
            let listening = try ns.runChecked(["ss", "-Hltn", "sport = :\(server.port)"]).stdout
            #expect(listening.contains("127.0.0.1:\(server.port)"), "no listener in the namespace: \(listening)")
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }
}
