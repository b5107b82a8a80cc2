import SluiceModel
import SluiceCompiler

/// One benchmark scale: `services` ClusterIP service ports × `endpoints` endpoints each.
public struct Scale: Sendable, Hashable, Codable, CustomStringConvertible {
    public var services: Int
    public var endpoints: Int
    public init(services: Int, endpoints: Int) {
        self.services = services
        self.endpoints = endpoints
    }
    public var totalEndpoints: Int { services * endpoints }
    public var description: String { "\(Scale.short(services))×\(endpoints)" }
    public var id: String { "\(services)x\(endpoints)" }

    static func short(_ n: Int) -> String {
        if n >= 1000 && n % 1000 == 0 { return "\(n / 1000)k" }
        return "\(n)"
    }

    /// The scales: {1k, 10k, 100k} × 10, 50k × 1, 5k × 50.
    public static let standard: [Scale] = [
        Scale(services: 1000, endpoints: 10), Scale(services: 10000, endpoints: 10),
        Scale(services: 100_000, endpoints: 10), Scale(services: 50000, endpoints: 1),
        Scale(services: 5000, endpoints: 50),
    ]
}

/// Addresses and names used by generated services (see benchmarks/README.md).
///
/// - ClusterIP of service i: 10.96.0.0 + 1 + i (ServiceCIDR 10.96.0.0/12), port 80/TCP.
/// - Endpoint j of service i: 10.128.0.0 + 1 + i·E + j, port 8080. Replacement endpoints
///   alternate with 10.192.0.0 + 1 + i·E + j and take a new port each time.
/// - Added services: ClusterIP 10.110.0.0 + 1 + k, endpoints 10.190.0.0 + 1 + k·E + j.
/// - Service 0 is the probe for the connection test and is never changed; its endpoints
///   are added to the server namespace.
public enum Generator {
    public static let serviceCIDR = CIDR("10.96.0.0/12")!
    public static let podCIDR = CIDR("10.244.0.0/16")!
    static let clusterBase: UInt32 = 0x0A60_0000    // 10.96.0.0
    static let addedClusterBase: UInt32 = 0x0A6E_0000 // 10.110.0.0
    static let endpointBase: UInt32 = 0x0A80_0000   // 10.128.0.0
    static let altEndpointBase: UInt32 = 0x0AC0_0000 // 10.192.0.0
    static let addedEndpointBase: UInt32 = 0x0ABE_0000 // 10.190.0.0
    static let extraEndpointBase: UInt32 = 0x0ABF_0000 // 10.191.0.0
    public static let endpointPort: UInt16 = 8080
    public static let servicePort: UInt16 = 80

    /// Node side of the bench topology.
    public static let nodeIP = IPAddress("10.200.1.1")!

    public static func context() -> FamilyContext {
        FamilyContext(family: .ipv4, nodeName: "bench-node", localDetector: .cidrs([podCIDR]),
                      nodePortAddresses: .ips([nodeIP]), nodeIPs: [nodeIP], serviceCIDRs: [serviceCIDR])
    }

    public static func name(_ i: Int) -> ServicePortName {
        ServicePortName(service: ServiceName(namespace: "bench", name: "svc-\(i)"), port: "http", proto: .tcp)
    }

    public static func addedName(_ k: Int) -> ServicePortName {
        ServicePortName(service: ServiceName(namespace: "bench", name: "added-\(k)"), port: "http", proto: .tcp)
    }

    public static func clusterIP(_ i: Int) -> IPAddress { .v4(clusterBase &+ 1 &+ UInt32(i)) }

    public static func endpoint(_ i: Int, _ j: Int, endpoints e: Int) -> WeightedEndpoint {
        WeightedEndpoint(ip: .v4(endpointBase &+ 1 &+ UInt32(i * e + j)), port: endpointPort)
    }

    public static func plan(_ name: ServicePortName, clusterIP: IPAddress, endpoints: [WeightedEndpoint]) -> ServicePortPlan {
        ServicePortPlan(name: name, family: .ipv4, clusterIP: clusterIP, port: servicePort, clusterEndpoints: endpoints)
    }

    public static func service(_ i: Int, endpoints e: Int) -> ServicePortPlan {
        plan(name(i), clusterIP: clusterIP(i), endpoints: (0..<e).map { endpoint(i, $0, endpoints: e) })
    }

    public static func services(_ scale: Scale) -> [ServicePortPlan] {
        (0..<scale.services).map { service($0, endpoints: scale.endpoints) }
    }

    /// Endpoint addresses of the probe service (service 0).
    public static func probeEndpoints(_ scale: Scale) -> [IPAddress] {
        (0..<scale.endpoints).map { endpoint(0, $0, endpoints: scale.endpoints).ip }
    }

    /// A new service `added-k` with `e` endpoints.
    public static func addedService(_ k: Int, endpoints e: Int) -> ServicePortPlan {
        plan(addedName(k), clusterIP: .v4(addedClusterBase &+ 1 &+ UInt32(k % 60000)),
             endpoints: (0..<e).map { WeightedEndpoint(ip: .v4(addedEndpointBase &+ 1 &+ UInt32((k % 6000) * e + $0)), port: endpointPort) })
    }

    /// The extra endpoint a scale-up adds to service i.
    public static func extraEndpoint(_ i: Int) -> WeightedEndpoint {
        WeightedEndpoint(ip: .v4(extraEndpointBase &+ 1 &+ UInt32(i % 60000)), port: endpointPort)
    }

    /// Replacement for endpoint j of service i at generation g: alternate address range,
    /// a port that changes with every generation.
    public static func replacement(_ i: Int, _ j: Int, generation g: Int, endpoints e: Int) -> WeightedEndpoint {
        let base = g % 2 == 0 ? altEndpointBase : endpointBase
        return WeightedEndpoint(ip: .v4(base &+ 1 &+ UInt32((i * e + j) % 0x3F_FFFF)), port: UInt16(8081 + g % 20000))
    }

    /// The k-th service chosen for a change (never service 0, the probe).
    public static func pick(_ k: Int, services s: Int) -> Int {
        s <= 1 ? 0 : 1 + Int((UInt64(k) &* 2_654_435_761) % UInt64(s - 1))
    }
}

/// The service set as a daemon holds it, with helpers that produce the changes the
/// benchmark applies.
public struct ServiceState: Sendable {
    public let scale: Scale
    /// Dense (`PlanStore`): the harness's own copy of the service set should not outweigh
    /// Sluice's in the worker's peak RSS.
    public private(set) var plans: PlanStore
    private var generation: [Int: Int] = [:]
    private var counter = 0

    public init(scale: Scale) {
        self.scale = scale
        var d = PlanStore()
        d.reserve(scale.services)
        for p in Generator.services(scale) { d[p.name] = p }
        plans = d
    }

    public typealias Changes = [ServicePortName: ServicePortPlan?]

    /// Every service port plan (in no particular order).
    public var allPlans: ContiguousArray<ServicePortPlan> { plans.items }

    /// Replaces one endpoint of a changing service.
    public mutating func endpointChange() -> Changes {
        counter += 1
        let i = Generator.pick(counter, services: scale.services)
        return endpointChange(service: i)
    }

    public mutating func endpointChange(service i: Int) -> Changes {
        let name = Generator.name(i)
        guard var p = plans[name], !p.clusterEndpoints.isEmpty else { return [:] }
        let g = generation[i, default: 0] + 1
        generation[i] = g
        let j = g % p.clusterEndpoints.count
        p.clusterEndpoints[j] = Generator.replacement(i, j, generation: g, endpoints: scale.endpoints)
        plans[name] = p
        return [name: p]
    }

    public mutating func apply(_ changes: Changes) {
        for (k, v) in changes { plans[k] = v }
    }

    /// A new service (`added-k`).
    public func addService(_ k: Int) -> Changes {
        let p = Generator.addedService(k, endpoints: scale.endpoints)
        return [p.name: p]
    }

    public func deleteService(_ k: Int) -> Changes {
        let none: ServicePortPlan? = nil
        return [Generator.addedName(k): none]
    }

    /// One more endpoint on service i (and the change back).
    public func scaleUp(_ i: Int) -> Changes {
        var p = plans[Generator.name(i)]!
        p.clusterEndpoints.append(Generator.extraEndpoint(i))
        return [p.name: p]
    }

    public func scaleDown(_ i: Int) -> Changes {
        let p = plans[Generator.name(i)]!
        return [p.name: p]
    }
}
