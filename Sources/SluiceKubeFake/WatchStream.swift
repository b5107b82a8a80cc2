import NIOCore
import NIOHTTP1

/// One open watch. Its immutable part (what it watches) is read under the server lock; its
/// output queue is confined to the channel's event loop. Writes leave in enqueue order, with
/// optional pauses between chunks (to split an event across TCP reads).
final class WatchStream: @unchecked Sendable {
    enum Item {
        case data(ByteBuffer, pause: TimeAmount)
        case end
        case drop(partial: String?)
    }

    let id: Int
    let resource: FakeResource
    let labelSelector: LabelSelector?
    let fieldSelector: FieldSelector?
    let namespace: String?
    let allowBookmarks: Bool
    /// Only events with a larger RV are sent.
    let minRV: Int
    let channel: Channel
    let onFinish: @Sendable () -> Void
    /// Server-lock state: while a watch-list sends its initial events, the live events
    /// that happen meanwhile (and whether the watch timed out) wait here.
    var held: [String]?
    var endAfterHeld = false

    // Event-loop state.
    private var queue: [Item] = []
    private var busy = false
    private var finished = false
    private var stalled = false

    init(id: Int, resource: FakeResource, labelSelector: LabelSelector?, fieldSelector: FieldSelector?,
         namespace: String?, allowBookmarks: Bool, minRV: Int, channel: Channel, onFinish: @escaping @Sendable () -> Void) {
        self.id = id
        self.resource = resource
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.namespace = namespace
        self.allowBookmarks = allowBookmarks
        self.minRV = minRV
        self.channel = channel
        self.onFinish = onFinish
    }

    func matches(_ object: JSONValue) -> Bool {
        if let ns = namespace, object.namespace != ns { return false }
        if let l = labelSelector, !l.matches(object.labels) { return false }
        if let f = fieldSelector, !f.matches(name: object.name, namespace: object.namespace) { return false }
        return true
    }

    /// Adds items from any thread (called under the server lock, so order is global order).
    func enqueue(_ items: [Item]) {
        channel.eventLoop.execute {
            self.queue += items
            self.drain()
        }
    }

    /// Stops all output for good: the connection stays open and silent, even past its timeout.
    func stall() {
        channel.eventLoop.execute { self.stalled = true }
    }

    private func drain() {
        while !busy && !finished && !stalled && !queue.isEmpty {
            let item = queue.removeFirst()
            switch item {
            case .data(let buffer, let pause):
                channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
                if pause > .zero {
                    busy = true
                    channel.eventLoop.scheduleTask(in: pause) {
                        self.busy = false
                        self.drain()
                    }
                }
            case .end:
                finished = true
                channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
                onFinish()
            case .drop(let partial):
                finished = true
                if let p = partial {
                    channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: p))), promise: nil)
                }
                channel.close(promise: nil)
                onFinish()
            }
        }
    }
}
