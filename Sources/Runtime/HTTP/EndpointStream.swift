import Foundation
import HTTPTypes
import LuaBridge
import Logging
import NIOCore
import Prometheus
import NIOHTTPTypes
import Services
import Synchronization

/// `/apps/{app}/api/...` answered in the connection's channel pipeline, on its event loop.
///
/// Every HTTP/1 connection gets one of these handlers between HTTP decoding and Hummingbird. A
/// request for an endpoint of an active deployment is taken here: its body is gathered, its
/// handler runs on the VM this event loop has for the app (``LuaConfinedWorker``), and the answer
/// is written back from the same thread. A handler that makes no waiting host call costs no task
/// and no thread hand-off; one that waits (a write, a query) resumes here when the call is done.
/// Everything else (other routes, unknown apps and paths, CORS preflights) goes on to the router,
/// which answers as it always did. Answers leave in the order the requests came (HTTP pipelining):
/// a request that arrives while another is being answered waits for it.
final class EndpointStream: ChannelDuplexHandler, RemovableChannelHandler, PipelinedRequests {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// A request taken here, while its body arrives.
    struct Taken {
        let head: HTTPRequest
        let call: EndpointCall
        let query: String?
        var body: ByteBuffer?
    }

    enum Phase {
        /// Between requests.
        case idle
        /// The router is answering `inFlight` requests of this connection.
        case forwarding(inFlight: Int)
        /// Gathering a taken request's body.
        case reading(Taken)
        /// Its handler runs.
        case running
        /// The connection closes (or closed): nothing more is read or answered.
        case closed
    }

    let core: PiCloudCore
    var context: ChannelHandlerContext?
    var phase = Phase.idle
    /// Parts of requests that wait for the one being answered.
    var pending: [HTTPRequestPart] = []
    /// The decoder failed on what came behind the running request (e.g. data after
    /// `Connection: close`): answer it, then close.
    var closeAfterAnswer = false
    /// The server is shutting down while a request is read or runs here: its answer closes the
    /// connection.
    var quiescing = false
    /// What this connection's event loop keeps for its endpoint calls.
    private var locals: LoopLocals?

    init(core: PiCloudCore) {
        self.core = core
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        locals = LoopLocals.on(context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        phase = .closed
        self.context = nil
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard !closeAfterAnswer else { return }
        guard pending.isEmpty else {
            pending.append(part)
            return
        }
        switch phase {
        case .idle:
            if case .head(let head) = part {
                if let taken = take(head) {
                    phase = .reading(taken)
                    return
                }
                phase = .forwarding(inFlight: 1)
            }
            context.fireChannelRead(data)
        case .forwarding(let inFlight):
            if case .head(let head) = part {
                // Taken once the router has answered what came before it.
                if Self.mayTake(head) {
                    pending.append(part)
                    return
                }
                phase = .forwarding(inFlight: inFlight + 1)
            }
            context.fireChannelRead(data)
        case .reading(var taken):
            switch part {
            case .head:
                break // not from a well-formed decoder
            case .body(var chunk):
                let size = (taken.body?.readableBytes ?? 0) + chunk.readableBytes
                guard size <= core.configuration.maxBodyBytes else {
                    // The rest of the body is not worth reading: answer and close.
                    phase = .running
                    respond(.error(ServiceError(.payloadTooLarge, "the request body is larger than \(core.configuration.maxBodyBytes) bytes")),
                            requestID: Identifiers.requestID(), head: taken.head, close: true)
                    return
                }
                if taken.body == nil { taken.body = chunk } else { taken.body!.writeBuffer(&chunk) }
                phase = .reading(taken)
            case .end:
                phase = .running
                start(taken, context: context)
            }
        case .running:
            pending.append(part)
        case .closed:
            break
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        // The router finished an answer: when none is left, the connection is free again.
        if case .end = unwrapOutboundIn(data), case .forwarding(let inFlight) = phase {
            phase = inFlight > 1 ? .forwarding(inFlight: inFlight - 1) : .idle
            if case .idle = phase { replayPending(context: context) }
        }
    }

    /// Whether a request may be for an app endpoint (decided by ``take(_:)`` once it is its turn).
    static func mayTake(_ head: HTTPRequest) -> Bool {
        head.method != .options && head.path?.hasPrefix("/apps/") == true
    }

    /// The endpoint call for a request this handler answers, or nil to pass it on.
    func take(_ head: HTTPRequest) -> Taken? {
        guard Self.mayTake(head), let target = head.path else { return nil }
        let (path, query) = Self.split(target)
        guard let call = EndpointCall.resolve(path: path, method: head.method.rawValue, registry: core.registry) else { return nil }
        return Taken(head: head, call: call, query: query.map(String.init), body: nil)
    }

    static func split(_ target: String) -> (path: Substring, query: Substring?) {
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (target[...], nil) }
        return (target[..<mark], target[target.utf8.index(after: mark)...])
    }

    // MARK: Running

    func start(_ taken: Taken, context: ChannelHandlerContext) {
        var body = taken.body ?? ByteBuffer()
        let request = EndpointRequest(taken.head, body: body.readBytes(length: body.readableBytes) ?? [])
        let stream = NIOLoopBound(self, eventLoop: context.eventLoop)
        taken.call.run(request, core: core, locals: locals ?? LoopLocals.on(context.eventLoop)) { answer, requestID in
            stream.value.respond(answer, requestID: requestID, head: taken.head)
        }
    }

    /// Writes the answer; the connection is then free for the next request, or closed when the
    /// request asked for that.
    func respond(_ answer: EndpointAnswer, requestID: String, head request: HTTPRequest, close: Bool = false) {
        guard case .running = phase, let context else { return }
        let closing = close || closeAfterAnswer || quiescing || Self.closes(request)
        // Flushed now, not at the end of the turn: the metrics first.
        locals?.settle()
        let fields = answer.fields(requestID: requestID, origin: request.headerFields[CORSPolicy.origin], cors: core.configuration.cors, closing: closing)
        context.write(wrapOutboundOut(.head(HTTPResponse(status: answer.status, headerFields: fields))), promise: nil)
        if answer.hasBody, request.method != .head, answer.bodyCount > 0 { context.write(wrapOutboundOut(.body(answer.body)), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        if closing {
            phase = .closed
            pending = []
            context.close(promise: nil)
            return
        }
        phase = .idle
        replayPending(context: context)
    }

    /// Whether the request asks to close the connection after its answer.
    static func closes(_ head: HTTPRequest) -> Bool {
        head.headerFields[.connection]?.lowercased().contains("close") == true
    }

    func channelInactive(context: ChannelHandlerContext) {
        phase = .closed
        pending = []
        context.fireChannelInactive()
    }

    /// A graceful shutdown asks every connection to finish. Hummingbird's connection handler has
    /// not seen the requests answered here and would close at once, cutting off a running
    /// handler: while one is read or runs, the event stops here and its answer closes instead.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch (event, phase) {
        case (is ChannelShouldQuiesceEvent, .reading), (is ChannelShouldQuiesceEvent, .running):
            quiescing = true
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch phase {
        case .reading:
            // A client that sends garbage mid-request loses its connection; the router must not
            // answer into it.
            phase = .closed
            pending = []
            context.close(promise: nil)
        case .running:
            // Garbage behind a request being answered: the answer still goes out, then the
            // connection closes.
            closeAfterAnswer = true
            pending = []
        default:
            context.fireErrorCaught(error)
        }
    }
}

/// The `Date` header's value (RFC 9110 IMF-fixdate), formatted once a second.
enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((0, ""))

    /// The current second, from the coarse clock (the last tick's time): enough for whole
    /// seconds, and cheaper.
    static func coarseSecond() -> Int {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &time)
        return time.tv_sec
    }

    static var now: String {
        let second = coarseSecond()
        return cache.withLock { cached in
            if cached.second == second { return cached.text }
            var moment = time_t(second)
            var parts = tm()
            gmtime_r(&moment, &parts)
            let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
            let text = "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
                + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
            cached = (second, text)
            return text
        }
    }
}

/// A pipeline handler that holds back the parts of requests pipelined behind one it is answering
/// (or waiting for the router to answer), and replays them in order once the connection is free.
/// Its `channelRead` keeps appending to `pending` while `pending` is not empty.
protocol PipelinedRequests: ChannelInboundHandler where InboundIn == HTTPRequestPart, InboundOut == HTTPRequestPart {
    var pending: [HTTPRequestPart] { get set }
}

extension PipelinedRequests {
    func replayPending(context: ChannelHandlerContext) {
        guard !pending.isEmpty else { return }
        let parts = pending
        pending = []
        for part in parts { channelRead(context: context, data: wrapInboundOut(part)) }
        // Outside a read cycle: let the handlers behind (the router's) take what was passed on.
        context.fireChannelReadComplete()
    }
}
