import Foundation
import NIOSSL

/// How to reach and authenticate to the API server: what `rest.Config` holds in client-go.
/// Build one with `inCluster(…)`, `fromKubeconfig(…)` or `forKubeProxy(…)`, or by hand in tests.
public struct KubeClientConfiguration: Sendable {
    /// `https://host:port` (or `http://…`); a path prefix is kept.
    public var server: String
    /// PEM bytes of the CA bundle to verify the server with; nil = system trust roots.
    public var certificateAuthorityPEM: [UInt8]?
    public var insecureSkipTLSVerify: Bool
    /// Name to verify the server certificate against (and send as SNI) instead of the host.
    public var tlsServerName: String?
    /// PEM client certificate (chain) and key (PKCS#1, PKCS#8 or SEC1).
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?
    /// Bearer token source, if any.
    public var tokenSource: TokenSource?
    public var userAgent: String
    /// Where this configuration came from (for logs).
    public var origin: String

    public static let defaultUserAgent = "sluice/0.1 (linux/amd64)"

    public init(server: String, certificateAuthorityPEM: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false,
                tlsServerName: String? = nil, clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil,
                tokenSource: TokenSource? = nil, userAgent: String = KubeClientConfiguration.defaultUserAgent,
                origin: String = "explicit") {
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.tlsServerName = tlsServerName
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.tokenSource = tokenSource
        self.userAgent = userAgent
        self.origin = origin
    }

    /// Default in-cluster file locations.
    public static let serviceAccountTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    public static let serviceAccountCAPath = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"

    /// `rest.InClusterConfig()`: `KUBERNETES_SERVICE_HOST`/`_PORT` (both required), the
    /// service-account token file (re-read as it rotates) and CA file.
    public static func inCluster(environment: [String: String] = ProcessInfo.processInfo.environment,
                                 tokenPath: String = serviceAccountTokenPath,
                                 caPath: String = serviceAccountCAPath,
                                 tokenRecheckInterval: Duration = .seconds(60)) throws -> KubeClientConfiguration {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            throw KubeConfigError.notInCluster
        }
        let tokenSource = TokenSource(.file(tokenPath), recheckInterval: tokenRecheckInterval)
        _ = try tokenSource.token()   // fail early, as client-go does
        let ca = try readFile(caPath)
        return KubeClientConfiguration(server: "https://\(joinHostPort(host, port))", certificateAuthorityPEM: ca,
                                       tokenSource: tokenSource, origin: "in-cluster")
    }

    /// kube-proxy's `createClient`: no kubeconfig and no master → in-cluster; otherwise the
    /// explicit kubeconfig (the `KUBECONFIG` variable is not consulted), `master` overriding its server.
    public static func forKubeProxy(kubeconfig: String?, master: String?,
                                    environment: [String: String] = ProcessInfo.processInfo.environment,
                                    tokenPath: String = serviceAccountTokenPath,
                                    caPath: String = serviceAccountCAPath) throws -> KubeClientConfiguration {
        let kc = kubeconfig.flatMap { $0.isEmpty ? nil : $0 }
        let m = master.flatMap { $0.isEmpty ? nil : $0 }
        switch (kc, m) {
        case (nil, nil):
            return try inCluster(environment: environment, tokenPath: tokenPath, caPath: caPath)
        case (nil, let master?):
            // client-go: "Neither --kubeconfig nor --master was specified" only when both are missing;
            // master alone gives an unauthenticated config for that server.
            return KubeClientConfiguration(server: master, origin: "--master")
        case (let path?, let master):
            return try fromKubeconfig(path: path, masterOverride: master)
        }
    }

    /// Loads a kubeconfig file (YAML or JSON); see `Kubeconfig`.
    public static func fromKubeconfig(path: String, context: String? = nil,
                                      masterOverride: String? = nil,
                                      tokenRecheckInterval: Duration = .seconds(60)) throws -> KubeClientConfiguration {
        let text = String(decoding: try readFile(path), as: UTF8.self)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let kubeconfig = try Kubeconfig.parse(text, origin: path)
        return try kubeconfig.clientConfiguration(context: context, baseDirectory: directory,
                                                  masterOverride: masterOverride,
                                                  tokenRecheckInterval: tokenRecheckInterval, origin: path)
    }

    /// `net.JoinHostPort`: brackets around IPv6 literals.
    public static func joinHostPort(_ host: String, _ port: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The most a kubeconfig, CA bundle, client certificate, key or token file may hold.
    public static let maxFileBytes = 4 << 20

    /// Reads a kubeconfig or a file it names (CA, client certificate or key, token): a regular
    /// file of at most `maxFileBytes`. A FIFO, a device (`/dev/zero`) or a directory is refused
    /// with a clear error instead of blocking the daemon or filling its memory; the open does
    /// not wait for a FIFO's writer.
    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw KubeConfigError.unreadableFile(path, String(cString: strerror(errno))) }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw KubeConfigError.unreadableFile(path, String(cString: strerror(errno))) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw KubeConfigError.unreadableFile(path, "not a regular file") }
        guard Int(st.st_size) <= maxFileBytes else {
            throw KubeConfigError.unreadableFile(path, "\(st.st_size) bytes, more than the \(maxFileBytes) a kubeconfig or credential file may hold")
        }
        do {
            let data = try handle.read(upToCount: maxFileBytes + 1) ?? Data()
            guard data.count <= maxFileBytes else { throw KubeConfigError.unreadableFile(path, "grew past \(maxFileBytes) bytes while read") }
            return Array(data)
        } catch let e as KubeConfigError {
            throw e
        } catch {
            throw KubeConfigError.unreadableFile(path, "\((error as NSError).localizedDescription)")
        }
    }

    /// The NIOSSL client configuration this describes.
    public func makeTLSConfiguration() throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if insecureSkipTLSVerify {
            tls.certificateVerification = .none
        }
        if let ca = certificateAuthorityPEM {
            let certs: [NIOSSLCertificate]
            do { certs = try NIOSSLCertificate.fromPEMBytes(ca) } catch {
                throw KubeConfigError.invalidPEM("certificate authority", "\(error)")
            }
            guard !certs.isEmpty else { throw KubeConfigError.invalidPEM("certificate authority", "no certificate found") }
            tls.trustRoots = .certificates(certs)
        }
        switch (clientCertificatePEM, clientKeyPEM) {
        case (nil, nil):
            break
        case (let cert?, let key?):
            do {
                let chain = try NIOSSLCertificate.fromPEMBytes(cert)
                guard !chain.isEmpty else { throw KubeConfigError.invalidPEM("client certificate", "no certificate found") }
                tls.certificateChain = chain.map { .certificate($0) }
            } catch let e as KubeConfigError { throw e } catch {
                throw KubeConfigError.invalidPEM("client certificate", "\(error)")
            }
            do {
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
            } catch {
                throw KubeConfigError.invalidPEM("client key", "\(error)")
            }
        default:
            throw KubeConfigError.invalid("client certificate and client key must be given together")
        }
        return tls
    }
}

/// Configuration errors, with messages meant for an operator.
public enum KubeConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    case notInCluster
    case unreadableFile(String, String)
    case invalidYAML(String, String)
    case invalid(String)
    case unsupported(String)
    case invalidPEM(String, String)

    public var description: String {
        switch self {
        case .notInCluster:
            "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"
        case .unreadableFile(let p, let e): "cannot read \(p): \(e)"
        case .invalidYAML(let p, let e): "\(p) is not a valid kubeconfig: \(e)"
        case .invalid(let m): "invalid kubeconfig: \(m)"
        case .unsupported(let m): "unsupported kubeconfig: \(m)"
        case .invalidPEM(let what, let e): "invalid PEM for \(what): \(e)"
        }
    }
}
