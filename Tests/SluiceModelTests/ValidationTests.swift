import Testing
@testable import SluiceModel

/// Every validation error: one diagnostic line naming file, kind, namespace/name, field.
@Suite struct ServiceValidationTests {
    /// Plans `web` (and an `ok` service that must survive) and returns the diagnostics.
    func check(_ spec: [String] = [], clusterIP: String = "10.96.0.10", ports: [String]? = nil,
               status: [String] = [], extra: String = "") -> PlanResult {
        let web = serviceYAML("web", clusterIP: clusterIP, spec: spec,
                              ports: ports ?? ["{name: http, port: 80, targetPort: 8080}"], status: status)
        let ok = serviceYAML("ok", clusterIP: "10.96.0.99")
        let r = planYAML(docs(web, ok) + extra, file: "Rulesets/bad.yaml")
        #expect(r.port("default/ok:http") != nil, "a valid service must still be planned")
        return r
    }

    @Test func servicePortOutOfRange() {
        let r = check(ports: ["{name: http, port: 80}", "{name: https, port: 70000}"])
        #expect(r.descriptions == ["Rulesets/bad.yaml: Service default/web: spec.ports[1].port: 70000 is outside 1-65535"])
        #expect(r.port("default/web:http") == nil)  // whole service left out
    }

    @Test func servicePortMissingOrZero() {
        #expect(check(ports: ["{name: http}"]).descriptions == ["Rulesets/bad.yaml: Service default/web: spec.ports[0].port: is required"])
        #expect(check(ports: ["{name: http, port: 0}"]).descriptions == ["Rulesets/bad.yaml: Service default/web: spec.ports[0].port: 0 is outside 1-65535"])
    }

    @Test func targetPortOutOfRange() {
        let r = check(ports: ["{name: http, port: 80, targetPort: 0}"])
        #expect(r.descriptions == ["Rulesets/bad.yaml: Service default/web: spec.ports[0].targetPort: 0 is outside 1-65535"])
        // Named target ports are fine.
        #expect(check(ports: ["{name: http, port: 80, targetPort: http-web}"]).descriptions.isEmpty)
    }

    @Test func nodePortOutOfRangeAndOutsideTheNodePortRange() {
        let a = check(["type: NodePort"], ports: ["{name: http, port: 80, nodePort: 80000}"])
        #expect(a.descriptions == ["Rulesets/bad.yaml: Service default/web: spec.ports[0].nodePort: 80000 is outside 1-65535"])
        let b = check(["type: NodePort"], ports: ["{name: http, port: 80, nodePort: 8080}"])
        #expect(b.descriptions == ["Rulesets/bad.yaml: Service default/web: spec.ports[0].nodePort: 8080 is outside the node port range 30000-32767"])
    }

    @Test func nodePortRangeOptionIsHonoured() {
        var options = NodeOptions(nodeName: "node-a")
        options.nodePortRange = PortRange("8000-9000")!
        let r = planYAML(serviceYAML("web", spec: ["type: NodePort"], ports: ["{name: http, port: 80, nodePort: 8080}"]),
                         options: options)
        #expect(r.errors.isEmpty)
        #expect(r.port("default/web:http")?.nodePort == 8080)
    }

    @Test func duplicatePortProtocolPair() {
        let r = check(ports: ["{name: a, port: 80}", "{name: b, port: 80, protocol: TCP}"])
        #expect(r.descriptions == ["Rulesets/bad.yaml: Service default/web: spec.ports[1]: duplicate port 80/TCP (also spec.ports[0])"])
        // Same number, other protocol: fine.
        #expect(check(ports: ["{name: a, port: 53, protocol: UDP}", "{name: b, port: 53}"]).descriptions.isEmpty)
    }

    @Test func duplicateAndMissingPortNames() {
        #expect(check(ports: ["{name: a, port: 80}", "{name: a, port: 81}"]).descriptions ==
            ["Rulesets/bad.yaml: Service default/web: spec.ports[1].name: duplicate name \"a\" (also spec.ports[0])"])
        #expect(check(ports: ["{port: 80}", "{port: 81}"]).descriptions ==
            ["Rulesets/bad.yaml: Service default/web: spec.ports[0].name: is required when the service has more than one port"])
    }

    @Test func unknownProtocol() {
        let r = check(ports: ["{name: http, port: 80, protocol: ICMP}"])
        #expect(r.descriptions == ["Rulesets/bad.yaml: Service default/web: spec.ports[0].protocol: unknown protocol \"ICMP\" (expected TCP, UDP or SCTP)"])
    }

    @Test("loopback, multicast, unspecified and broadcast ClusterIPs reject the service; such external and LB IPs are left out",
          arguments: [("127.0.0.1", "a loopback address"), ("224.0.0.5", "a multicast address"),
                      ("0.0.0.0", "the unspecified address"), ("255.255.255.255", "the broadcast address"),
                      ("::1", "a loopback address"), ("ff02::1", "a multicast address")])
    func specialUseAddresses(_ ip: String, _ reason: String) {
        #expect(check(clusterIP: ip).descriptions ==
            ["Rulesets/bad.yaml: Service default/web: spec.clusterIP: \(ip) is \(reason), never a ClusterIP; the service is not proxied"])
        let external = check(["externalIPs: [\"\(ip)\", 192.0.2.7]"])
        #expect(external.descriptions == ["Rulesets/bad.yaml: Service default/web: spec.externalIPs[0]: \(ip) is \(reason); entry ignored"])
    }

    @Test func badClusterIP() {
        #expect(check(clusterIP: "10.96.0.300").descriptions ==
            ["Rulesets/bad.yaml: Service default/web: spec.clusterIP: \"10.96.0.300\" is not a valid IP address"])
        #expect(check(["clusterIPs: [10.96.0.10, \"fd00::zz\"]"]).descriptions ==
            ["Rulesets/bad.yaml: Service default/web: spec.clusterIPs[1]: \"fd00::zz\" is not a valid IP address"])
        #expect(check(["clusterIPs: [10.96.0.10, 10.96.0.11]"]).descriptions ==
            ["Rulesets/bad.yaml: Service default/web: spec.clusterIPs[1]: 10.96.0.11: a service has at most one IPv4 ClusterIP"])
    }

    @Test func badExternalIPIsDroppedAlone() {
        let r = check(["externalIPs: [198.51.100.7, 198.51.100.300]"])
        #expect(r.descriptions == ["Rulesets/bad.yaml: Service default/web: spec.externalIPs[1]: \"198.51.100.300\" is not a valid IP address; entry ignored"])
        #expect(r.port("default/web:http")?.externalIPs == [ip("198.51.100.7")])
    }

    @Test func badLoadBalancerIngressIPIsDroppedAlone() {
        let r = check(["type: LoadBalancer"], ports: ["{name: http, port: 80, nodePort: 30080}"],
                      status: ["loadBalancer: {ingress: [{ip: 192.0.2.1}, {ip: 192.0.2.999}, {hostname: lb.example.com}]}"])
        #expect(r.descriptions == ["Rulesets/bad.yaml: Service default/web: status.loadBalancer.ingress[1].ip: \"192.0.2.999\" is not a valid IP address; entry ignored"])
        #expect(r.port("default/web:http")?.loadBalancerIPs == [ip("192.0.2.1")])
    }

    @Test func badSourceRangeIsDroppedAlone() {
        let r = check(["type: LoadBalancer", "loadBalancerSourceRanges: [\"203.0.113.0/24\", \"203.0.113.0/33\", \"nonsense\"]"],
                      ports: ["{name: http, port: 80, nodePort: 30080}"])
        #expect(r.descriptions == [
            "Rulesets/bad.yaml: Service default/web: spec.loadBalancerSourceRanges[1]: \"203.0.113.0/33\" is not a valid CIDR; entry ignored",
            "Rulesets/bad.yaml: Service default/web: spec.loadBalancerSourceRanges[2]: \"nonsense\" is not a valid CIDR; entry ignored",
        ])
        #expect(r.port("default/web:http")?.loadBalancerSourceRanges == [cidr("203.0.113.0/24")])
    }

    @Test func clusterIPOutsideServiceCIDRs() {
        let serviceCIDR = """
            ---
            apiVersion: networking.k8s.io/v1
            kind: ServiceCIDR
            metadata: {name: kubernetes}
            spec: {cidrs: [10.96.0.0/16, "fd00:10:96::/112"]}

            """
        let r = check(clusterIP: "10.97.0.10", extra: serviceCIDR)
        #expect(r.descriptions == ["Rulesets/bad.yaml: Service default/web: spec.clusterIP: 10.97.0.10 is outside every ServiceCIDR (10.96.0.0/16)"])
        #expect(r.plan.family(.ipv4)?.context.serviceCIDRs == [cidr("10.96.0.0/16")])
        #expect(r.plan.family(.ipv6)?.context.serviceCIDRs == [cidr("fd00:10:96::/112")])
    }

    @Test func noServiceCIDRsMeansNoCIDRCheck() {
        #expect(check(clusterIP: "10.97.0.10").descriptions.isEmpty)
    }

    @Test func invalidAffinityTimeout() {
        for t in [0, 86401] {
            let r = check(["sessionAffinity: ClientIP", "sessionAffinityConfig: {clientIP: {timeoutSeconds: \(t)}}"])
            #expect(r.descriptions == ["Rulesets/bad.yaml: Service default/web: spec.sessionAffinityConfig.clientIP.timeoutSeconds: \(t) is outside 1-86400"])
        }
    }

    @Test func unknownTypeAndPolicies() {
        #expect(check(["type: Magic"]).descriptions == ["Rulesets/bad.yaml: Service default/web: spec.type: \"Magic\" is not one of ClusterIP, NodePort, LoadBalancer, ExternalName"])
        #expect(check(["externalTrafficPolicy: Nearby"]).descriptions == ["Rulesets/bad.yaml: Service default/web: spec.externalTrafficPolicy: \"Nearby\" is not one of Cluster, Local"])
        #expect(check(["sessionAffinity: Cookie"]).descriptions == ["Rulesets/bad.yaml: Service default/web: spec.sessionAffinity: \"Cookie\" is not one of None, ClientIP"])
    }

    @Test func duplicateClusterIPLaterServiceRejected() {
        // "web" is later than "ok"? No: "ok" < "web", so web (same IP as ok) is rejected.
        let r = check(extra: "---\n" + serviceYAML("zzz", clusterIP: "10.96.0.99"))
        #expect(r.descriptions == ["Rulesets/bad.yaml: Service default/zzz: spec.clusterIP: 10.96.0.99 is already the ClusterIP of Service default/ok"])
        #expect(r.port("default/zzz:http") == nil)
        #expect(r.port("default/web:http") != nil)
    }

    @Test func duplicateNodePortSameProtocolRejected() {
        let a = serviceYAML("a", clusterIP: "10.96.0.1", spec: ["type: NodePort"], ports: ["{name: http, port: 80, nodePort: 30080}"])
        let b = serviceYAML("b", ns: "other", clusterIP: "10.96.0.2", spec: ["type: NodePort"], ports: ["{name: http, port: 80, nodePort: 30080}"])
        let c = serviceYAML("c", clusterIP: "10.96.0.3", spec: ["type: NodePort"], ports: ["{name: dns, port: 53, protocol: UDP, nodePort: 30080}"])
        let r = planYAML(docs(b, a, c), file: "Rulesets/np.yaml")
        #expect(r.descriptions == ["Rulesets/np.yaml: Service other/b: spec.ports[0].nodePort: 30080/TCP is already a node port of Service default/a"])
        #expect(r.port("default/a:http")?.nodePort == 30080)
        #expect(r.port("default/c:dns")?.nodePort == 30080)  // UDP: no conflict
        #expect(r.port("other/b:http") == nil)
    }

    @Test func clusterServiceWithNodePortFieldIgnoresIt() {
        let r = check(ports: ["{name: http, port: 80, nodePort: 30080}"])
        #expect(r.warnings.map(\.description) == ["Rulesets/bad.yaml: Service default/web: spec.ports[0].nodePort: 30080 ignored: only NodePort and LoadBalancer services have node ports"])
        #expect(r.port("default/web:http")?.nodePort == nil)
    }

    @Test func missingNameAndMissingClusterIP() {
        let noName = "apiVersion: v1\nkind: Service\nmetadata: {namespace: default}\nspec: {clusterIP: 10.96.0.5, ports: [{port: 80}]}\n"
        let r = planYAML(noName, file: "x.yaml")
        #expect(r.descriptions == ["x.yaml: Service default/<unnamed>: metadata.name: is required"])
        let noIP = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n"
        let r2 = planYAML(noIP, file: "x.yaml")
        #expect(r2.warnings.map(\.description) == ["x.yaml: Service default/web: spec.clusterIP: not set (the API server allocates it); the service is not proxied"])
    }

    @Test func duplicateServiceObjectKeepsFirst() {
        let r = planYAML(docs(serviceYAML("web", clusterIP: "10.96.0.1"), serviceYAML("web", clusterIP: "10.96.0.2")), file: "d.yaml")
        #expect(r.descriptions == ["d.yaml: Service default/web: duplicate object (first one in d.yaml is used); ignored"])
        #expect(r.port("default/web:http")?.clusterIP == ip("10.96.0.1"))
    }
}

@Suite struct EndpointSliceValidationTests {
    func check(_ slice: String) -> PlanResult {
        let r = planYAML(docs(serviceYAML("web"), slice), file: "Rulesets/eps.yaml")
        #expect(r.port("default/web:http") != nil)
        return r
    }

    @Test func missingServiceNameLabel() {
        let r = check(sliceYAML("web-1", service: nil, endpoints: ["{addresses: [10.0.0.1]}"]))
        #expect(r.descriptions == ["Rulesets/eps.yaml: EndpointSlice default/web-1: metadata.labels[\"kubernetes.io/service-name\"]: is missing; the slice belongs to no Service"])
    }

    @Test func unknownAddressType() {
        let r = check(sliceYAML("web-1", service: "web", addressType: "IPv5", endpoints: ["{addresses: [10.0.0.1]}"]))
        #expect(r.descriptions == ["Rulesets/eps.yaml: EndpointSlice default/web-1: addressType: \"IPv5\" is not one of IPv4, IPv6, FQDN"])
        #expect(r.port("default/web:http")!.clusterEndpoints.isEmpty)
    }

    @Test func fqdnSlicesAreIgnoredSilently() {
        let r = check(sliceYAML("web-1", service: "web", addressType: "FQDN", endpoints: ["{addresses: [db.example.com]}"]))
        #expect(r.diagnostics.isEmpty)
    }

    @Test func badEndpointAddressDropsOnlyThatEndpoint() {
        let r = check(sliceYAML("web-1", service: "web", endpoints: [
            "{addresses: [10.0.0.1]}", "{addresses: [10.0.0.256]}", "{addresses: [\"fd00::1\"]}", "{addresses: []}",
        ]))
        #expect(r.descriptions == [
            "Rulesets/eps.yaml: EndpointSlice default/web-1: endpoints[1].addresses[0]: \"10.0.0.256\" is not a valid IP address; endpoint ignored",
            "Rulesets/eps.yaml: EndpointSlice default/web-1: endpoints[2].addresses[0]: fd00::1 is not an IPv4 address (addressType IPv4); endpoint ignored",
            "Rulesets/eps.yaml: EndpointSlice default/web-1: endpoints[3].addresses: is empty; endpoint ignored",
        ])
        #expect(r.port("default/web:http")!.clusterEndpoints.strings == ["10.0.0.1:8080"])
    }

    @Test func badEndpointPortDropsOnlyThatPort() {
        let svc = serviceYAML("web", ports: ["{name: http, port: 80}", "{name: metrics, port: 9090}"])
        let slice = sliceYAML("web-1", service: "web", endpoints: ["{addresses: [10.0.0.1]}"],
                              ports: ["{name: http, port: 8080}", "{name: metrics, port: 99999}", "{name: x, port: 1, protocol: QUIC}"])
        let r = planYAML(docs(svc, slice), file: "Rulesets/eps.yaml")
        #expect(r.descriptions == [
            "Rulesets/eps.yaml: EndpointSlice default/web-1: ports[1].port: 99999 is outside 1-65535; port ignored",
            "Rulesets/eps.yaml: EndpointSlice default/web-1: ports[2].protocol: unknown protocol \"QUIC\" (expected TCP, UDP or SCTP); port ignored",
        ])
        #expect(r.port("default/web:http")!.clusterEndpoints.strings == ["10.0.0.1:8080"])
        #expect(r.port("default/web:metrics")!.clusterEndpoints.isEmpty)
    }

    @Test func sliceForUnknownServiceWarns() {
        let r = check(sliceYAML("api-1", service: "api", endpoints: ["{addresses: [10.0.0.1]}"]))
        #expect(r.warnings.map(\.description) == ["Rulesets/eps.yaml: EndpointSlice default/api-1: metadata.labels[\"kubernetes.io/service-name\"]: no Service default/api; slice unused"])
    }

    @Test func zeroPaddedEndpointAddressIsNormalized() {
        let r = check(sliceYAML("web-1", service: "web", endpoints: ["{addresses: [10.180.00.001]}"]))
        #expect(r.diagnostics.isEmpty)
        #expect(r.port("default/web:http")!.clusterEndpoints.strings == ["10.180.0.1:8080"])
    }
}

@Suite struct DiagnosticFormatTests {
    @Test func descriptionShapes() {
        #expect(Diagnostic(file: "a.yaml", kind: "Service", namespace: "default", name: "web", field: "spec.ports[1].port",
                           message: "70000 is outside 1-65535").description
                == "a.yaml: Service default/web: spec.ports[1].port: 70000 is outside 1-65535")
        #expect(Diagnostic(kind: "Node", name: "node-a", message: "m").description == "Node node-a: m")
        #expect(Diagnostic(file: "a.yaml", document: 2, message: "bad").description == "a.yaml (document 2): bad")
        #expect(Diagnostic(field: "--cluster-cidr", message: "bad").description == "--cluster-cidr: bad")
    }
}
