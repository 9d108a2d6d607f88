import NIOCore

/// Flushes, once an event loop has handled the I/O events of its current turn, the connections
/// that wrote endpoint answers during it.
///
/// Flushing each answer as it is made interleaves handlers with socket writes, and each write
/// wakes the client's thread, which on a busy machine preempts the loop to read one answer. Written
/// back to back at the turn's end, the loop's answers leave in one burst: measured under `wrk` on
/// two cores, 28–31k → 38–44k requests/s for `hello`, with the kernel's time per request down from
/// 21 to 13 µs. An answer waits at most for the rest of the turn's ready requests (NIO runs tasks
/// after a turn's I/O, without a wake-up: the flush task is queued from the loop itself).
final class TurnFlushes: @unchecked Sendable {
    private static let all = PerEventLoop { TurnFlushes(loop: $0) }

    /// The flushes of `loop`.
    static func on(_ loop: any EventLoop) -> TurnFlushes { all.on(loop) }

    private let loop: any EventLoop
    // Used only on `loop`.
    private var pending: [EndpointFastPath] = []
    private var spare: [EndpointFastPath] = []

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    /// Flushes `connection` at the end of this turn. Call on the loop.
    func add(_ connection: EndpointFastPath) {
        pending.append(connection)
        guard pending.count == 1 else { return }
        loop.execute { self.flush() }
    }

    private func flush() {
        var due = pending
        pending = spare
        for connection in due { connection.flushNow() }
        due.removeAll(keepingCapacity: true)
        spare = due
    }
}

