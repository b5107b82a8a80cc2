import Foundation
import SluiceKubeFake

/// Has the fake server send a bookmark on every open watch every `interval` seconds, as
/// kube-apiserver's watch cache does about every minute, until `stop()`.
struct BookmarkTicker {
    private let loop: BackgroundLoop

    init(_ server: FakeAPIServer, interval: Double) {
        loop = BackgroundLoop.every(interval) { server.sendBookmarks() }
    }

    /// Stops the thread and waits for it; safe to call twice.
    func stop() { loop.stop() }
}
