import Foundation
import SluiceEmit
import SluiceModel
import Testing

@Suite("iptables chain names")
struct IptablesNamesTests {
    @Test("base32 matches RFC 4648 test vectors")
    func base32Vectors() {
        let vectors = [
            ("", ""), ("f", "MY======"), ("fo", "MZXQ===="), ("foo", "MZXW6==="),
            ("foob", "MZXW6YQ="), ("fooba", "MZXW6YTB"), ("foobar", "MZXW6YTBOI======"),
        ]
        for (input, expected) in vectors {
            #expect(base32Encode(Array(input.utf8)) == expected)
        }
    }

    /// Expected names from upstream `TestOverallIPTablesRules` (all TCP, port name p80).
    @Test("service chain names equal upstream's")
    func serviceChains() {
        let expected = [
            ("ns1", "svc1", "XPGD46QRK7WJZT7O"),
            ("ns2", "svc2", "GNZBNJ2PO5MGZ6GT"),
            ("ns3", "svc3", "X27LE4BHSL4DOUIK"),
            ("ns4", "svc4", "4SW47YFZTEDKD3PK"),
            ("ns5", "svc5", "NUKIZ6OKUXPJNT4C"),
        ]
        for (ns, svc, hash) in expected {
            let n = IptFix.name(ns, svc)
            #expect(IptablesChainName.clusterPolicy(n) == "KUBE-SVC-\(hash)")
            #expect(IptablesChainName.localPolicy(n) == "KUBE-SVL-\(hash)")
            #expect(IptablesChainName.external(n) == "KUBE-EXT-\(hash)")
            #expect(IptablesChainName.firewall(n) == "KUBE-FW-\(hash)")
        }
        #expect(IptablesChainName.portProtoHash("ns1/svc1:p80", "tcp") == "XPGD46QRK7WJZT7O")
    }

    @Test("endpoint chain names equal upstream's")
    func endpointChains() {
        let expected = [
            ("ns1", "svc1", "10.180.0.1", "KUBE-SEP-SXIVWICOYRO3J4NJ"),
            ("ns2", "svc2", "10.180.0.2", "KUBE-SEP-RS4RBKLTHTF2IUXJ"),
            ("ns3", "svc3", "10.180.0.3", "KUBE-SEP-OYPFS5VJICHGATKP"),
            ("ns4", "svc4", "10.180.0.4", "KUBE-SEP-UKSFD7AGPMPPLUHC"),
            ("ns4", "svc4", "10.180.0.5", "KUBE-SEP-C6EBXVWJJZMIWKLZ"),
            ("ns5", "svc5", "10.180.0.3", "KUBE-SEP-I77PXRDZVX7PMWMN"),
        ]
        for (ns, svc, ip, chain) in expected {
            #expect(IptablesChainName.endpoint(IptFix.name(ns, svc), IptFix.ep(ip)) == chain)
        }
    }

    /// Unnamed ports hash `ns/svc` + proto; IPv6 endpoints hash `[ip]:port` (values from an
    /// independent sha256 + base32 computation).
    @Test("unnamed ports, other protocols and IPv6 endpoints")
    func otherForms() {
        #expect(IptablesChainName.clusterPolicy(IptFix.name("ns1", "svc1", "", .udp)) == "KUBE-SVC-A2PEVXD55OHK2IVW")
        #expect(IptablesChainName.endpoint(IptFix.name("ns1", "svc1"), IptFix.ep("fd00::1")) == "KUBE-SEP-T5UNFIPVCZXM3U7X")
        // Protocol is part of the hash.
        #expect(IptablesChainName.clusterPolicy(IptFix.name("ns1", "svc1", "p80", .udp))
                != IptablesChainName.clusterPolicy(IptFix.name("ns1", "svc1", "p80", .tcp)))
        // All names fit iptables' 28-character limit.
        let n = IptFix.name("a-very-long-namespace-name", "a-very-long-service-name", "https", .sctp)
        for chain in [IptablesChainName.clusterPolicy(n), IptablesChainName.firewall(n), IptablesChainName.external(n),
                      IptablesChainName.endpoint(n, IptFix.ep("fd00::1234:5678", 65535))] {
            #expect(chain.count <= 28)
        }
    }
}

@Suite("iptables probability cascade")
struct IptablesCascadeTests {
    /// Parses the strings back and multiplies out the chance of each endpoint.
    static func shares(_ probabilities: [String], count: Int) -> [Double] {
        var reach = 1.0
        var out: [Double] = []
        for i in 0..<count {
            let p = i < probabilities.count ? Double(probabilities[i])! : 1.0
            out.append(reach * p)
            reach *= 1 - p
        }
        return out
    }

    @Test("equal weights give upstream's 1/(n-i) strings")
    func equalWeights() {
        #expect(IptablesCascade.probabilities(weights: [1, 1]) == ["0.5000000000"])
        #expect(IptablesCascade.probabilities(weights: [1, 1, 1]) == ["0.3333333333", "0.5000000000"])
        #expect(IptablesCascade.probabilities(weights: [7, 7, 7, 7]) == ["0.2500000000", "0.3333333333", "0.5000000000"])
        for n in 2...200 {
            let probs = IptablesCascade.probabilities(weights: Array(repeating: 3, count: n))
            #expect(probs.count == n - 1)
            for (i, p) in probs.enumerated() {
                #expect(p == String(format: "%0.10f", 1.0 / Double(n - i)), "n=\(n) i=\(i)")
            }
        }
        #expect(IptablesCascade.probabilities(weights: Array(repeating: 1, count: 7)).first == "0.1428571429")
    }

    @Test("unequal weights reproduce w_i / Σw")
    func unequalWeights() {
        let cases: [[UInt32]] = [[1, 2], [3, 1, 1], [1, 2, 3, 4], [1000, 1, 1, 1000], [5, 10, 20, 40, 80, 160, 1],
                                 [1, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]]
        for weights in cases {
            let probs = IptablesCascade.probabilities(weights: weights)
            #expect(probs.count == weights.count - 1)
            let total = Double(weights.reduce(0, +))
            for (i, share) in Self.shares(probs, count: weights.count).enumerated() {
                #expect(abs(share - Double(weights[i]) / total) < 1e-9, "weights \(weights) endpoint \(i)")
            }
        }
        #expect(IptablesCascade.probabilities(weights: [1, 3]) == ["0.2500000000"])
        #expect(IptablesCascade.probabilities(weights: [3, 1, 1]) == ["0.6000000000", "0.5000000000"])
    }

    @Test("one endpoint is unconditional; none gives nothing")
    func degenerate() {
        #expect(IptablesCascade.probabilities(weights: [5]).isEmpty)
        #expect(IptablesCascade.probabilities(weights: []).isEmpty)
    }

    @Test("formatting equals C's %0.10f, including ties and tiny values")
    func formatting() {
        var values: [Double] = [0, 1, 0.5, 0.25, 1e-11, 5e-11, 4.9999999999e-11, 0.00000000005, 0.99999999995,
                                0.12345678905, 2.5e-10, 1.0 / 3, 2.0 / 3]
        for n in 1...300 { values.append(1.0 / Double(n)) }
        for a in 1...40 { for b in a...60 { values.append(Double(a) / Double(b)) } }
        for v in values {
            #expect(IptablesCascade.formatProbability(v) == String(format: "%0.10f", v), "\(v)")
        }
    }
}
