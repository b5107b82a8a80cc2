/// How a new connection to a service port picks its endpoint: the Service annotation
/// `sluice.dev/load-balancing`. Weights (`sluice.dev/weight`) apply to every mode.
public enum LoadBalancing: String, Sendable, Hashable, Codable, CaseIterable {
    /// A uniform (or weighted) random draw per connection: kube-proxy's behaviour.
    case random
    /// The endpoint is a function of the client address alone (IPVS `sh`): every connection
    /// of a client lands on the same endpoint while the endpoint set stays the same.
    case sourceHash = "source-hash"
    /// A Maglev slot table indexed by a hash of the client address and port: every node with
    /// the same endpoint set picks the same endpoint for a flow (IPVS `mh`), and when one of
    /// N endpoints leaves only about 1/N of flows move.
    case consistentHash = "consistent-hash"
}
