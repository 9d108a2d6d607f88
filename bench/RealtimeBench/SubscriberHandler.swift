import NIOCore

/// One SSE subscriber: sends the GET, checks for 200, then decodes the chunked body and records
/// each event's latency in its loop's `LoopStats`.
final class SubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct BadStatus: Error, CustomStringConvertible {
        let status: Int
        var description: String { "subscribe answered \(status)" }
    }

    struct Ended: Error, CustomStringConvertible {
        var description: String { "connection closed before the stream started" }
    }

    struct NoAnswer: Error, CustomStringConvertible {
        var description: String { "no answer to the subscribe request within \(SubscriberHandler.headTimeout)" }
    }

    /// How long the server may take to answer the subscribe request.
    static let headTimeout = TimeAmount.seconds(30)

    private enum State {
        case head(ByteBuffer)
        case chunked
        case raw
        case failed
    }

    private let request: ByteBuffer
    private let stats: LoopStats
    /// Succeeds once the 200 head has arrived; fails if the stream could not start.
    let started: EventLoopPromise<Void>
    private var state = State.head(ByteBuffer())
    private var decoder = ChunkedDecoder()
    private var scanner = SSEScanner()
    private var received = 0
    private var headTimer: Scheduled<Void>?

    init(request: ByteBuffer, stats: LoopStats, started: EventLoopPromise<Void>) {
        self.request = request
        self.stats = stats
        self.started = started
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        headTimer = context.eventLoop.scheduleTask(in: Self.headTimeout) {
            let (handler, context) = bound.value
            if case .head = handler.state { handler.fail(context: context, NoAnswer()) }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        do {
            switch state {
            case .head(var pending):
                pending.writeBuffer(&buffer)
                guard let head = try HTTPHead.take(from: &pending, isResponse: true) else {
                    state = .head(pending)
                    return
                }
                guard head.status == 200 else { throw BadStatus(status: head.status) }
                state = head.chunked ? .chunked : .raw
                stats.subscribed += 1
                headTimer?.cancel()
                headTimer = nil
                started.succeed()
                try body(pending)
            case .chunked, .raw:
                try body(buffer)
            case .failed:
                return
            }
        } catch {
            fail(context: context, error)
        }
    }

    private func body(_ buffer: ByteBuffer) throws {
        guard buffer.readableBytes > 0 else { return }
        let now = wallMicros()
        try buffer.withUnsafeReadableBytes { bytes in
            if case .raw = state {
                scanner.scan(bytes) { record($0, now: now) }
                return
            }
            var offset = 0
            while let data = try decoder.nextData(bytes, from: &offset) {
                scanner.scan(data) { record($0, now: now) }
            }
        }
    }

    private func record(_ frame: SSEFrame, now: Int64) {
        switch frame {
        case .event(let sentAt):
            received += 1
            stats.events += 1
            if let sentAt {
                stats.latencies.append(Int32(clamping: now - sentAt))
            } else {
                stats.eventsWithoutTime += 1
            }
            if stats.firstReceive == .max { stats.firstReceive = now }
            stats.lastReceive = now
            if received == stats.target { stats.complete += 1 }
        case .gap:
            stats.gaps += 1
        case .comment:
            stats.comments += 1
        }
    }

    private func fail(context: ChannelHandlerContext, _ error: any Error) {
        if case .failed = state { return }
        let wasStarted = if case .head = state { false } else { true }
        state = .failed
        if wasStarted { stats.errors += 1 } else { started.fail(error) }
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .head: started.fail(Ended())
        case .chunked, .raw: stats.ended += 1
        case .failed: break
        }
        state = .failed
        context.fireChannelInactive()
    }
}
