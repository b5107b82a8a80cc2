import Foundation
import Testing
@testable import SluiceModel

@Suite struct PlannerTests {
    @Test func zeroPaddedAddressesAreNormalized() {
        // kube-proxy TestBadIPs: zero-padded forms and a leading space are accepted.
        let svc = serviceYAML("lb", clusterIP: "172.30.0.041",
                              spec: ["type: LoadBalancer", "externalIPs: [\"192.168.099.011\"]",
                                     "loadBalancerSourceRanges: [\" 203.0.113.000/025\", \"10.180.00.000/16 \"]"],
                              ports: ["{name: p80, port: 80, nodePort: 30080}"],
                              status: ["loadBalancer: {ingress: [{ip: \"1.2.3.004\"}]}"])
        let r = planYAML(svc)
        #expect(r.diagnostics.isEmpty)
        let p = r.port("default/lb:p80")!
        #expect(p.clusterIP.description == "172.30.0.41")
        #expect(p.externalIPs.map(\.description) == ["192.168.99.11"])
        #expect(p.loadBalancerIPs.map(\.description) == ["1.2.3.4"])
        #expect(p.loadBalancerSourceRanges.map(\.description) == ["203.0.113.0/25", "10.180.0.0/16"])
    }

    @Test func loadBalancerIngressWithIPModeProxyIsSkipped() {
        let svc = serviceYAML("lb", spec: ["type: LoadBalancer"], ports: ["{name: http, port: 80, nodePort: 30080}"],
                              status: ["loadBalancer: {ingress: [{ip: 192.0.2.1, ipMode: Proxy}, {ip: 192.0.2.2, ipMode: VIP}, {ip: 192.0.2.3}]}"])
        let r = planYAML(svc)
        #expect(r.diagnostics.isEmpty)
        #expect(r.port("default/lb:http")!.loadBalancerIPs == [ip("192.0.2.2"), ip("192.0.2.3")])
    }

    @Test func dualStackServiceIsSplitPerFamily() {
        let svc = serviceYAML("web-ds", clusterIP: "10.96.138.80",
                              spec: ["clusterIPs: [10.96.138.80, \"fd00:10:96::56f4\"]", "ipFamilies: [IPv4, IPv6]",
                                     "type: LoadBalancer",
                                     "externalIPs: [198.51.100.7, \"2001:db8::7\"]",
                                     "loadBalancerSourceRanges: [203.0.113.0/24, \"2001:db8:1::/48\"]"],
                              ports: ["{name: http, port: 80, nodePort: 30080}"],
                              status: ["loadBalancer: {ingress: [{ip: 192.0.2.127}, {ip: \"2001:db8::127\"}]}"])
        let v4slice = sliceYAML("web-ds-v4", service: "web-ds", endpoints: ["{addresses: [10.244.1.5]}"])
        let v6slice = sliceYAML("web-ds-v6", service: "web-ds", addressType: "IPv6", endpoints: ["{addresses: [\"fd00:10:244:1::5\"]}"])
        let node = """
            apiVersion: v1
            kind: Node
            metadata: {name: node-a}
            status: {addresses: [{type: InternalIP, address: 192.168.10.11}, {type: InternalIP, address: "fd00:192:168:10::11"}]}

            """
        let r = planYAML(docs(node, svc, v4slice, v6slice), options: NodeOptions(nodeName: "node-a"))
        #expect(r.diagnostics.isEmpty, "\(r.descriptions)")
        #expect(r.plan.families.map(\.context.family) == [.ipv4, .ipv6])
        let p4 = r.port("default/web-ds:http", family: .ipv4)!
        let p6 = r.port("default/web-ds:http", family: .ipv6)!
        #expect(p4.clusterIP == ip("10.96.138.80") && p6.clusterIP == ip("fd00:10:96::56f4"))
        #expect(p4.externalIPs == [ip("198.51.100.7")] && p6.externalIPs == [ip("2001:db8::7")])
        #expect(p4.loadBalancerIPs == [ip("192.0.2.127")] && p6.loadBalancerIPs == [ip("2001:db8::127")])
        #expect(p4.loadBalancerSourceRanges == [cidr("203.0.113.0/24")] && p6.loadBalancerSourceRanges == [cidr("2001:db8:1::/48")])
        #expect(p4.clusterEndpoints.strings == ["10.244.1.5:8080"])
        #expect(p6.clusterEndpoints.strings == ["[fd00:10:244:1::5]:8080"])
        #expect(p4.family == .ipv4 && p6.family == .ipv6)
        #expect(r.plan.family(.ipv6)?.context.nodePortAddresses == .ips([ip("fd00:192:168:10::11")]))
    }

    @Test func singleStackServiceOnlyInItsFamily() {
        let r = planYAML(docs(serviceYAML("v4"), serviceYAML("v6", clusterIP: "fd00::10")))
        #expect(r.plan.family(.ipv4)?.servicePorts.map(\.name.description) == ["default/v4:http"])
        #expect(r.plan.family(.ipv6)?.servicePorts.map(\.name.description) == ["default/v6:http"])
    }

    @Test func externalNameAndHeadlessAreSkipped() {
        let ext = "apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {type: ExternalName, externalName: db.example.com, clusterIP: 10.96.0.50}\n"
        let headless = serviceYAML("web-headless", clusterIP: "None", spec: ["clusterIPs: [None]"])
        let r = planYAML(docs(ext, headless, serviceYAML("web")))
        #expect(r.diagnostics.isEmpty)
        #expect(r.plan.skipped == [
            SkippedService(service: ServiceName(namespace: "default", name: "ext"), reason: .externalName, target: "db.example.com"),
            SkippedService(service: ServiceName(namespace: "default", name: "web-headless"), reason: .headless),
        ])
        #expect(r.plan.family(.ipv4)?.servicePorts.count == 1)
    }

    @Test func serviceProxyNameSelectsLabelledObjectsOnly() {
        // Services and slices labelled for another proxy are kube-proxy's to skip; with
        // --service-proxy-name sluice, only those labelled `sluice` are proxied.
        func labelled(_ yaml: String, _ proxy: String) -> String {
            yaml.replacingOccurrences(of: "namespace: default}", with: "namespace: default, labels: {service.kubernetes.io/service-proxy-name: \(proxy)}}")
        }
        let plain = serviceYAML("plain", clusterIP: "10.96.0.1")
        let mine = labelled(serviceYAML("mine", clusterIP: "10.96.0.2"), "sluice")
        let other = labelled(serviceYAML("other", clusterIP: "10.96.0.3"), "other-proxy")
        let yaml = docs(plain, mine, other)
        let byDefault = planYAML(yaml)
        #expect(byDefault.plan.family(.ipv4)?.servicePorts.map(\.name.service.name) == ["plain"])
        var options = NodeOptions(nodeName: "node-a", nodeIPs: [IPAddress("192.168.10.11")!])
        options.serviceProxyName = "sluice"
        let named = planYAML(yaml, options: options)
        #expect(named.plan.family(.ipv4)?.servicePorts.map(\.name.service.name) == ["mine"])
        let meta = { (labels: [String: String]) in ObjectMeta(name: "x", namespace: "default", labels: labels) }
        #expect(!ProxyPlanner.matchesProxySelector(meta([WellKnownKeys.headless: "", WellKnownKeys.serviceProxyName: "sluice"]), serviceProxyName: "sluice"))
        #expect(ProxyPlanner.matchesProxySelector(meta([:])))
        #expect(!ProxyPlanner.matchesProxySelector(meta([:]), serviceProxyName: "sluice"))
        // The flag is honoured with and without --config.
        var flags = NodeOptionFlags(hostnameOverride: "node-a")
        flags.serviceProxyName = " sluice "
        #expect(NodeOptions.merge(config: nil, flags: flags, systemHostname: nil).0.serviceProxyName == "sluice")
        #expect(NodeOptions.merge(config: KubeProxyConfiguration(), flags: flags, systemHostname: nil).0.serviceProxyName == "sluice")
    }

    @Test func healthCheckNodePortOnlyForLoadBalancerWithLocalPolicy() {
        let lbLocal = serviceYAML("a", clusterIP: "10.96.0.1", spec: ["type: LoadBalancer", "externalTrafficPolicy: Local", "healthCheckNodePort: 31941"],
                                  ports: ["{name: http, port: 80, nodePort: 30080}"])
        let npLocal = serviceYAML("b", clusterIP: "10.96.0.2", spec: ["type: NodePort", "externalTrafficPolicy: Local", "healthCheckNodePort: 31942"],
                                  ports: ["{name: http, port: 80, nodePort: 30081}"])
        let lbCluster = serviceYAML("c", clusterIP: "10.96.0.3", spec: ["type: LoadBalancer", "healthCheckNodePort: 31943"],
                                    ports: ["{name: http, port: 80, nodePort: 30082}"])
        let r = planYAML(docs(lbLocal, npLocal, lbCluster))
        #expect(r.port("default/a:http")?.healthCheckNodePort == 31941)
        #expect(r.port("default/b:http")?.healthCheckNodePort == nil)
        #expect(r.port("default/b:http")?.externalPolicyLocal == true)
        #expect(r.port("default/c:http")?.healthCheckNodePort == nil)
    }

    @Test func externalPolicyLocalNeedsAnExternallyAccessibleService() {
        let plain = serviceYAML("a", clusterIP: "10.96.0.1", spec: ["externalTrafficPolicy: Local"])
        let withExternalIP = serviceYAML("b", clusterIP: "10.96.0.2", spec: ["externalTrafficPolicy: Local", "externalIPs: [198.51.100.1]"])
        let r = planYAML(docs(plain, withExternalIP))
        #expect(r.port("default/a:http")?.externalPolicyLocal == false)
        #expect(r.port("default/b:http")?.externalPolicyLocal == true)
    }

    @Test func nodePortZeroIsNil() {
        let r = planYAML(serviceYAML("np", spec: ["type: NodePort"], ports: ["{name: a, port: 80, nodePort: 0}", "{name: b, port: 81, nodePort: 30081}"]))
        #expect(r.port("default/np:a")?.nodePort == nil)
        #expect(r.port("default/np:b")?.nodePort == 30081)
    }

    @Test func sessionAffinityTimeout() {
        let sticky = serviceYAML("sticky", clusterIP: "10.96.0.1", spec: ["sessionAffinity: ClientIP"])
        let custom = serviceYAML("custom", clusterIP: "10.96.0.2", spec: ["sessionAffinity: ClientIP", "sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}"])
        let none = serviceYAML("none", clusterIP: "10.96.0.3", spec: ["sessionAffinity: None", "sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}"])
        let r = planYAML(docs(sticky, custom, none))
        #expect(r.port("default/sticky:http")?.affinityTimeoutSeconds == 10800)
        #expect(r.port("default/custom:http")?.affinityTimeoutSeconds == 60)
        #expect(r.port("default/none:http")?.affinityTimeoutSeconds == nil)
    }

    @Test func protocolDefaultsToTCPAndUnnamedSinglePort() {
        let r = planYAML(serviceYAML("k", ports: ["{port: 443, targetPort: 6443}"]) + "---\n"
                         + sliceYAML("k-1", service: "k", endpoints: ["{addresses: [192.168.10.1]}"], ports: ["{port: 6443}"]))
        let p = r.port("default/k")!
        #expect(p.name.proto == .tcp && p.name.port == "")
        #expect(p.clusterEndpoints.strings == ["192.168.10.1:6443"])
    }

    @Test func oneServiceCanBePlannedIndependently() {
        let yaml = docs(serviceYAML("web"), serviceYAML("api", clusterIP: "10.96.0.11"),
                        sliceYAML("web-1", service: "web", endpoints: ["{addresses: [10.0.0.1], nodeName: node-a}"]))
        let full = planYAML(yaml)
        let loaded = loadYAML(yaml).objects
        let (outcome, _) = ServiceValidator().validate(loaded.services[0].object)
        guard case .valid(let web) = outcome else {
            Issue.record("web should be valid")
            return
        }
        let (slice, _) = EndpointSliceValidator().validate(loaded.endpointSlices[0].object)
        guard case .valid(let webSlice) = slice else {
            Issue.record("slice should be valid")
            return
        }
        let alone = ServicePortPlanner.plan(service: web, slices: [webSlice], context: full.plan.family(.ipv4)!.context, zone: nil)
        #expect(alone == [full.port("default/web:http")!])
        #expect(full.nodeContext.planServicePorts(web, slices: [webSlice])[.ipv4] == alone)
    }

    @Test func nodeNotAmongGivenNodesWarns() {
        let other = "apiVersion: v1\nkind: Node\nmetadata: {name: node-z}\n"
        let r = planYAML(docs(other, serviceYAML("web")))
        #expect(r.warnings.map(\.description) == ["Node node-a: not among the given Nodes (node-z); node IPs, pod CIDRs and zone are unknown"])
    }

    @Test func servicePortsAreSortedByName() {
        let r = planYAML(docs(serviceYAML("b", clusterIP: "10.96.0.2"), serviceYAML("a", clusterIP: "10.96.0.1"),
                              serviceYAML("a", ns: "aaa", clusterIP: "10.96.0.3")))
        #expect(r.plan.family(.ipv4)?.servicePorts.map(\.name.description) == ["aaa/a:http", "default/a:http", "default/b:http"])
    }

    @Test func objectsOutsideTheKubeProxySelectorAreIgnored() {
        let other = serviceYAML("other", clusterIP: "10.96.0.2").replacingOccurrences(
            of: "metadata: {name: other, namespace: default}",
            with: "metadata: {name: other, namespace: default, labels: {service.kubernetes.io/service-proxy-name: cilium}}")
        let headlessSlice = sliceYAML("web-h", service: "web", endpoints: ["{addresses: [10.0.0.9]}"])
            .replacingOccurrences(of: "labels: {kubernetes.io/service-name: web}",
                                  with: "labels: {kubernetes.io/service-name: web, service.kubernetes.io/headless: \"\"}")
        let r = planYAML(docs(serviceYAML("web"), other, headlessSlice,
                              sliceYAML("web-1", service: "web", endpoints: ["{addresses: [10.0.0.1]}"])))
        #expect(r.diagnostics.isEmpty)
        #expect(r.plan.family(.ipv4)?.servicePorts.map(\.name.description) == ["default/web:http"])
        #expect(r.port("default/web:http")!.clusterEndpoints.strings == ["10.0.0.1:8080"])
    }
}

/// `--allow-external-ips=false`: the planner leaves every Service's `spec.externalIPs` out
/// (and says so once per Service); LoadBalancer ingress IPs stay.
@Suite struct ExternalIPsSwitchPlannerTests {
    var off: NodeOptions {
        var o = NodeOptions(nodeName: "node-a", nodeIPs: [ip("192.168.10.11")])
        o.allowExternalIPs = false
        return o
    }

    let lb = serviceYAML("lb", clusterIP: "10.96.0.1",
                         spec: ["type: LoadBalancer", "externalIPs: [198.51.100.1, 198.51.100.2]"],
                         ports: ["{name: http, port: 80, nodePort: 30080}"],
                         status: ["loadBalancer: {ingress: [{ip: 192.0.2.1}]}"])
    let onlyExternal = serviceYAML("ext", clusterIP: "10.96.0.2", spec: ["externalTrafficPolicy: Local", "externalIPs: [198.51.100.3]"])

    @Test func externalIPsAreLeftOutAndLoadBalancerIPsKept() {
        let r = planYAML(docs(lb, onlyExternal), options: off)
        let p = r.port("default/lb:http")!
        #expect(p.externalIPs.isEmpty)
        #expect(p.loadBalancerIPs == [ip("192.0.2.1")] && p.nodePort == 30080)
        #expect(r.port("default/ext:http")?.externalIPs == [])
        #expect(r.descriptions == [
            "Rulesets/test.yaml: Service default/lb: spec.externalIPs: 198.51.100.1, 198.51.100.2 ignored: --allow-external-ips=false",
            "Rulesets/test.yaml: Service default/ext: spec.externalIPs: 198.51.100.3 ignored: --allow-external-ips=false",
        ])
        #expect(r.diagnostics.allSatisfy { $0.severity == .warning })
    }

    @Test("a ClusterIP service reachable only through externalIPs is no longer externally accessible")
    func externalPolicyNeedsExternalAccess() {
        let r = planYAML(onlyExternal, options: off)
        #expect(r.port("default/ext:http")?.externalPolicyLocal == false)
        #expect(r.port("default/ext:http")?.externallyAccessible == false)
    }

    @Test("switched on, the plan is unchanged and nothing is reported")
    func onChangesNothing() {
        var on = off
        on.allowExternalIPs = true
        let r = planYAML(docs(lb, onlyExternal), options: on)
        #expect(r.diagnostics.isEmpty)
        #expect(r.port("default/lb:http")?.externalIPs == [ip("198.51.100.1"), ip("198.51.100.2")])
        #expect(r.plan == planYAML(docs(lb, onlyExternal)).plan)
    }

    @Test("invalid externalIP entries are not reported when externalIPs are off: they are ignored whole")
    func invalidEntriesAreNotValidated() {
        let bad = serviceYAML("bad", clusterIP: "10.96.0.3", spec: ["externalIPs: [not-an-ip]"])
        #expect(planYAML(bad, options: off).descriptions == [
            "Rulesets/test.yaml: Service default/bad: spec.externalIPs: not-an-ip ignored: --allow-external-ips=false",
        ])
    }
}
