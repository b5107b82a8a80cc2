import AsyncHTTPClient
import Foundation
import SluiceModel
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// A thin Kubernetes API client on AsyncHTTPClient: GETs of collections (list and watch) with
/// JSON, bearer-token or client-certificate auth, `Retry-After` handling for 429, and a token
/// re-read on 401. It never GETs a single object (the node-proxier role cannot).
public final class KubeAPIClient: Sendable {
    public let configuration: KubeClientConfiguration
    let http: HTTPClient
    let baseURL: String
    let logger: Logger
    /// How many times a 429 with `Retry-After` is retried before the error surfaces (client-go: 10).
    public let maxRetryAfterRetries: Int
    /// Longest `Retry-After` honoured.
    public let maxRetryAfter: Duration

    public init(configuration: KubeClientConfiguration,
                eventLoopGroup: any EventLoopGroup = HTTPClient.defaultEventLoopGroup,
                logger: Logger = Logger(label: "sluice.kube"),
                maxRetryAfterRetries: Int = 10,
                maxRetryAfter: Duration = .seconds(60),
                connectTimeout: Duration = .seconds(10)) throws {
        self.configuration = configuration
        self.logger = logger
        self.maxRetryAfterRetries = maxRetryAfterRetries
        self.maxRetryAfter = maxRetryAfter

        guard let url = URL(string: configuration.server), let scheme = url.scheme?.lowercased(),
              scheme == "https" || scheme == "http", var host = url.host, !host.isEmpty else {
            throw KubeConfigError.invalid("server \"\(configuration.server)\" is not an http(s) URL")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        var prefix = url.path
        while prefix.hasSuffix("/") { prefix.removeLast() }

        var httpConfig = HTTPClient.Configuration(
            tlsConfiguration: scheme == "https" ? try configuration.makeTLSConfiguration() : nil,
            redirectConfiguration: .disallow,
            timeout: .init(connect: .nanoseconds(connectTimeout.nanoseconds), read: nil),   // watches are silent for minutes
            decompression: .disabled)
        // `tls-server-name`: request the name (SNI + certificate check) but connect to the host.
        var requestHost = host
        if scheme == "https", let name = configuration.tlsServerName, name != host {
            httpConfig.dnsOverride = [name: host]
            requestHost = name
        }
        let hostPart = requestHost.contains(":") ? "[\(requestHost)]" : requestHost
        self.baseURL = "\(scheme)://\(hostPart):\(port)\(prefix)"
        self.http = HTTPClient(eventLoopGroup: eventLoopGroup, configuration: httpConfig,
                               backgroundActivityLogger: logger)
    }

    public func shutdown() async throws {
        try await http.shutdown()
    }

    /// Sends `GET path?query` and returns the response once its head is in. Non-2xx answers are
    /// thrown as `KubeAPIError.status` with the decoded Status body. A 429 with `Retry-After`
    /// is retried after that delay; a 401 makes the token source re-read its file and the
    /// request is retried once if the token changed.
    public func get(path: String, query: [(String, String)], headTimeout: Duration = .seconds(60)) async throws -> HTTPClientResponse {
        var retryAfterRetries = 0
        var retriedAfter401 = false
        while true {
            try Task.checkCancellation()
            var request = HTTPClientRequest(url: query.isEmpty ? baseURL + path : "\(baseURL)\(path)?\(Query.encode(query))")
            request.method = .GET
            request.headers.add(name: "Accept", value: "application/json")
            request.headers.add(name: "User-Agent", value: configuration.userAgent)
            var token: String? = nil
            if let source = configuration.tokenSource {
                token = try source.token()
                if let t = token, !t.isEmpty { request.headers.add(name: "Authorization", value: "Bearer \(t)") }
            }
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, deadline: .now() + .nanoseconds(headTimeout.nanoseconds))
            } catch let e as CancellationError {
                throw e
            } catch {
                if Task.isCancelled { throw CancellationError() }
                throw KubeAPIError.transport(String(describing: error))
            }
            let code = Int(response.status.code)
            if (200..<300).contains(code) { return response }

            let body = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
            let status = try? JSONDecoder().decode(APIStatus.self, from: Data(body.readableBytesView))
            let retryAfter = response.headers.first(name: "Retry-After").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                .map { Duration.seconds(max(0, $0)) }
            let error = KubeAPIError.status(httpCode: code, status: status, retryAfter: retryAfter)
            if code == 429, let wait = retryAfter, retryAfterRetries < maxRetryAfterRetries {
                retryAfterRetries += 1
                logger.info("429 Too Many Requests, retrying after Retry-After", metadata: ["path": "\(path)", "seconds": "\(wait)"])
                try await Task.sleep(for: min(wait, maxRetryAfter))
                continue
            }
            if code == 401, let source = configuration.tokenSource, !retriedAfter401 {
                retriedAfter401 = true
                if source.invalidate(), let fresh = try? source.token(), fresh != token {
                    logger.info("401 Unauthorized: token file changed, retrying", metadata: ["path": "\(path)"])
                    continue
                }
            }
            throw error
        }
    }

    /// One page of a list.
    public struct ListPage<Object: KubeObject>: Sendable {
        public var items: [Object]
        public var metadata: ListMeta
    }

    struct ListBody<Object: KubeObject>: Decodable {
        var metadata: ListMeta?
        var items: [Object]?

        /// As `init(from:)` through `JSONDecoder` (see `JSONReader`).
        init(json r: inout JSONReader) throws {
            var seen = JSONSeenKeys()
            try r.readObject { r, key in
                switch key {
                case "metadata": try seen.mark(0, r); metadata = try r.readOptional { try ListMeta(json: &$0) }
                case "items": try seen.mark(1, r); items = try r.readOptionalArray { try Object.read(json: &$0) }
                default: try r.skipValue()
                }
            }
        }
    }

    /// `GET path?labelSelector=…&limit=…&resourceVersion=…[&continue=…]`.
    public func listPage<Object: KubeObject>(_ resource: KubeResource<Object>, resourceVersion: String?, limit: Int?,
                                             continueToken: String?, timeout: Duration = .seconds(60)) async throws -> ListPage<Object> {
        var query: [(String, String)] = []
        if let c = continueToken { query.append(("continue", c)) }
        if let f = resource.fieldSelector { query.append(("fieldSelector", f)) }
        if let l = resource.labelSelector { query.append(("labelSelector", l)) }
        if let limit, limit > 0 { query.append(("limit", String(limit))) }
        if let rv = resourceVersion, !rv.isEmpty { query.append(("resourceVersion", rv)) }
        let response = try await get(path: resource.path, query: query, headTimeout: timeout)
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: 1 << 30)
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw KubeAPIError.transport("reading list body: \(error)")
        }
        do {
            return try Self.decodeListPage(Object.self, from: Data(body.readableBytesView))
        } catch {
            throw KubeAPIError.decoding("list \(resource.path): \(error)")
        }
    }

    /// Decodes one page of a list body straight into model objects (kind and apiVersion filled in).
    /// Services and EndpointSlices go through their hand-written readers; a page outside their
    /// plain shape, and every other kind, through `JSONDecoder`.
    public static func decodeListPage<Object: KubeObject>(_ type: Object.Type, from data: Data) throws -> ListPage<Object> {
        let decoded = try JSONReader.read(data, ListBody<Object>.init(json:)) ?? JSONDecoder().decode(ListBody<Object>.self, from: data)
        return ListPage(items: (decoded.items ?? []).map { $0.withTypeMeta() },
                        metadata: decoded.metadata ?? ListMeta())
    }

    /// Opens `GET path?allowWatchBookmarks=true&…&resourceVersion=RV&timeoutSeconds=T&watch=true`;
    /// with `sendInitialEvents`, a watch-list (`resourceVersionMatch=NotOlderThan&sendInitialEvents=true`).
    public func openWatch<Object: KubeObject>(_ resource: KubeResource<Object>, resourceVersion: String,
                                              timeoutSeconds: Int, allowBookmarks: Bool = true,
                                              sendInitialEvents: Bool = false) async throws -> HTTPClientResponse {
        var query: [(String, String)] = []
        if allowBookmarks || sendInitialEvents { query.append(("allowWatchBookmarks", "true")) }
        if let f = resource.fieldSelector { query.append(("fieldSelector", f)) }
        if let l = resource.labelSelector { query.append(("labelSelector", l)) }
        query.append(("resourceVersion", resourceVersion))
        if sendInitialEvents {
            query.append(("resourceVersionMatch", "NotOlderThan"))
            query.append(("sendInitialEvents", "true"))
        }
        query.append(("timeoutSeconds", String(timeoutSeconds)))
        query.append(("watch", "true"))
        return try await get(path: resource.path, query: query)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}

extension KubeObject {
    /// Items of a list carry no kind/apiVersion while watch events do; fill them in so that
    /// the same object compares equal whichever way it arrived.
    func withTypeMeta() -> Self {
        var copy = self
        copy.kind = Self.apiKind
        copy.apiVersion = Self.apiGroupVersion
        return copy
    }
}
