import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// Hummingbird's HTTP/1 connection, whose request-handling task starts only when the router is
/// needed.
///
/// Hummingbird runs a task per connection that waits for requests to route. Most connections
/// never need it: event streams and app endpoints are answered by handlers in the pipeline
/// (``RealtimeStream``, ``EndpointStream``). A waiting task keeps the stack slabs of the deepest
/// point it reached for the connection's whole life — 5.7 KiB per idle event stream (heaptrack).
/// Here the task first waits, shallow, for ``RouterWake`` to see a request part go on to the
/// router (or the connection to end), and only then runs Hummingbird's handling. A connection that
/// became an event stream before the router was needed ends its task at once
/// (``RouterWake/handOver()``): Hummingbird runs every connection's task as a child of one task
/// group, and the Swift runtime unlinks a finished child by walking the group's list of children,
/// so ten thousand streams closing together cost in proportion to the square of their number
/// (two fifths of a leaving subscriber's CPU, `perf`).
struct RouterChannel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let http: HTTP1Channel.Value
        /// True when the router is needed (or the connection ended); false when a handler took
        /// the connection over for good.
        let routerNeeded: EventLoopFuture<Bool>
        var channel: any Channel { http.channel }
    }

    let http: HTTP1Channel
    /// Handlers ahead of HTTP decoding, on the connection's bytes.
    let front: @Sendable () -> [any ChannelHandler]

    /// `configuration`'s additional handlers come first, then the ``RouterWake``.
    init(responder: @escaping HTTPChannelHandler.Responder, configuration: HTTP1Channel.Configuration, front: @escaping @Sendable () -> [any ChannelHandler]) {
        var configuration = configuration
        let handlers = configuration.additionalChannelHandlers
        configuration.additionalChannelHandlers = { handlers() + [RouterWake()] }
        http = HTTP1Channel(responder: responder, configuration: configuration)
        self.front = front
    }

    /// The first read of a connection takes up to 1 KiB, like nginx's `client_header_buffer_size`
    /// (NIO's default is 2 KiB; it adapts from there in both directions). The channel keeps its
    /// last receive buffer, and an event stream reads once, so this is what an idle one holds.
    static let receiveBuffer = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536)

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.syncOptions?.setOption(.recvAllocator, value: Self.receiveBuffer)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let front = front
        return http.setup(channel: channel, logger: logger).flatMapThrowing { value in
            try channel.pipeline.syncOperations.addHandlers(front(), position: .first)
            let wake = try channel.pipeline.syncOperations.handler(type: RouterWake.self)
            return Value(http: value, routerNeeded: wake.needed)
        }
    }

    func handle(value: Value, logger: Logger) async {
        let channel = value.channel
        let needed = await withTaskCancellationHandler {
            (try? await value.routerNeeded.get()) ?? true
        } onCancel: {
            channel.close(promise: nil)
        }
        // Taken over: the pipeline's handler serves and closes the connection. Hummingbird's
        // async channel is let go: its writer must be finished (NIO traps on one dropped
        // unfinished), which half-closes the output, and its reader asks for no more reads; the
        // handler allows for both (see ``RealtimeStream/handedOver``).
        guard needed else {
            value.http.outbound.finish()
            return
        }
        await http.handle(value: value.http, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with ``RouterChannel``'s lazily started request task.
    static func lazyHTTP1(configuration: HTTP1Channel.Configuration, front: @escaping @Sendable () -> [any ChannelHandler] = { [] }) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in RouterChannel(responder: responder, configuration: configuration, front: front) }
    }
}

/// The last handler before Hummingbird's: what reaches it goes to the router. Completes
/// `needed` with true at the first such request part, or when the connection ends; with false
/// when a handler ahead took the connection over first (``handOver()``).
final class RouterWake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private var promise: EventLoopPromise<Bool>?
    private(set) var needed: EventLoopFuture<Bool>!

    func handlerAdded(context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: Bool.self)
        self.promise = promise
        needed = promise.futureResult
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        wake()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        wake()
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        wake()
        context.fireChannelInactive()
    }

    /// A handler ahead serves the connection from now until it closes, and the router will never
    /// be needed: the connection's task may end. False when the router already runs (an earlier
    /// request of the connection went to it): its task then stays, as without this.
    func handOver() -> Bool {
        guard let promise else { return false }
        self.promise = nil
        promise.succeed(false)
        return true
    }

    private func wake() {
        promise?.succeed(true)
        promise = nil
    }
}
