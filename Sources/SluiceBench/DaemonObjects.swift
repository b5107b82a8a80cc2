import Foundation
import SluiceModel

/// The benchmark's cluster as Kubernetes API objects, for `sluice bench --daemon`: the same
/// services and addresses as `Generator` (see benchmarks/README.md), rendered as JSON (for
/// the fake API server and JSON manifests) or block YAML (manifest files).
///
/// - Service i: `bench/svc-<i>`, ClusterIP `Generator.clusterIP(i)`, port `http` 80/TCP → 8080.
/// - EndpointSlice `bench/svc-<i>-0`: E ready endpoints with `targetRef` and `nodeName`, and
///   a `last-change-trigger-time`, as the EndpointSlice controller writes them.
/// - Change c replaces one endpoint of a service with `10.192.0.0 + 1 + c`, so the change is
///   recognized in the kernel's element notifications (`changeID(inElementBytes:)`).
public struct DaemonCluster: Sendable {
    public let scale: Scale
    public static let namespace = "bench"
    public static let nodeName = "bench-node"
    public static let changeBase: UInt32 = 0x0AC0_0001   // 10.192.0.1
    public static let changeLimit: UInt32 = 1 << 22
    /// Current endpoint addresses of services that were changed.
    private var changed: [Int: [UInt32]] = [:]
    private var generation: [Int: Int] = [:]
    /// `last-change-trigger-time` of the slices that were changed: the time of their last change.
    private var changedAt: [Int: String] = [:]
    /// `last-change-trigger-time` of the slices that were not changed.
    private let createdAt = Self.triggerTime()
    public private(set) var nextChange = 0

    public init(scale: Scale) { self.scale = scale }

    /// The node an endpoint runs on, named as a cloud provider names nodes: longer than a
    /// Swift small string (15 bytes), so that a copy per endpoint costs what it costs on a
    /// real cluster.
    static func workerName(_ n: Int) -> String { "ip-10-0-\(n)-17.eu-west-1.compute.internal" }

    func endpoints(_ i: Int) -> [UInt32] {
        if let e = changed[i] { return e }
        return (0..<scale.endpoints).map { j in
            guard case .v4(let a) = Generator.endpoint(i, j, endpoints: scale.endpoints).ip else { return 0 }
            return a
        }
    }

    /// Replaces one endpoint of service i; returns the change's id.
    public mutating func change(service i: Int) -> Int {
        var e = endpoints(i)
        let id = nextChange
        nextChange += 1
        let g = generation[i, default: 0]
        generation[i] = g + 1
        if !e.isEmpty { e[g % e.count] = Self.changeBase &+ UInt32(id % Int(Self.changeLimit - 2)) }
        changed[i] = e
        changedAt[i] = Self.triggerTime()
        return id
    }

    /// The change id an element's key or data starts with, if it is a change address.
    public static func changeID(inElementBytes b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        let ip = UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])
        guard ip >= changeBase, ip < changeBase &+ changeLimit - 2 else { return nil }
        return Int(ip - changeBase)
    }

    /// `endpoints.kubernetes.io/last-change-trigger-time` as the EndpointSlice controller
    /// writes it on every slice: the time of the slice's last change (of the cluster's
    /// creation for a slice never changed), in seconds. A rewritten manifest file keeps the
    /// times of the slices it did not change, as `kubectl get -o yaml` would print them.
    func triggerTime(_ i: Int) -> String { changedAt[i] ?? createdAt }

    /// Now, as a trigger time.
    static func triggerTime() -> String {
        var t = time(nil)
        var c = tm()
        gmtime_r(&t, &c)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", c.tm_year + 1900, c.tm_mon + 1, c.tm_mday, c.tm_hour, c.tm_min, c.tm_sec)
    }

    static func dotted(_ a: UInt32) -> String { "\(a >> 24).\(a >> 16 & 255).\(a >> 8 & 255).\(a & 255)" }

    // MARK: JSON

    public func serviceJSON(_ i: Int) -> String {
        let ip = "\(Generator.clusterIP(i))"
        return #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"svc-\#(i)","namespace":"bench","labels":{"app":"svc-\#(i)"}},"#
            + #""spec":{"type":"ClusterIP","clusterIP":"\#(ip)","clusterIPs":["\#(ip)"],"ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","#
            + #""sessionAffinity":"None","internalTrafficPolicy":"Cluster","selector":{"app":"svc-\#(i)"},"#
            + #""ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080}]}}"#
    }

    public func sliceJSON(_ i: Int) -> String {
        let eps = endpoints(i).enumerated().map { j, a in
            #"{"addresses":["\#(Self.dotted(a))"],"conditions":{"ready":true,"serving":true,"terminating":false},"#
                + #""nodeName":"\#(Self.workerName((i + j) % 50))","targetRef":{"kind":"Pod","namespace":"bench","name":"svc-\#(i)-pod-\#(j)","#
                + #""uid":"\#(Self.uid(i, j))"}}"#
        }.joined(separator: ",")
        return #"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"svc-\#(i)-0","namespace":"bench","#
            + #""labels":{"kubernetes.io/service-name":"svc-\#(i)","endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io"},"#
            + #""annotations":{"endpoints.kubernetes.io/last-change-trigger-time":"\#(triggerTime(i))"}},"#
            + #""addressType":"IPv4","endpoints":[\#(eps)],"ports":[{"name":"http","protocol":"TCP","port":8080}]}"#
    }

    static func uid(_ i: Int, _ j: Int) -> String {
        let h = String(i * 64 + j, radix: 16)
        return "b0000000-0000-4000-8000-" + String(repeating: "0", count: max(0, 12 - h.count)) + h
    }

    public static let nodeJSON = #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"bench-node","labels":{"kubernetes.io/hostname":"bench-node"}},"#
        + #""spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24"]},"#
        + #""status":{"addresses":[{"type":"InternalIP","address":"10.200.1.1"},{"type":"Hostname","address":"bench-node"}]}}"#

    public static let serviceCIDRJSON = #"{"apiVersion":"networking.k8s.io/v1","kind":"ServiceCIDR","metadata":{"name":"kubernetes"},"spec":{"cidrs":["10.96.0.0/12"]}}"#

    // MARK: YAML (manifest files)

    public func serviceYAML(_ i: Int) -> String {
        let ip = "\(Generator.clusterIP(i))"
        return """
        apiVersion: v1
        kind: Service
        metadata:
          name: svc-\(i)
          namespace: bench
          labels:
            app: svc-\(i)
        spec:
          type: ClusterIP
          clusterIP: \(ip)
          clusterIPs:
          - \(ip)
          ipFamilies:
          - IPv4
          selector:
            app: svc-\(i)
          ports:
          - name: http
            protocol: TCP
            port: 80
            targetPort: 8080

        """
    }

    public func sliceYAML(_ i: Int) -> String {
        var s = """
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: svc-\(i)-0
          namespace: bench
          labels:
            kubernetes.io/service-name: svc-\(i)
            endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
          annotations:
            endpoints.kubernetes.io/last-change-trigger-time: "\(triggerTime(i))"
        addressType: IPv4
        ports:
        - name: http
          protocol: TCP
          port: 8080
        endpoints:

        """
        for (j, a) in endpoints(i).enumerated() {
            s += """
            - addresses:
              - \(Self.dotted(a))
              conditions:
                ready: true
                serving: true
                terminating: false
              nodeName: \(Self.workerName((i + j) % 50))
              targetRef:
                kind: Pod
                namespace: bench
                name: svc-\(i)-pod-\(j)
                uid: \(Self.uid(i, j))

            """
        }
        return s
    }

    public static let nodeYAML = """
    apiVersion: v1
    kind: Node
    metadata:
      name: bench-node
    spec:
      podCIDR: 10.244.1.0/24
    status:
      addresses:
      - type: InternalIP
        address: 10.200.1.1
    ---
    apiVersion: networking.k8s.io/v1
    kind: ServiceCIDR
    metadata:
      name: kubernetes
    spec:
      cidrs:
      - 10.96.0.0/12

    """
}

/// The watched directory of `sluice run --source DIR`: one file per 500 services (each
/// Service and its EndpointSlice), plus one for the Node and ServiceCIDR.
public struct ManifestFiles: Sendable {
    public let dir: String
    public let json: Bool
    public static let servicesPerFile = 500

    public init(dir: String, json: Bool) {
        self.dir = dir
        self.json = json
    }

    func path(_ file: Int) -> String { "\(dir)/services-\(String(format: "%05d", file)).\(json ? "json" : "yaml")" }

    /// Writes every file.
    public func writeAll(_ cluster: DaemonCluster) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try write("\(dir)/node.yaml", DaemonCluster.nodeYAML)
        let files = (cluster.scale.services + Self.servicesPerFile - 1) / Self.servicesPerFile
        for f in 0..<files { try writeFile(f, cluster) }
    }

    /// Rewrites the file holding service i (write to a hidden temporary file, then rename).
    public func rewrite(service i: Int, _ cluster: DaemonCluster) throws {
        try writeFile(i / Self.servicesPerFile, cluster)
    }

    func writeFile(_ f: Int, _ cluster: DaemonCluster) throws {
        let range = (f * Self.servicesPerFile)..<min(cluster.scale.services, (f + 1) * Self.servicesPerFile)
        let text: String
        if json {
            let items = range.map { cluster.serviceJSON($0) + "," + cluster.sliceJSON($0) }.joined(separator: ",")
            text = #"{"apiVersion":"v1","kind":"List","items":["# + items + "]}"
        } else {
            text = range.map { cluster.serviceYAML($0) + "---\n" + cluster.sliceYAML($0) }.joined(separator: "---\n")
        }
        try write(path(f), text)
    }

    func write(_ path: String, _ text: String) throws {
        let tmp = "\(dir)/.tmp-\(randomTag(8))"
        try Data(text.utf8).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else { throw BenchError("rename \(tmp) → \(path): errno \(errno)") }
    }
}
