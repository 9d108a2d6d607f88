import NIOCore
import NIOPosix

/// A response read by `HTTPConnection`.
struct HTTPResponse: Sendable {
    var status: Int
    var body: ByteBuffer
}

/// One keep-alive HTTP/1.1 connection for the benchmark's own requests (publishing, polling the
/// subscriber count); requests wait for each other's answers.
struct HTTPConnection: Sendable {
    let channel: any Channel
    let host: String

    static func connect(group: any EventLoopGroup, host: String, port: Int) async throws -> HTTPConnection {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ResponseHandler()) }
            }
            .connect(host: host, port: port).get()
        return HTTPConnection(channel: channel, host: "\(host):\(port)")
    }

    func get(_ path: String) async throws -> HTTPResponse {
        try await send("GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n")
    }

    func post(_ path: String, json: String) async throws -> HTTPResponse {
        try await start(ByteBuffer(string: Self.post(path, host: host, json: json)), flush: true).get()
    }

    static func post(_ path: String, host: String, json: String) -> String {
        "POST \(path) HTTP/1.1\r\nHost: \(host)\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)"
    }

    private func send(_ text: String) async throws -> HTTPResponse {
        try await start(ByteBuffer(string: text), flush: true).get()
    }

    /// Writes a request without waiting for earlier answers (they arrive in order), flushed now or
    /// by a later `flush()`: for open-loop load. On the channel's event loop only when not flushed.
    func start(_ request: ByteBuffer, flush: Bool) -> EventLoopFuture<HTTPResponse> {
        let promise = channel.eventLoop.makePromise(of: HTTPResponse.self)
        let request = ResponseHandler.Request(bytes: request, response: promise)
        if flush { channel.writeAndFlush(request, promise: nil) } else { channel.write(request, promise: nil) }
        return promise.futureResult
    }

    func flush() {
        channel.flush()
    }

    func close() async {
        try? await channel.close()
    }
}

/// Writes requests and matches the responses to them in order.
final class ResponseHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Request
    typealias OutboundOut = ByteBuffer

    struct Request: Sendable {
        var bytes: ByteBuffer
        var response: EventLoopPromise<HTTPResponse>
    }

    struct Closed: Error {}

    private enum Body {
        case length(Int)
        case chunked(ChunkedDecoder)
    }

    private var waiting: [EventLoopPromise<HTTPResponse>] = []
    private var pending = ByteBuffer()
    private var head: HTTPHead?
    private var body: Body?
    private var content = ByteBuffer()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        waiting.append(request.response)
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        pending.writeBuffer(&buffer)
        do {
            while try step() {}
        } catch {
            context.fireErrorCaught(error)
            failAll(error)
            context.close(promise: nil)
        }
    }

    /// Reads what `pending` holds of the current response; true if it completed one.
    private func step() throws -> Bool {
        if head == nil {
            guard let next = try HTTPHead.take(from: &pending, isResponse: true) else { return false }
            head = next
            body = next.chunked ? .chunked(ChunkedDecoder()) : .length(next.contentLength ?? 0)
            content = ByteBuffer()
        }
        switch body! {
        case .length(let length):
            let n = min(length - content.readableBytes, pending.readableBytes)
            var piece = pending.readSlice(length: n)!
            content.writeBuffer(&piece)
            guard content.readableBytes == length else { return false }
        case .chunked(var decoder):
            let consumed = try pending.withUnsafeReadableBytes { bytes in
                var offset = 0
                while let data = try decoder.nextData(bytes, from: &offset) { content.writeBytes(data) }
                return offset
            }
            pending.moveReaderIndex(forwardBy: consumed)
            body = .chunked(decoder)
            guard decoder.isDone else { return false }
        }
        let response = HTTPResponse(status: head!.status, body: content)
        head = nil
        body = nil
        if !waiting.isEmpty { waiting.removeFirst().succeed(response) }
        return true
    }

    private func failAll(_ error: any Error) {
        let all = waiting
        waiting = []
        for promise in all { promise.fail(error) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(Closed())
        context.fireChannelInactive()
    }
}
