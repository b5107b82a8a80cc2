import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A response of `loopbackGet`.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names lowercased.
    public var headers: [String: String]
    public var body: String
}

/// Why `loopbackGet` got no response.
public struct LoopbackHTTPError: Error, CustomStringConvertible {
    public let description: String
}

/// A blocking HTTP/1.0 GET to 127.0.0.1:`port` (loopback only), read to the end: what the
/// tests and the daemon benchmark use to read `/healthz` and `/metrics`.
public func loopbackGet(port: Int, path: String, timeoutSeconds: Int = 5) throws -> HTTPResponse {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw LoopbackHTTPError(description: "socket failed: errno \(errno)") }
    defer { close(fd) }
    var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { throw LoopbackHTTPError(description: "connect to 127.0.0.1:\(port) failed: errno \(errno)") }
    let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    guard send(fd, request, request.count, 0) == request.count else {
        throw LoopbackHTTPError(description: "send to 127.0.0.1:\(port) failed: errno \(errno)")
    }
    var data = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { break }
        data += buf[0..<n]
    }
    let text = String(decoding: data, as: UTF8.self)
    guard text.hasPrefix("HTTP/1."), let split = text.range(of: "\r\n\r\n") else {
        throw LoopbackHTTPError(description: "bad HTTP response: \(text)")
    }
    let headLines = text[..<split.lowerBound].split(separator: "\r\n")
    let statusWords = headLines.first?.split(separator: " ") ?? []
    let status = statusWords.count > 1 ? Int(statusWords[1]) ?? 0 : 0
    var headers: [String: String] = [:]
    for line in headLines.dropFirst() {
        if let c = line.firstIndex(of: ":") {
            headers[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
    }
    return HTTPResponse(status: status, headers: headers, body: String(text[split.upperBound...]))
}
