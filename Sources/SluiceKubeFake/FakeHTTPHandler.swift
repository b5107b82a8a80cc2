import NIOCore
import NIOHTTP1
import NIOSSL

/// One connection: collects each request and hands it to the server.
final class FakeHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let server: FakeAPIServer
    private var head: HTTPRequestHead?

    init(server: FakeAPIServer) {
        self.server = server
    }

    func channelActive(context: ChannelHandlerContext) {
        server.connectionOpened(context.channel)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.connectionClosed(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body:
            break
        case .end:
            guard let h = head else { return }
            head = nil
            let cert = (try? context.pipeline.syncOperations.nioSSL_peerCertificate()) ?? nil
            server.handle(h, clientCertificate: cert != nil, responder: Responder(context: context))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Writes one response on the handler's context (called on its event loop).
struct Responder {
    let context: ChannelHandlerContext
    var channel: Channel { context.channel }

    func respond(status: Int, body: String, contentType: String = "application/json", extraHeaders: [(String, String)] = [],
                 keepAlive: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Audit-Id", value: "00000000-0000-4000-8000-000000000000")
        headers.add(name: "Cache-Control", value: "no-cache, private")
        headers.add(name: "Content-Type", value: contentType)
        for (k, v) in extraHeaders { headers.add(name: k, value: v) }
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }

    /// 200 with chunked transfer encoding; the body follows through a WatchStream.
    func startChunked() {
        var headers = HTTPHeaders()
        headers.add(name: "Audit-Id", value: "00000000-0000-4000-8000-000000000000")
        headers.add(name: "Cache-Control", value: "no-cache, private")
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Transfer-Encoding", value: "chunked")
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
    }
}
