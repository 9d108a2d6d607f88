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
/// router (or the connection to end), and only then runs Hummingbird's handling.
struct RouterChannel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let http: HTTP1Channel.Value
        let routerNeeded: EventLoopFuture<Void>
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
        await withTaskCancellationHandler {
            _ = try? await value.routerNeeded.get()
        } onCancel: {
            channel.close(promise: nil)
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
/// `needed` at the first such request part, or when the connection ends.
final class RouterWake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private var promise: EventLoopPromise<Void>?
    private(set) var needed: EventLoopFuture<Void>!

    func handlerAdded(context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: Void.self)
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

    private func wake() {
        promise?.succeed()
        promise = nil
    }
}
