import Foundation
import Testing
@testable import SluiceModel

/// The YAML path (`NodeDecoder` over Yams' composed nodes) and the JSON path (`JSONDecoder`)
/// decode the same objects, keep only what the proxy reads, and interpret YAML scalars as
/// `YAMLDecoder` did.
@Suite struct DecodingTests {
    static let sliceJSON = """
        {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"web-abc12","namespace":"shop","uid":"7a1b","generateName":"web-",
         "labels":{"endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io","kubernetes.io/service-name":"web","app":"web"},
         "annotations":{"endpoints.kubernetes.io/last-change-trigger-time":"2026-11-26T18:19:03Z","sluice.dev/weight":"3","kubectl.kubernetes.io/last-applied-configuration":"{\\"big\\":true}"},
         "ownerReferences":[{"apiVersion":"v1","kind":"Service","name":"web"}],
         "managedFields":[{"manager":"kube-controller-manager","operation":"Update","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{}}}}}]},
         "addressType":"IPv4","endpoints":[{"addresses":["10.244.1.5"],"conditions":{"ready":true,"serving":true,"terminating":false},"hostname":"pod-a",
         "targetRef":{"kind":"Pod","name":"web-7d4b9-xk2lp","uid":"0c4f"},"nodeName":"node-a","zone":"zone-a","hints":{"forZones":[{"name":"zone-a"}]}}],
         "ports":[{"name":"http","protocol":"TCP","port":8080,"appProtocol":"http"}]}
        """

    static let sliceYAML = """
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: web-abc12
          namespace: shop
          uid: 7a1b
          generateName: web-
          labels:
            endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
            kubernetes.io/service-name: web
            app: web
          annotations:
            endpoints.kubernetes.io/last-change-trigger-time: "2026-11-26T18:19:03Z"
            sluice.dev/weight: "3"
            kubectl.kubernetes.io/last-applied-configuration: '{"big":true}'
          ownerReferences:
          - {apiVersion: v1, kind: Service, name: web}
          managedFields:
          - manager: kube-controller-manager
            operation: Update
            fieldsType: FieldsV1
            fieldsV1: {"f:metadata": {"f:labels": {".": {}}}}
        addressType: IPv4
        endpoints:
        - addresses: [10.244.1.5]
          conditions: {ready: true, serving: true, terminating: false}
          hostname: pod-a
          targetRef: {kind: Pod, name: web-7d4b9-xk2lp, uid: 0c4f}
          nodeName: node-a
          zone: zone-a
          hints:
            forZones:
            - name: zone-a
        ports:
        - name: http
          protocol: TCP
          port: 8080
          appProtocol: http
        """

    @Test func decodedObjectsKeepOnlyWhatTheProxyReads() throws {
        let slice = try JSONDecoder().decode(EndpointSlice.self, from: Data(Self.sliceJSON.utf8))
        #expect(slice.metadata.labels == [WellKnownKeys.serviceName: "web"])
        #expect(slice.metadata.annotations == [WellKnownKeys.lastChangeTriggerTime: "2026-11-26T18:19:03Z", WellKnownKeys.weight: "3"])
        #expect(slice.endpoints?.first?.nodeName == "node-a")
        // Nothing of managedFields, ownerReferences, targetRef or the foreign entries survives:
        // re-encoding the object shows every field it holds.
        let encoded = String(decoding: try JSONEncoder().encode(slice), as: UTF8.self)
        for dropped in ["managedFields", "ownerReferences", "targetRef", "last-applied", "managed-by", "uid", "generateName", "hostname", "appProtocol", "\"app\""] {
            #expect(!encoded.contains(dropped), "\(dropped) kept: \(encoded)")
        }
    }

    @Test func yamlAndJSONDecodeToTheSameObject() throws {
        let viaJSON = ManifestLoader().parse(text: Self.sliceJSON, file: "slice.json")
        let viaYAML = ManifestLoader().parse(text: Self.sliceYAML, file: "slice.yaml")
        #expect(viaJSON.diagnostics.isEmpty && viaYAML.diagnostics.isEmpty, "\(viaJSON.diagnostics) \(viaYAML.diagnostics)")
        #expect(viaJSON.objects.endpointSlices.count == 1)
        #expect(viaJSON.objects.endpointSlices.map(\.object) == viaYAML.objects.endpointSlices.map(\.object))
    }

    @Test func foreignLabelsAndAnnotationsAreNotEvenValidated() {
        // A foreign annotation that is not a string would fail a typed decode; it is skipped unread.
        let json = #"{"kind":"Service","metadata":{"name":"a","annotations":{"example.com/n":3,"other":{"x":1}},"labels":{"n":[1]}},"spec":{"clusterIP":"10.96.0.1"}}"#
        let r = ManifestLoader().parse(text: json, file: "a.json")
        #expect(r.diagnostics.isEmpty, "\(r.diagnostics)")
        #expect(r.objects.services.first?.object.metadata.annotations == nil)
        #expect(r.objects.services.first?.object.metadata.labels == nil)
    }

    @Test func yamlScalarsAreReadAsTheFieldTypeAsks() {
        let yaml = """
            kind: Service
            metadata: {name: a, namespace: ~}
            spec:
              clusterIP: 10.96.0.1
              healthCheckNodePort: 0x7A69
              ports:
              - {port: 80, targetPort: "8080", name: 443}
              - {port: 81, targetPort: http}
              - {port: 1_000, targetPort: 9090}
            ---
            kind: EndpointSlice
            metadata: {name: s, labels: {kubernetes.io/service-name: a}}
            endpoints:
            - addresses: [10.0.0.1]
              conditions: {ready: yes, serving: off, terminating: False}
            """
        let r = loadYAML(yaml)
        #expect(r.diagnostics.isEmpty, "\(r.diagnostics)")
        let svc = r.objects.services.first?.object
        #expect(svc?.metadata.namespace == nil)
        #expect(svc?.spec.healthCheckNodePort == 31337)
        #expect(svc?.spec.ports?.map(\.targetPort) == [.string("8080"), .string("http"), .int(9090)])
        #expect(svc?.spec.ports?.map(\.port) == [80, 81, 1000])
        #expect(svc?.spec.ports?.first?.name == "443")
        let conditions = r.objects.endpointSlices.first?.object.endpoints?.first?.conditions
        #expect(conditions == EndpointSlice.Conditions(ready: true, serving: false, terminating: false))
    }

    @Test func yamlTypeErrorsNameTheField() {
        let yaml = """
            kind: Service
            metadata: {name: a, namespace: prod}
            spec: {clusterIP: 10.96.0.1, ports: [{port: "80"}]}
            ---
            kind: EndpointSlice
            metadata: {name: s}
            endpoints: [{addresses: [10.0.0.1], conditions: {ready: maybe}}]
            ---
            kind: Service
            metadata: {name: b}
            spec: {ports: {port: 80}}
            ---
            kind: ServiceList
            items:
            - metadata: {name: c}
              spec: {clusterIP: [1]}
            - just text
            """
        let r = loadYAML(yaml, file: "m.yaml")
        #expect(r.objects.count == 0)
        #expect(r.diagnostics.map(\.description) == [
            "m.yaml (document 1): Service prod/a: spec.ports[0].port: expected a number",
            "m.yaml (document 2): EndpointSlice default/s: endpoints[0].conditions.ready: expected true or false",
            "m.yaml (document 3): Service default/b: spec.ports: expected a list",
            "m.yaml (document 4): Service default/c: items[0].spec.clusterIP: expected a string",
            "m.yaml (document 4): ServiceList: items[1]: list item is not an object",
        ])
    }

    @Test func jsonErrorsNameFileKindObjectAndField() {
        let json = #"{"kind":"List","items":[{"kind":"Service","metadata":{"name":"a"},"spec":{"ports":[{"port":"eighty"}]}},{"kind":"Node","metadata":{"name":"n"}}]}"#
        let r = ManifestLoader().parse(text: json, file: "l.json")
        #expect(r.objects.nodes.count == 1)
        #expect(r.diagnostics.map(\.description) == ["l.json: Service default/a: items[0].spec.ports[0].port: expected a number"])
        let broken = ManifestLoader().parse(text: #"{"kind":"Service","#, file: "b.json")
        #expect(broken.diagnostics.count == 1)
        #expect(broken.diagnostics.first?.description.hasPrefix("b.json: JSON parse error") == true)
    }
}

@Suite struct YAMLComposerTests {
    @Test func anchorsAliasesAndDuplicateKeys() throws {
        let yaml = """
            kind: Service
            metadata: {name: a}
            spec:
              clusterIP: &ip 10.96.0.1
              externalIPs: [*ip]
            ---
            kind: Service
            metadata: {name: b, name: c}
            """
        let r = loadYAML(yaml, file: "m.yaml")
        #expect(r.objects.services.first?.object.spec.externalIPs == ["10.96.0.1"])
        let merged = loadYAML("""
            base: &base {type: NodePort, clusterIP: 10.96.0.9}
            kind: Service
            metadata: {name: m}
            spec:
              <<: *base
              clusterIP: 10.96.0.2
            """)
        #expect(merged.diagnostics.isEmpty)
        #expect(merged.objects.services.first?.object.spec.type == "NodePort")
        #expect(merged.objects.services.first?.object.spec.clusterIP == "10.96.0.2")
        #expect(r.diagnostics.map(\.description) == ["m.yaml (document 2): YAML parse error at line 8, column 11: duplicated mapping key \"name\""])
    }
}

@Suite struct StringListTests {
    @Test func stringListsKeepTheirErrorsPerElement() {
        let yaml = """
            kind: EndpointSlice
            metadata: {name: s, labels: {kubernetes.io/service-name: a}}
            endpoints:
            - addresses: [10.0.0.1, "10.0.0.2"]
            - addresses: [10.0.0.3, [nested]]
            """
        let r = loadYAML(yaml, file: "e.yaml")
        #expect(r.objects.endpointSlices.isEmpty)
        #expect(r.diagnostics.map(\.description) == ["e.yaml (document 1): EndpointSlice default/s: endpoints[1].addresses[1]: expected a string"])
        let ok = loadYAML("kind: EndpointSlice\nmetadata: {name: s}\nendpoints: [{addresses: [10.0.0.1, \"10.0.0.2\"]}]\n")
        #expect(ok.objects.endpointSlices.first?.object.endpoints?.first?.addresses == ["10.0.0.1", "10.0.0.2"])
    }
}
