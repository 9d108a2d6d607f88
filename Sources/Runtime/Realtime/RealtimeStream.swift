import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes
import Prometheus
import Services

/// `GET /apps/{app}/realtime/{topic}`: a topic's events as Server-Sent Events, served from the
/// connection's channel pipeline.
///
/// Every HTTP/1 connection gets one of these handlers between HTTP decoding and Hummingbird's
/// request handling. Requests for other paths pass through untouched. A realtime request is taken
/// here: checked in a short-lived task (topic, token, `Last-Event-ID`), then answered and streamed
/// by this handler on the connection's event loop, so an open stream costs no task and no task
/// stack, and a new event is written to it by its event loop directly (see ``RealtimeHub``).
///
/// A missing app, a missing topic and a topic that is not externally subscribable all answer the
/// same 404; every token failure answers the same 401. A subscriber that sends `Last-Event-ID`
/// (or `?last_event_id=`) first gets the events it missed from the topic's history, then live
/// ones, with no duplicate and no hole at the switch; what the history no longer holds is
/// announced with an `event: gap` frame. The same catching up serves a subscriber whose network
/// is too slow for the live pace.
final class RealtimeStream: ChannelDuplexHandler, RemovableChannelHandler, PipelinedRequests {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Reconnection delay browsers are told to use (`retry:`), in milliseconds.
    static let retryMilliseconds = 2000
    /// History events read per query while catching up.
    static let historyPage = 500
    static let lastEventIDHeader = HTTPField.Name("Last-Event-ID")!
    static let requestIDHeader = HTTPField.Name("X-Request-Id")!
    static let accelBufferingHeader = HTTPField.Name("X-Accel-Buffering")!
    static let heartbeatChunk = RealtimeHub.chunk(ByteBuffer(string: ": heartbeat\n\n"))

    enum Phase {
        /// Between requests.
        case idle
        /// Hummingbird is answering `inFlight` requests of this connection.
        case forwarding(inFlight: Int)
        /// A realtime request arrived; waiting for its end.
        case reading(HTTPRequest)
        /// Checking it.
        case checking(requestID: String)
        /// Streaming events.
        case streaming
        /// The stream ended or the connection closed.
        case ended
    }

    let core: PiCloudCore
    var context: ChannelHandlerContext?
    /// Where a stream writes its body: the front of the pipeline, below the HTTP encoder, so an
    /// event framed once as an HTTP chunk goes to every subscriber as is (see ``RawBodyWriter``).
    var body: ChannelHandlerContext?
    var phase = Phase.idle
    /// CORS headers for the request being answered (from its Origin).
    var corsFields: HTTPFields = [:]
    /// Parts that arrived behind a realtime request while Hummingbird still answered earlier
    /// requests of the connection (HTTP pipelining); replayed once it has.
    var pending: [HTTPRequestPart] = []
    /// A request asked to close the connection after its answer: nothing after it is served.
    var closeAfterResponse = false
    /// Parts of a request that came after one that closes the connection are dropped.
    var dropping = false

    // While streaming:
    var membership: RealtimeMembership?
    var app = ""
    var topic = ""
    /// The id of the last event sent.
    var position: Int64 = 0
    /// The topic's newest id when the stream joined its channel: everything after it is in the ring.
    var floor: Int64 = 0
    /// Whether new events are handed over as they are broadcast.
    var live = false
    var fetching = false
    var historyFailures = 0
    var waitingForWritability = false
    /// The connection's Hummingbird task ended when the stream started (``RouterWake/handOver()``).
    /// Its async channel then no longer asks for reads, and its writer, finishing, half-closes
    /// the output: this handler asks for reads itself, to see the subscriber leave, and keeps the
    /// output open.
    var handedOver = false

    init(core: PiCloudCore) {
        self.core = core
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish()
        self.context = nil
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch phase {
        case .idle:
            if case .head(let head) = part, Self.isRealtime(head) {
                phase = .reading(head)
            } else {
                if case .head(let head) = part {
                    phase = .forwarding(inFlight: 1)
                    if Self.closes(head) { closeAfterResponse = true }
                }
                context.fireChannelRead(data)
            }
        case .forwarding(let inFlight):
            if case .head(let head) = part {
                if closeAfterResponse {
                    dropping = true // no request after one that closes the connection
                    break
                }
                if !pending.isEmpty || Self.isRealtime(head) {
                    pending.append(part)
                } else {
                    phase = .forwarding(inFlight: inFlight + 1)
                    if Self.closes(head) { closeAfterResponse = true }
                    context.fireChannelRead(data)
                }
            } else if dropping {
                break
            } else if !pending.isEmpty {
                pending.append(part) // the rest of a queued request
            } else {
                context.fireChannelRead(data)
            }
        case .reading(let head):
            if case .end = part {
                if Self.closes(head) { closeAfterResponse = true }
                check(head, context: context)
            }
        case .checking:
            // Requests pipelined behind the subscription: answered by Hummingbird if the
            // subscription is refused (the connection is then free again), dropped otherwise.
            if !closeAfterResponse { pending.append(part) }
        case .streaming, .ended:
            break // a streaming connection serves nothing else
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        // Hummingbird finished a response: when none is left, the connection is free again.
        if case .end = unwrapOutboundIn(data), case .forwarding(let inFlight) = phase {
            phase = inFlight > 1 ? .forwarding(inFlight: inFlight - 1) : .idle
            if case .idle = phase { replayPending(context: context) }
        }
    }

    /// Whether the request asks to close the connection after its answer.
    static func closes(_ head: HTTPRequest) -> Bool {
        head.headerFields[.connection]?.lowercased().contains("close") == true
    }

    static func isRealtime(_ head: HTTPRequest) -> Bool {
        // A CORS preflight goes on to the router, whose middleware answers it.
        guard head.method != .options, let path = head.path else { return false }
        return RealtimeRequest.match(path) != nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Handed over, nobody behind asks for more: keep reading, or a subscriber that sent
        // something would not be seen leaving.
        if handedOver, case .streaming = phase { context.read() }
        context.fireChannelReadComplete()
    }

    /// Lets the connection's Hummingbird task end (``RouterWake/handOver()``), unless the router
    /// already runs for it, and keeps reading.
    private func handOver(context: ChannelHandlerContext) {
        // The endpoint fast path waits behind a connection it handed on to take it back between
        // requests; a stream has no more requests: it leaves, and its memory with it.
        if let fastPath = try? context.pipeline.syncOperations.handler(type: EndpointFastPath.self) {
            context.pipeline.syncOperations.removeHandler(fastPath, promise: nil)
        }
        // Set first: the task, once ended, finishes its writer, whose half-close must find it.
        handedOver = true
        guard let wake = try? context.pipeline.syncOperations.handler(type: RouterWake.self), wake.handOver() else {
            handedOver = false
            return
        }
        context.read()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // Handed over, the only half-close is Hummingbird's writer finishing with its task.
        if handedOver, mode == .output {
            promise?.succeed(())
            return
        }
        context.close(mode: mode, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The subscriber closed its side: it is gone.
        if let event = event as? ChannelEvent, event == .inputClosed {
            switch phase {
            case .checking, .streaming: context.close(promise: nil)
            default: break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A subscriber that sends garbage loses its stream; Hummingbird must not answer into it.
        switch phase {
        case .checking, .streaming:
            finish()
            context.close(promise: nil)
        default:
            context.fireErrorCaught(error)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .streaming = phase, waitingForWritability, context.channel.isWritable {
            waitingForWritability = false
            pump()
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Streaming

    func start(_ request: RealtimeRequest, membership: RealtimeMembership, floor: Int64, requestID: String) {
        guard case .checking = phase, let context else {
            membership.leave() // the connection closed meanwhile
            return
        }
        phase = .streaming
        self.membership = membership
        app = request.app
        topic = request.topic
        self.floor = floor
        var fields: HTTPFields = [
            .contentType: "text/event-stream", .cacheControl: "no-cache", Self.accelBufferingHeader: "no", Self.requestIDHeader: requestID,
        ]
        fields.append(contentsOf: corsFields)
        context.write(wrapOutboundOut(.head(HTTPResponse(status: .ok, headerFields: fields))), promise: nil)
        handOver(context: context)
        do {
            let writer = RawBodyWriter()
            try context.pipeline.syncOperations.addHandler(writer, position: .first)
            body = try context.pipeline.syncOperations.context(handler: writer)
        } catch {
            core.logger.error("realtime: cannot set up a stream: \(error)")
            end(event: nil, reason: nil)
            return
        }
        // A new subscriber learns where it starts (`id:` of the newest event): if its connection
        // drops before the first event, it resumes from there and misses nothing.
        var opening = ByteBuffer(string: "retry: \(Self.retryMilliseconds)\n" + (request.resumeAfter == nil ? "id: \(floor)\n" : "") + "\n")
        position = floor
        if let resume = request.resumeAfter {
            core.metrics.realtimeReplays.increment()
            if resume > floor {
                // An id this topic never gave (it was deleted and registered again): start afresh.
                opening.writeImmutableBuffer(Self.gap(from: nil, to: floor, reason: "unknown_event_id"))
            } else {
                position = resume
            }
        }
        write(opening)
        pump()
        context.flush()
    }

    /// Writes SSE bytes as one HTTP chunk.
    func write(_ bytes: ByteBuffer) {
        writeChunk(RealtimeHub.chunk(bytes))
    }

    /// Writes bytes already framed as an HTTP chunk.
    func writeChunk(_ chunk: ByteBuffer) {
        body?.write(NIOAny(IOData.byteBuffer(chunk)), promise: nil)
    }

    /// A new event, handed over by the hub on this event loop; true when it was written.
    func deliver(seq: Int64, frame: ByteBuffer) -> Bool {
        guard case .streaming = phase, live, seq > position, let context else { return false }
        if seq == position + 1, context.channel.isWritable, let body {
            body.writeAndFlush(NIOAny(IOData.byteBuffer(frame)), promise: nil)
            position = seq
            return true
        }
        // Behind: the network is slower than the events (or an id is missing). Leave live
        // delivery and catch up from the ring and the history at the pace the subscriber reads.
        live = false
        membership?.pause()
        if context.channel.isWritable { pump() } else { waitingForWritability = true }
        return false
    }

    func heartbeat() {
        guard case .streaming = phase, let context, context.channel.isWritable else { return }
        writeChunk(Self.heartbeatChunk)
        context.flush()
    }

    /// Ends the stream: with `event: <event>` and a reason when given (token expired, topic
    /// closed), quietly at shutdown; then closes the connection.
    func end(event: String?, reason: String?) {
        guard let context else { return }
        switch phase {
        case .streaming:
            if let event {
                let data = String(decoding: EventJSON.object([("reason", EventJSON.string(reason ?? event))]), as: UTF8.self)
                write(ByteBuffer(string: "event: \(event)\ndata: \(data)\n\n"))
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            finish()
            context.close(promise: nil)
        case .checking:
            finish()
            context.close(promise: nil)
        default:
            break
        }
    }

    func finish() {
        phase = .ended
        live = false
        membership?.leave()
        membership = nil
    }

    /// `event: gap` for ids `from...to` that cannot be delivered. Its `id:` moves the client past
    /// them, so a reconnect does not ask for them again.
    static func gap(from: Int64?, to: Int64, reason: String) -> ByteBuffer {
        var fields: [(String, [UInt8])] = []
        if let from { fields += [("from", EventJSON.string(String(from))), ("missed", EventJSON.integer(to - from + 1))] }
        fields += [("to", EventJSON.string(String(to))), ("reason", EventJSON.string(reason))]
        return ByteBuffer(string: "id: \(to)\nevent: gap\ndata: \(String(decoding: EventJSON.object(fields), as: UTF8.self))\n\n")
    }
}
