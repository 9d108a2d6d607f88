import NIOCore
import NIOPosix
import Synchronization

/// The baseline: a bare SwiftNIO HTTP server (no PiCloud, Lua or database) that speaks the same
/// protocol as PiCloud's realtime endpoint, so the same client can measure the cost of fan-out
/// itself. `GET …/realtime/…` starts a stream (same head, `retry:` line, chunked),
/// `POST …/publish` writes one event frame of PiCloud's shape to every stream, `GET /count`
/// answers the number of open streams, `GET /hello` a small JSON object (bench/compare's floor).
enum BaselineServer {
    static func run(threads: Int, port: Int) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let hub = try await BaselineHub(group: group)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(BaselineHandler(hub: hub, streams: hub.streams(on: channel.eventLoop)))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        printError("listening on http://127.0.0.1:\(channel.localAddress!.port!)")
        try await channel.closeFuture.get()
    }
}

/// The open streams of one event loop; touched only on that loop.
final class LoopStreams {
    var channels: [ObjectIdentifier: any Channel] = [:]
}

/// Every loop's streams, and the event ids.
final class BaselineHub: Sendable {
    let loops: [NIOLoopBound<LoopStreams>]
    private let sequence = Atomic<Int>(0)

    init(group: any EventLoopGroup) async throws {
        var loops: [NIOLoopBound<LoopStreams>] = []
        for loop in group.makeIterator() {
            loops.append(try await loop.submit { NIOLoopBound(LoopStreams(), eventLoop: loop) }.get())
        }
        self.loops = loops
    }

    func streams(on loop: any EventLoop) -> LoopStreams {
        loops.first { $0.eventLoop === loop }!.value
    }

    /// Builds the frame once and hands it to each loop, which writes it to its own streams.
    func publish(_ message: ByteBuffer) -> Int {
        let id = sequence.add(1, ordering: .relaxed).newValue
        let publishedAt = wallMicros() / 1000
        var frame = ByteBuffer(string: "id: \(id)\ndata: {\"id\":\"\(id)\",\"topic\":\"bench\",\"message\":")
        frame.writeImmutableBuffer(message)
        frame.writeString(",\"published_at\":\(publishedAt)}\n\n")
        let chunk = ByteBuffer.chunk(frame)
        for bound in loops {
            bound.eventLoop.execute {
                for channel in bound.value.channels.values { channel.writeAndFlush(chunk, promise: nil) }
            }
        }
        return id
    }

    func count(on loop: any EventLoop) -> EventLoopFuture<Int> {
        let counts = loops.map { bound in bound.eventLoop.submit { bound.value.channels.count } }
        return EventLoopFuture.reduce(0, counts, on: loop, +)
    }
}

/// One connection to the baseline server.
final class BaselineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let hub: BaselineHub
    private let streams: LoopStreams
    private var pending = ByteBuffer()
    private var head: HTTPHead?
    private var isStream = false

    static let streamHead = ByteBuffer(string:
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\ntransfer-encoding: chunked\r\n\r\n")
    static let retry = ByteBuffer.chunk(ByteBuffer(string: "retry: 2000\n\n"))

    init(hub: BaselineHub, streams: LoopStreams) {
        self.hub = hub
        self.streams = streams
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !isStream else { return }
        var buffer = unwrapInboundIn(data)
        pending.writeBuffer(&buffer)
        do {
            while !isStream {
                if head == nil {
                    guard let next = try HTTPHead.take(from: &pending, isResponse: false) else { return }
                    head = next
                }
                let length = head!.contentLength ?? 0
                guard let body = pending.readSlice(length: length) else { return }
                let request = head!
                head = nil
                handle(request, body: body, context: context)
            }
        } catch {
            context.close(promise: nil)
        }
    }

    private func handle(_ request: HTTPHead, body: ByteBuffer, context: ChannelHandlerContext) {
        switch (request.method, request.path) {
        case ("GET", let path) where path.contains("/realtime/"):
            isStream = true
            streams.channels[ObjectIdentifier(context.channel)] = context.channel
            context.write(wrapOutboundOut(Self.streamHead), promise: nil)
            context.writeAndFlush(wrapOutboundOut(Self.retry), promise: nil)
        case ("POST", let path) where path.hasSuffix("/publish"):
            let id = hub.publish(body)
            respond("{\"id\":\"\(id)\"}", type: "application/json", context: context)
        case ("GET", "/hello"):
            // bench/compare's hello, without Lua or routing: what SwiftNIO alone answers at.
            respond(#"{"hello":"world"}"#, type: "application/json", context: context)
        case ("GET", "/count"):
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            hub.count(on: context.eventLoop).whenSuccess { count in
                let (handler, context) = loopBound.value
                handler.respond("\(count)", type: "text/plain", context: context)
            }
        default:
            respond("not found", type: "text/plain", status: "404 Not Found", context: context)
        }
    }

    private func respond(_ text: String, type: String, status: String = "200 OK", context: ChannelHandlerContext) {
        let response = "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(text.utf8.count)\r\n\r\n\(text)"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response)), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if isStream { streams.channels[ObjectIdentifier(context.channel)] = nil }
        context.fireChannelInactive()
    }
}
