import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP response.
public struct HTTPReply: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: String

    public init(status: Int, headers: [(String, String)] = [], body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static let notFound = HTTPReply(status: 404, headers: [("Content-Type", "text/plain; charset=utf-8")], body: "404 page not found\n")
}

/// A minimal HTTP/1.1 server on SwiftNIO for the health, metrics and healthCheckNodePort
/// endpoints: every request gets one reply from `respond(method, path)` and the connection
/// is closed.
public final class HTTPServer: Sendable {
    public typealias Responder = @Sendable (_ method: String, _ path: String) -> HTTPReply

    let channel: any Channel
    /// The bound port (useful with port 0).
    public let port: Int

    private init(channel: any Channel) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
    }

    /// Binds `host:port` and serves until `close()`.
    public static func start(host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             respond: @escaping Responder) async throws -> HTTPServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HTTPReplyHandler(respond: respond))
                }
            }
            .bind(host: host, port: port).get()
        return HTTPServer(channel: channel)
    }

    public func close() async {
        try? await channel.close()
    }
}

/// Parses `host:port`, `[v6]:port` or `:port` (all addresses).
public func parseBindAddress(_ text: String) -> (host: String, port: Int)? {
    let t = text.trimmingCharacters(in: .whitespaces)
    if t.hasPrefix("[") {
        guard let close = t.firstIndex(of: "]"), t[t.index(after: close)...].hasPrefix(":"),
              let port = Int(t[t.index(close, offsetBy: 2)...]), (0...65535).contains(port) else { return nil }
        return (String(t[t.index(after: t.startIndex)..<close]), port)
    }
    guard let colon = t.lastIndex(of: ":"), let port = Int(t[t.index(after: colon)...]), (0...65535).contains(port) else { return nil }
    let host = String(t[..<colon])
    return (host.isEmpty ? "0.0.0.0" : host, port)
}

final class HTTPReplyHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let respond: HTTPServer.Responder
    var head: HTTPRequestHead?

    init(respond: @escaping HTTPServer.Responder) { self.respond = respond }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "/")
            let reply = respond(head.method.rawValue, path)
            var headers = HTTPHeaders(reply.headers)
            headers.replaceOrAdd(name: "Content-Length", value: "\(reply.body.utf8.count)")
            headers.replaceOrAdd(name: "Connection", value: "close")
            let status = HTTPResponseStatus(statusCode: reply.status)
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: reply.body)))), promise: nil)
            }
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
        }
    }
}

import Foundation
