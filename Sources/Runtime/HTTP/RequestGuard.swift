import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Services

/// The first handler of every connection after HTTP decoding: refuses what no route should see,
/// in the API's one error shape, and closes the connection.
///
/// - a request target longer than ``maxTargetBytes``: 414;
/// - a request line and headers over the decoder's limits (80 KiB each, 1,000 fields): 431;
/// - bytes that are not HTTP/1.1 (a bad `Content-Length`, garbage): 400.
///
/// The answer is written only between requests; a decoding error behind a request still being
/// answered closes the connection after it, as before.
final class RequestGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Longest request target (path and query) accepted.
    static let maxTargetBytes = 8192

    /// Requests read whose answer has not ended yet.
    private var open = 0
    /// Answers ended over the connection's life (``EndpointFastPath`` takes a connection back
    /// when every request it handed on has one).
    private(set) var answered = 0
    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        if case .head(let head) = unwrapInboundIn(data) {
            open += 1
            if let target = head.path, target.utf8.count > Self.maxTargetBytes, open == 1 {
                refuse(context: context, status: .uriTooLong, code: .invalidInput, message: "the request target is longer than \(Self.maxTargetBytes) bytes")
                return
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            open = max(0, open - 1)
            answered += 1
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, !refused, open == 0 else {
            context.fireErrorCaught(error)
            return
        }
        switch parserError {
        case .headerOverflow:
            refuse(context: context, status: .requestHeaderFieldsTooLarge, code: .invalidInput,
                   message: "the request line and headers are too large (at most 80 KiB each and 1,000 fields)")
        default:
            refuse(context: context, status: .badRequest, code: .invalidInput, message: "malformed HTTP request")
        }
    }

    private func refuse(context: ChannelHandlerContext, status: HTTPResponse.Status, code: ServiceError.Code, message: String) {
        refused = true
        let body = ErrorMiddleware<PiCloudRequestContext>.body(code: code.rawValue, message: message)
        let fields: HTTPFields = [
            .contentType: "application/json; charset=utf-8", .contentLength: String(body.readableBytes), .connection: "close",
            .date: HTTPDate.now, .server: "PiCloud",
        ]
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.close(promise: nil)
    }
}
