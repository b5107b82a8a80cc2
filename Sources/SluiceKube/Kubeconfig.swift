import Foundation
import Yams

/// A kubeconfig file (`clientcmd/api/v1` types), reduced to what a node proxy needs.
public struct Kubeconfig: Sendable, Decodable {
    public var currentContext: String?
    public var clusters: [NamedCluster]
    public var contexts: [NamedContext]
    public var users: [NamedUser]

    enum CodingKeys: String, CodingKey {
        case currentContext = "current-context"
        case clusters, contexts, users
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        currentContext = try c.decodeIfPresent(String.self, forKey: .currentContext)
        clusters = try c.decodeIfPresent([NamedCluster].self, forKey: .clusters) ?? []
        contexts = try c.decodeIfPresent([NamedContext].self, forKey: .contexts) ?? []
        users = try c.decodeIfPresent([NamedUser].self, forKey: .users) ?? []
    }

    public struct NamedCluster: Sendable, Decodable {
        public var name: String
        public var cluster: Cluster
    }

    public struct Cluster: Sendable, Decodable {
        public var server: String?
        public var certificateAuthority: String?
        public var certificateAuthorityData: String?
        public var insecureSkipTLSVerify: Bool?
        public var tlsServerName: String?
        public var proxyURL: String?

        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            case tlsServerName = "tls-server-name"
            case proxyURL = "proxy-url"
        }
    }

    public struct NamedContext: Sendable, Decodable {
        public var name: String
        public var context: Context
    }

    public struct Context: Sendable, Decodable {
        public var cluster: String?
        public var user: String?
        public var namespace: String?
    }

    public struct NamedUser: Sendable, Decodable {
        public var name: String
        public var user: User
    }

    public struct User: Sendable, Decodable {
        public var clientCertificate: String?
        public var clientCertificateData: String?
        public var clientKey: String?
        public var clientKeyData: String?
        public var token: String?
        public var tokenFile: String?
        public var username: String?
        public var password: String?
        public var hasExec: Bool
        public var hasAuthProvider: Bool

        enum CodingKeys: String, CodingKey {
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
            case token, tokenFile, username, password, exec
            case authProvider = "auth-provider"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            clientCertificate = try c.decodeIfPresent(String.self, forKey: .clientCertificate)
            clientCertificateData = try c.decodeIfPresent(String.self, forKey: .clientCertificateData)
            clientKey = try c.decodeIfPresent(String.self, forKey: .clientKey)
            clientKeyData = try c.decodeIfPresent(String.self, forKey: .clientKeyData)
            token = try c.decodeIfPresent(String.self, forKey: .token)
            tokenFile = try c.decodeIfPresent(String.self, forKey: .tokenFile)
            username = try c.decodeIfPresent(String.self, forKey: .username)
            password = try c.decodeIfPresent(String.self, forKey: .password)
            hasExec = try c.decodeIfPresent(Ignored.self, forKey: .exec) != nil
            hasAuthProvider = try c.decodeIfPresent(Ignored.self, forKey: .authProvider) != nil
        }
    }

    /// Any value, not read.
    struct Ignored: Decodable {
        init(from decoder: any Decoder) throws {}
    }

    public static func parse(_ text: String, origin: String = "kubeconfig") throws -> Kubeconfig {
        do {
            return try YAMLDecoder().decode(Kubeconfig.self, from: text)
        } catch {
            throw KubeConfigError.invalidYAML(origin, "\(error)")
        }
    }

    /// Resolves the context (`context` or `current-context`) into a client configuration.
    /// Relative file paths are taken relative to `baseDirectory`; `*-data` wins over paths,
    /// `token` over `tokenFile`.
    public func clientConfiguration(context contextName: String? = nil, baseDirectory: String,
                                    masterOverride: String? = nil, tokenRecheckInterval: Duration = .seconds(60),
                                    origin: String = "kubeconfig") throws -> KubeClientConfiguration {
        guard let name = contextName ?? currentContext, !name.isEmpty else {
            throw KubeConfigError.invalid("no current-context is set")
        }
        guard let ctx = contexts.first(where: { $0.name == name })?.context else {
            throw KubeConfigError.invalid("context \"\(name)\" not found")
        }
        guard let clusterName = ctx.cluster, let cluster = clusters.first(where: { $0.name == clusterName })?.cluster else {
            throw KubeConfigError.invalid("cluster \"\(ctx.cluster ?? "")\" of context \"\(name)\" not found")
        }
        var user: User? = nil
        if let userName = ctx.user, !userName.isEmpty {
            guard let u = users.first(where: { $0.name == userName })?.user else {
                throw KubeConfigError.invalid("user \"\(userName)\" of context \"\(name)\" not found")
            }
            user = u
        }

        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : URL(fileURLWithPath: baseDirectory).appendingPathComponent(path).path
        }
        func decodeData(_ b64: String, _ what: String) throws -> [UInt8] {
            let cleaned = b64.filter { !$0.isWhitespace }
            guard let d = Data(base64Encoded: cleaned) else {
                throw KubeConfigError.invalid("\(what) is not valid base64")
            }
            return Array(d)
        }

        guard let server = (masterOverride.flatMap { $0.isEmpty ? nil : $0 }) ?? cluster.server, !server.isEmpty else {
            throw KubeConfigError.invalid("cluster \"\(clusterName)\" has no server")
        }
        var config = KubeClientConfiguration(server: server, origin: origin)
        config.insecureSkipTLSVerify = cluster.insecureSkipTLSVerify ?? false
        config.tlsServerName = cluster.tlsServerName.flatMap { $0.isEmpty ? nil : $0 }
        if let data = cluster.certificateAuthorityData, !data.isEmpty {
            config.certificateAuthorityPEM = try decodeData(data, "certificate-authority-data")
        } else if let path = cluster.certificateAuthority, !path.isEmpty {
            config.certificateAuthorityPEM = try KubeClientConfiguration.readFile(resolve(path))
        }
        if config.insecureSkipTLSVerify && config.certificateAuthorityPEM != nil {
            // client-go: "specifying a root certificates file with the insecure flag is not allowed"
            throw KubeConfigError.invalid("insecure-skip-tls-verify cannot be combined with a certificate authority")
        }
        if let u = user {
            if u.hasExec {
                throw KubeConfigError.unsupported("user of context \"\(name)\" uses an exec credential plugin; use a token, tokenFile or client certificate")
            }
            if u.hasAuthProvider {
                throw KubeConfigError.unsupported("user of context \"\(name)\" uses an auth-provider; use a token, tokenFile or client certificate")
            }
            if (u.username ?? "") != "" || (u.password ?? "") != "" {
                throw KubeConfigError.unsupported("user of context \"\(name)\" uses username/password (basic auth was removed from Kubernetes in 1.19); use a token, tokenFile or client certificate")
            }
            if let d = u.clientCertificateData, !d.isEmpty {
                config.clientCertificatePEM = try decodeData(d, "client-certificate-data")
            } else if let p = u.clientCertificate, !p.isEmpty {
                config.clientCertificatePEM = try KubeClientConfiguration.readFile(resolve(p))
            }
            if let d = u.clientKeyData, !d.isEmpty {
                config.clientKeyPEM = try decodeData(d, "client-key-data")
            } else if let p = u.clientKey, !p.isEmpty {
                config.clientKeyPEM = try KubeClientConfiguration.readFile(resolve(p))
            }
            if (config.clientCertificatePEM == nil) != (config.clientKeyPEM == nil) {
                throw KubeConfigError.invalid("user of context \"\(name)\" has a client certificate without a key or a key without a certificate")
            }
            if let t = u.token, !t.isEmpty {
                config.tokenSource = TokenSource(.fixed(t))
            } else if let f = u.tokenFile, !f.isEmpty {
                let source = TokenSource(.file(resolve(f)), recheckInterval: tokenRecheckInterval)
                _ = try source.token()
                config.tokenSource = source
            }
        }
        _ = try config.makeTLSConfiguration()   // validate PEMs now, with a clear error
        return config
    }
}
