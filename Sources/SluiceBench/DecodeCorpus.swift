/// Synthetic Kubernetes objects as a cluster serves them or a user writes them, for measuring
/// decoding throughput (`sluice decode-bench`). Service `i` has one EndpointSlice with
/// `endpoints` endpoints; every object is distinct and valid.
public struct DecodeCorpus: Sendable {
    public var endpoints: Int

    public init(endpoints: Int = 10) { self.endpoints = endpoints }

    /// One manifest file: `count` Services and their EndpointSlices from `first` on, as
    /// `kubectl get -o yaml` prints them (block style, no managedFields).
    public func yamlFile(first: Int, count: Int) -> String {
        var out = ""
        for i in first..<(first + count) {
            out += "---\n" + serviceYAML(i) + "---\n" + sliceYAML(i)
        }
        return out
    }

    /// The same objects as one JSON `List`.
    public func jsonFile(first: Int, count: Int) -> String {
        var items: [String] = []
        for i in first..<(first + count) {
            items.append(serviceJSON(i, apiServer: false))
            items.append(sliceJSON(i, apiServer: false))
        }
        return #"{"apiVersion":"v1","kind":"List","items":["# + items.joined(separator: ",") + "]}"
    }

    /// One page of a `ServiceList` as the API server serves it (managedFields, last-applied
    /// annotation, items without kind).
    public func serviceListPage(first: Int, count: Int) -> String {
        let items = (first..<(first + count)).map { serviceJSON($0, apiServer: true) }
        return #"{"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"1000"},"items":["#
            + items.joined(separator: ",") + "]}"
    }

    /// One page of an `EndpointSliceList` as the API server serves it (targetRef, managedFields).
    public func sliceListPage(first: Int, count: Int) -> String {
        let items = (first..<(first + count)).map { sliceJSON($0, apiServer: true) }
        return #"{"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"1000"},"items":["#
            + items.joined(separator: ",") + "]}"
    }

    /// A watch-list stream's events for services `first..<first+count` (each Service and its
    /// EndpointSlice as `ADDED`, one event per line), as the API server streams them.
    public func watchEvents(first: Int, count: Int) -> String {
        (first..<(first + count)).map {
            #"{"type":"ADDED","object":"# + serviceJSON($0, apiServer: true) + "}\n"
                + #"{"type":"ADDED","object":"# + sliceJSON($0, apiServer: true) + "}\n"
        }.joined()
    }

    func clusterIP(_ i: Int) -> String { "10.\(96 + i >> 16).\((i >> 8) & 255).\(i & 255)" }
    func podIP(_ i: Int, _ e: Int) -> String { let n = i * endpoints + e; return "10.\(128 + n >> 16).\((n >> 8) & 255).\(n & 255)" }

    func serviceYAML(_ i: Int) -> String {
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: svc-\(i)
          namespace: ns-\(i % 100)
          labels:
            app: app-\(i)
            tier: backend
          annotations:
            team.example.com/owner: team-\(i % 17)
        spec:
          type: ClusterIP
          clusterIP: \(clusterIP(i))
          clusterIPs:
          - \(clusterIP(i))
          ipFamilies:
          - IPv4
          ipFamilyPolicy: SingleStack
          selector:
            app: app-\(i)
          sessionAffinity: None
          internalTrafficPolicy: Cluster
          ports:
          - name: http
            port: 80
            protocol: TCP
            targetPort: 8080

        """
    }

    func sliceYAML(_ i: Int) -> String {
        var out = """
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: svc-\(i)-abcde
          namespace: ns-\(i % 100)
          labels:
            endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
            kubernetes.io/service-name: svc-\(i)
          annotations:
            endpoints.kubernetes.io/last-change-trigger-time: "2026-11-26T18:19:03Z"
        addressType: IPv4
        ports:
        - name: http
          port: 8080
          protocol: TCP
        endpoints:

        """
        for e in 0..<endpoints {
            out += """
            - addresses:
              - \(podIP(i, e))
              conditions:
                ready: true
                serving: true
                terminating: false
              nodeName: node-\(e % 50)
              zone: zone-\(e % 3)
              targetRef:
                kind: Pod
                name: app-\(i)-pod-\(e)
                namespace: ns-\(i % 100)
                uid: 0c4f1a2e-\(i)-\(e)

            """
        }
        return out
    }

    func managedFields(_ manager: String) -> String {
        #"[{"manager":"\#(manager)","operation":"Update","apiVersion":"v1","time":"2026-11-26T18:19:03Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:protocol":{},"f:targetPort":{}}},"f:selector":{},"f:sessionAffinity":{},"f:type":{}}}}]"#
    }

    func serviceJSON(_ i: Int, apiServer: Bool) -> String {
        let typeMeta = apiServer ? "" : #""apiVersion":"v1","kind":"Service","#
        let server = apiServer
            ? #","uid":"5e0c7f8a-\#(i)","resourceVersion":"\#(500 + i)","creationTimestamp":"2026-11-26T18:19:03Z","managedFields":\#(managedFields("kubectl-client-side-apply"))"#
            : ""
        let lastApplied = apiServer
            ? #","kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc-\#(i)\"},\"spec\":{\"ports\":[{\"port\":80}]}}\n""#
            : ""
        return #"{\#(typeMeta)"metadata":{"name":"svc-\#(i)","namespace":"ns-\#(i % 100)","labels":{"app":"app-\#(i)","tier":"backend"},"annotations":{"team.example.com/owner":"team-\#(i % 17)"\#(lastApplied)}\#(server)},"#
            + #""spec":{"type":"ClusterIP","clusterIP":"\#(clusterIP(i))","clusterIPs":["\#(clusterIP(i))"],"ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","selector":{"app":"app-\#(i)"},"sessionAffinity":"None","internalTrafficPolicy":"Cluster","ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080}]},"status":{"loadBalancer":{}}}"#
    }

    func sliceJSON(_ i: Int, apiServer: Bool) -> String {
        let typeMeta = apiServer ? "" : #""apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","#
        let server = apiServer
            ? #","uid":"7a1b2c3d-\#(i)","resourceVersion":"\#(500 + i)","generateName":"svc-\#(i)-","generation":1,"ownerReferences":[{"apiVersion":"v1","kind":"Service","name":"svc-\#(i)","uid":"5e0c7f8a-\#(i)","controller":true,"blockOwnerDeletion":true}],"managedFields":\#(managedFields("kube-controller-manager"))"#
            : ""
        let eps = (0..<endpoints).map { e in
            #"{"addresses":["\#(podIP(i, e))"],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node-\#(e % 50)","zone":"zone-\#(e % 3)","targetRef":{"kind":"Pod","name":"app-\#(i)-pod-\#(e)","namespace":"ns-\#(i % 100)","uid":"0c4f1a2e-\#(i)-\#(e)"}}"#
        }
        return #"{\#(typeMeta)"metadata":{"name":"svc-\#(i)-abcde","namespace":"ns-\#(i % 100)","labels":{"endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io","kubernetes.io/service-name":"svc-\#(i)"},"annotations":{"endpoints.kubernetes.io/last-change-trigger-time":"2026-11-26T18:19:03Z"}\#(server)},"#
            + #""addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],"endpoints":[\#(eps.joined(separator: ","))]}"#
    }
}
