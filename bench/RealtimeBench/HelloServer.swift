import NIOCore
import NIOPosix

/// bench/compare's floor for hello: the least a SwiftNIO server can do per request. Every request
/// is taken to be a GET without a body: each "\r\n\r\n" in the bytes read ends one, and is
/// answered with the same prebuilt response (a small JSON object, the framing nginx sends for
/// one); answers are flushed once per read. No HTTP parsing, routing, Lua or allocation per
/// request: whatever PiCloud does on top of SwiftNIO shows as the distance to this.
enum HelloServer {
    static func run(threads: Int, port: Int) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(HelloHandler()) }
            }
            .bind(host: "127.0.0.1", port: port).get()
        printError("listening on http://127.0.0.1:\(channel.localAddress!.port!)")
        try await channel.closeFuture.get()
    }
}

final class HelloHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let response = ByteBuffer(string:
        "HTTP/1.1 200 OK\r\nServer: hello\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n{\"hello\":\"world\"}\n")
    /// How many bytes of "\r\n\r\n" the last read ended with (a head split across reads).
    private var matched = 0
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        var heads = 0
        buffer.withUnsafeReadableBytes { bytes in
            for byte in bytes {
                switch (matched, byte) {
                case (0, 13), (2, 13): matched += 1
                case (1, 10): matched = 2
                case (3, 10): matched = 0; heads += 1
                case (_, 13): matched = 1
                default: matched = 0
                }
            }
        }
        for _ in 0..<heads { context.write(wrapOutboundOut(Self.response), promise: nil) }
        if heads > 0 { answered = true }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if answered { context.flush() }
        answered = false
    }
}
