import Foundation
import SluiceKube
import SluiceKubeFake
import SluiceModel
import Testing

/// A temporary directory removed at the end of the test.
final class TempDir {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-kube-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    var path: String { url.path }

    @discardableResult
    func write(_ relative: String, _ text: String) throws -> String {
        let p = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: p.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: p, atomically: true, encoding: .utf8)
        return p.path
    }
}

func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

func kubeconfig(cluster: String, user: String, server: String = "https://127.0.0.1:6443") -> String {
    """
    apiVersion: v1
    kind: Config
    current-context: default
    contexts:
    - name: default
      context: {cluster: c1, user: u1, namespace: default}
    - name: other
      context: {cluster: c2, user: u1}
    clusters:
    - name: c1
      cluster:
        server: \(server)
    \(cluster.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
    - name: c2
      cluster:
        server: https://other.example:443
        insecure-skip-tls-verify: true
    users:
    - name: u1
      user:
    \(user.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
    """
}

@Suite("kubeconfig and in-cluster configuration", .timeLimit(.minutes(3)))
struct KubeconfigTests {
    @Test("kubeadm's kube-proxy kubeconfig: CA path and tokenFile")
    func kubeadmShape() throws {
        let dir = try TempDir()
        try dir.write("pki/ca.crt", TestPKI.caCrt)
        try dir.write("sa/token", "abc\n")
        let path = try dir.write("kubeconfig.conf", kubeconfig(cluster: "certificate-authority: pki/ca.crt", user: "tokenFile: sa/token"))
        let c = try KubeClientConfiguration.fromKubeconfig(path: path)
        #expect(c.server == "https://127.0.0.1:6443")
        #expect(c.certificateAuthorityPEM == Array(TestPKI.caCrt.utf8))
        #expect(c.tokenSource?.origin == .file(dir.path + "/sa/token"))
        #expect(try c.tokenSource?.token() == "abc")
        #expect(!c.insecureSkipTLSVerify)
    }

    @Test("*-data wins over paths; token wins over tokenFile; tls-server-name; --master overrides server")
    func precedence() throws {
        let dir = try TempDir()
        try dir.write("other.crt", TestPKI.otherCaCrt)
        let path = try dir.write("kc", kubeconfig(
            cluster: "certificate-authority: other.crt\ncertificate-authority-data: \(b64(TestPKI.caCrt))\ntls-server-name: kubernetes.default.svc",
            user: "token: inline\ntokenFile: /nonexistent\nclient-certificate: /nonexistent.crt\nclient-certificate-data: \(b64(TestPKI.clientEcCrt))\nclient-key-data: \(b64(TestPKI.clientEcSec1Key))"))
        let c = try KubeClientConfiguration.fromKubeconfig(path: path, masterOverride: "https://10.0.0.1:6443")
        #expect(c.server == "https://10.0.0.1:6443")
        #expect(c.certificateAuthorityPEM == Array(TestPKI.caCrt.utf8))
        #expect(c.tlsServerName == "kubernetes.default.svc")
        #expect(c.tokenSource?.origin == .fixed("inline"))
        #expect(c.clientCertificatePEM == Array(TestPKI.clientEcCrt.utf8))
        #expect(c.clientKeyPEM == Array(TestPKI.clientEcSec1Key.utf8))
        // Another context, by name.
        let other = try KubeClientConfiguration.fromKubeconfig(path: path, context: "other")
        #expect(other.server == "https://other.example:443")
        #expect(other.insecureSkipTLSVerify)
    }

    @Test("client key encodings: PKCS#1, PKCS#8, SEC1")
    func keyEncodings() throws {
        for (cert, key) in [(TestPKI.clientRsaCrt, TestPKI.clientRsaPkcs1Key), (TestPKI.clientRsaCrt, TestPKI.clientRsaPkcs8Key),
                            (TestPKI.clientEcCrt, TestPKI.clientEcSec1Key)] {
            let dir = try TempDir()
            try dir.write("client.crt", cert)
            try dir.write("client.key", key)
            let path = try dir.write("kc", kubeconfig(cluster: "certificate-authority-data: \(b64(TestPKI.caCrt))",
                                                      user: "client-certificate: client.crt\nclient-key: client.key"))
            let c = try KubeClientConfiguration.fromKubeconfig(path: path)
            #expect(c.clientKeyPEM == Array(key.utf8))
            _ = try c.makeTLSConfiguration()
        }
    }

    @Test("JSON kubeconfig is accepted")
    func jsonKubeconfig() async throws {
        let dir = try TempDir()
        let json = #"{"apiVersion":"v1","kind":"Config","current-context":"x","contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],"clusters":[{"name":"c","cluster":{"server":"https://[fd00::1]:6443","insecure-skip-tls-verify":true}}],"users":[{"name":"u","user":{"token":"t"}}]}"#
        let c = try KubeClientConfiguration.fromKubeconfig(path: try dir.write("kc.json", json))
        #expect(c.server == "https://[fd00::1]:6443")
        #expect(c.insecureSkipTLSVerify)
        #expect(c.tokenSource?.origin == .fixed("t"))
        let client = try KubeAPIClient(configuration: c)   // the IPv6 URL is usable (no connection is made)
        try await client.shutdown()
    }

    @Test("unsupported credentials are rejected with a clear error", arguments: [
        ("exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: aws", "exec credential plugin"),
        ("auth-provider:\n  name: gcp", "auth-provider"),
        ("username: admin\npassword: secret", "username/password"),
    ])
    func unsupportedCredentials(user: String, expected: String) throws {
        let dir = try TempDir()
        let path = try dir.write("kc", kubeconfig(cluster: "insecure-skip-tls-verify: true", user: user))
        #expect {
            try KubeClientConfiguration.fromKubeconfig(path: path)
        } throws: { error in
            guard let e = error as? KubeConfigError, case .unsupported(let m) = e else { return false }
            return m.contains(expected)
        }
    }

    @Test("broken kubeconfigs: missing context, cluster, key without cert, bad base64, bad PEM, CA with insecure")
    func invalidKubeconfigs() throws {
        let dir = try TempDir()
        let cases: [String] = [
            "apiVersion: v1\nkind: Config\nclusters: []\n",
            kubeconfig(cluster: "insecure-skip-tls-verify: true", user: "client-key-data: \(b64(TestPKI.clientEcSec1Key))"),
            kubeconfig(cluster: "certificate-authority-data: '***'", user: "token: x"),
            kubeconfig(cluster: "certificate-authority-data: \(b64("not a pem"))", user: "token: x"),
            kubeconfig(cluster: "insecure-skip-tls-verify: true\ncertificate-authority-data: \(b64(TestPKI.caCrt))", user: "token: x"),
            kubeconfig(cluster: "certificate-authority: missing.crt", user: "token: x"),
        ]
        for (i, text) in cases.enumerated() {
            let path = try dir.write("kc\(i)", text)
            #expect(throws: KubeConfigError.self, "case \(i)") { try KubeClientConfiguration.fromKubeconfig(path: path) }
        }
    }

    /// Bad input never takes a node down: a kubeconfig naming a FIFO (whose open would wait
    /// for a writer), a device that never ends, a directory or an oversized file as its CA or
    /// token gets a clear error, at once.
    @Test("files a kubeconfig names must be regular files of at most 4 MiB", arguments: ["fifo", "/dev/zero", "dir", "huge"])
    func refusesNonRegularOrHugeFiles(_ kind: String) throws {
        let dir = try TempDir()
        let path: String
        switch kind {
        case "fifo":
            path = dir.path + "/ca.fifo"
            try #require(mkfifo(path, 0o600) == 0)
        case "dir":
            path = dir.path + "/ca.d"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        case "huge":
            path = try dir.write("ca.crt", String(repeating: "A", count: KubeClientConfiguration.maxFileBytes + 1))
        default:
            path = kind
        }
        for (cluster, user) in [("certificate-authority: \(path)", "token: abc"), ("insecure-skip-tls-verify: true", "tokenFile: \(path)")] {
            let config = try dir.write("kubeconfig-\(kind).conf", kubeconfig(cluster: cluster, user: user))
            do {
                let c = try KubeClientConfiguration.fromKubeconfig(path: config)
                _ = try c.tokenSource?.token()
                Issue.record("\(kind) as \(cluster) / \(user) was accepted")
            } catch let e as KubeConfigError {
                let text = "\(e)"
                #expect(text.contains(path) && (text.contains("not a regular file") || text.contains("more than")), "\(text)")
            }
        }
    }

    @Test("in-cluster: env vars, IPv6 brackets, token and CA files; kube-proxy's choice")
    func inCluster() throws {
        let dir = try TempDir()
        let token = try dir.write("token", "sa-token")
        let ca = try dir.write("ca.crt", TestPKI.caCrt)
        let c = try KubeClientConfiguration.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "443"], tokenPath: token, caPath: ca)
        #expect(c.server == "https://[fd00:10:96::1]:443")
        #expect(try c.tokenSource?.token() == "sa-token")
        #expect(c.certificateAuthorityPEM == Array(TestPKI.caCrt.utf8))
        let v4 = try KubeClientConfiguration.forKubeProxy(kubeconfig: nil, master: nil,
            environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"], tokenPath: token, caPath: ca)
        #expect(v4.server == "https://10.96.0.1:443")
        #expect(throws: KubeConfigError.notInCluster) {
            try KubeClientConfiguration.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1"], tokenPath: token, caPath: ca)
        }
        let masterOnly = try KubeClientConfiguration.forKubeProxy(kubeconfig: nil, master: "http://127.0.0.1:8080", environment: [:])
        #expect(masterOnly.server == "http://127.0.0.1:8080" && masterOnly.tokenSource == nil)
    }

    @Test("token file re-read after the recheck interval, not before")
    func tokenFileRecheck() async throws {
        let dir = try TempDir()
        let path = try dir.write("token", "one")
        let interval = Duration.seconds(1)
        let source = TokenSource(.file(path), recheckInterval: interval)
        let firstRead = ContinuousClock.now   // no later than the source's own check
        #expect(try source.token() == "one")
        try dir.write("token", "two-longer")
        let cached = try source.token()
        // Within the interval the cached token must come back. Whether we still are within it
        // depends on how fast this machine ran the lines above, so only then is it asserted.
        if ContinuousClock.now - firstRead < interval {
            #expect(cached == "one")   // within the interval: cached
        }
        // The interval has passed since the last check (a sleep is a lower bound on time).
        try await Task.sleep(for: interval + .milliseconds(50))
        #expect(try source.token() == "two-longer")
        try dir.write("token", "three-even-longer")
        source.invalidate()                        // what a 401 does
        #expect(try source.token() == "three-even-longer")
    }
}

@Suite("TLS against the fake", .timeLimit(.minutes(3)))
struct TLSTests {
    static func tlsFake(_ config: inout FakeAPIServer.Configuration) {
        config.tls = FakeAPIServer.TLS(certificateChainPEM: Array(TestPKI.serverCrt.utf8), privateKeyPEM: Array(TestPKI.serverKey.utf8),
                                       clientCAPEM: Array(TestPKI.caCrt.utf8))
        config.requireAuthentication = true
        config.acceptedTokens = ["tls-token"]
    }

    @Test("client certificate auth (PKCS#1, PKCS#8, SEC1 keys) with the test CA, from a kubeconfig", arguments: [
        (TestPKI.clientRsaCrt, TestPKI.clientRsaPkcs1Key), (TestPKI.clientRsaCrt, TestPKI.clientRsaPkcs8Key),
        (TestPKI.clientEcCrt, TestPKI.clientEcSec1Key),
    ])
    func clientCertificate(cert: String, key: String) async throws {
        try await withFake(Self.tlsFake) { server in
            try server.create(service("a"))
            let dir = try TempDir()
            try dir.write("ca.crt", TestPKI.caCrt)
            let path = try dir.write("kc", kubeconfig(
                cluster: "certificate-authority: ca.crt",
                user: "client-certificate-data: \(b64(cert))\nclient-key-data: \(b64(key))", server: server.url))
            let client = try KubeAPIClient(configuration: try KubeClientConfiguration.fromKubeconfig(path: path))
            let h = Harness(client: client, resource: .services())
            try await h.waitConverged(with: server)
            try server.update(service("a", port: 9))
            try await h.waitConverged(with: server)
            #expect(server.requests.allSatisfy { $0.clientCertificate && $0.authorization == nil && $0.status == 200 })
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("tls-server-name: a certificate for kubernetes.default.svc only, reached at 127.0.0.1")
    func tokenWithServerName() async throws {
        try await withFake({ c in
            Self.tlsFake(&c)
            c.tls?.certificateChainPEM = Array(TestPKI.serverDnsOnlyCrt.utf8)
        }) { server in
            // Without tls-server-name (or with a wrong one) the certificate does not match 127.0.0.1.
            for name in [nil, "wrong.example"] as [String?] {
                let client = try KubeAPIClient(configuration: KubeClientConfiguration(
                    server: server.url, certificateAuthorityPEM: Array(TestPKI.caCrt.utf8), tlsServerName: name,
                    tokenSource: TokenSource(.fixed("tls-token"))), connectTimeout: .milliseconds(500))
                await #expect(throws: KubeAPIError.self, "\(name ?? "no tls-server-name")") {
                    let _: KubeAPIClient.ListPage<Service> = try await client.listPage(.services(), resourceVersion: "0", limit: 500, continueToken: nil)
                }
                try await client.shutdown()
            }
            #expect(server.requests.isEmpty)
            try server.create(service("a"))
            let dir = try TempDir()
            let path = try dir.write("kc", kubeconfig(
                cluster: "certificate-authority-data: \(b64(TestPKI.caCrt))\ntls-server-name: kubernetes.default.svc",
                user: "token: tls-token", server: server.url))
            let client = try KubeAPIClient(configuration: try KubeClientConfiguration.fromKubeconfig(path: path))
            let h = Harness(client: client, resource: .services())
            try await h.waitConverged(with: server)
            #expect(server.requests.allSatisfy { !$0.clientCertificate && $0.authorization == "Bearer tls-token" })
            await h.stop()
            try await client.shutdown()
        }
    }

    @Test("a server certificate from another CA is refused; insecure-skip-tls-verify connects anyway")
    func untrustedServer() async throws {
        try await withFake(Self.tlsFake) { server in
            // A TLS failure surfaces after the connect timeout (AsyncHTTPClient retries the connection until then).
            let client = try KubeAPIClient(configuration: KubeClientConfiguration(
                server: server.url, certificateAuthorityPEM: Array(TestPKI.otherCaCrt.utf8), tokenSource: TokenSource(.fixed("tls-token"))),
                connectTimeout: .milliseconds(500))
            await #expect(throws: KubeAPIError.self) {
                let _: KubeAPIClient.ListPage<Service> = try await client.listPage(.services(), resourceVersion: "0", limit: 500, continueToken: nil)
            }
            try await client.shutdown()
            #expect(server.requests.isEmpty)
            // insecure-skip-tls-verify connects anyway.
            let insecure = try KubeAPIClient(configuration: KubeClientConfiguration(server: server.url, insecureSkipTLSVerify: true,
                                                                                    tokenSource: TokenSource(.fixed("tls-token"))))
            let page: KubeAPIClient.ListPage<Service> = try await insecure.listPage(.services(), resourceVersion: "0", limit: 500, continueToken: nil)
            #expect(page.items.isEmpty)
            try await insecure.shutdown()
        }
    }
}
