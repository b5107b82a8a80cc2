import SluiceModel

/// Hand-built plans for compiler tests (the manifest loader is tested elsewhere).
enum Fixtures {
    static func ip(_ s: String) -> IPAddress { IPAddress(s)! }
    static func cidr(_ s: String) -> CIDR { CIDR(s)! }
    static func ep(_ s: String, _ port: UInt16 = 80, weight: UInt32 = 1) -> WeightedEndpoint {
        WeightedEndpoint(ip: ip(s), port: port, weight: weight)
    }
    static func name(_ ns: String, _ svc: String, _ port: String = "p80", _ proto: L4Protocol = .tcp) -> ServicePortName {
        ServicePortName(service: ServiceName(namespace: ns, name: svc), port: port, proto: proto)
    }

    static var context: FamilyContext {
        FamilyContext(family: .ipv4, nodeName: "node1", localDetector: .cidrs([cidr("10.0.0.0/8")]),
                      nodePortAddresses: .ips([ip("192.168.0.2")]), nodeIPs: [ip("192.168.0.2")],
                      serviceCIDRs: [cidr("172.30.0.0/16")])
    }

    /// kube-proxy's TestOverallNFTablesRules fixture (reference §1.6).
    static var overall: FamilyPlan {
        FamilyPlan(context: context, servicePorts: [
            ServicePortPlan(name: name("ns1", "svc1"), family: .ipv4, clusterIP: ip("172.30.0.41"), port: 80,
                            clusterEndpoints: [ep("10.180.0.1")]),
            ServicePortPlan(name: name("ns2", "svc2"), family: .ipv4, clusterIP: ip("172.30.0.42"), port: 80, nodePort: 3001,
                            externalIPs: [ip("192.168.99.22")], loadBalancerIPs: [ip("1.2.3.4")], externalPolicyLocal: true,
                            healthCheckNodePort: 30000, clusterEndpoints: [ep("10.180.0.2")], localEndpoints: []),
            ServicePortPlan(name: name("ns3", "svc3"), family: .ipv4, clusterIP: ip("172.30.0.43"), port: 80, nodePort: 3003,
                            clusterEndpoints: [ep("10.180.0.3")]),
            ServicePortPlan(name: name("ns4", "svc4"), family: .ipv4, clusterIP: ip("172.30.0.44"), port: 80,
                            externalIPs: [ip("192.168.99.33")], clusterEndpoints: [ep("10.180.0.4"), ep("10.180.0.5")],
                            localEndpoints: [ep("10.180.0.5")]),
            ServicePortPlan(name: name("ns5", "svc5"), family: .ipv4, clusterIP: ip("172.30.0.45"), port: 80, nodePort: 3002,
                            loadBalancerIPs: [ip("5.6.7.8")], loadBalancerSourceRanges: [cidr("203.0.113.0/25")],
                            affinityTimeoutSeconds: 10800, clusterEndpoints: [ep("10.180.0.3")]),
            ServicePortPlan(name: name("ns6", "svc6"), family: .ipv4, clusterIP: ip("172.30.0.46"), port: 80),
        ])
    }
}
