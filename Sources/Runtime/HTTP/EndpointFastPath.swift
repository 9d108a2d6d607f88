import HTTPTypes
import NIOCore
import NIOHTTP1
import Prometheus

/// App endpoint calls read and answered straight from a connection's bytes, ahead of NIO's HTTP/1
/// decoder.
///
/// The first handler of every connection. While a connection sends only well-formed HTTP/1.1
/// requests for endpoints of active deployments — what API clients and benchmarks do — their
/// heads are read here (``HTTP1Head``), the handler runs as in ``EndpointStream``, and the answer
/// is encoded into one buffer and written to the socket: no decoder state machine, no HTTPTypes
/// conversion, no hop through five handlers and back. CORS preflights for `/apps/` are answered
/// here too, as the router answers them. The first request that is anything else (a
/// route of the router, an event stream, an unknown app or path, a head this reader does not take
/// in full) goes, with every byte after it, on to the decoder, and the usual pipeline serves the
/// connection, answers in the order of requests included, since nothing is handed on while an
/// answer is pending here. This handler follows where each request handed on ends, as long as it
/// can read their heads, and takes the connection back at a request for it that comes once the
/// usual pipeline has answered all it was given (``RequestGuard`` counts its answers): a browser
/// connection that first fetched `/client/picloud.js` calls the API here again.
final class EndpointFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer

    enum Phase {
        /// Between requests.
        case idle
        /// A request's handler runs; what arrives meanwhile waits in `buffer`.
        case running
        /// Handed on to the decoder, which reads what arrives (see `following`).
        case done
        /// The connection closes (or closed) after an answer: nothing more is read.
        case closed
    }

    let core: PiCloudCore
    private var context: ChannelHandlerContext?
    private var phase = Phase.idle
    /// Bytes received and not yet taken.
    private var buffer: ByteBuffer?
    /// Inside `channelRead`: a read-complete follows by itself.
    private var reading = false
    /// Inside ``takeRequests(context:)``: answers given meanwhile are flushed at its end, and
    /// it goes on with the next request itself.
    private var taking = false
    /// Answers written and not yet flushed.
    private var unflushed = false
    /// The flushes of this connection's event loop.
    private var flushes: TurnFlushes?
    /// What this connection's event loop keeps for its endpoint calls.
    private var locals: LoopLocals?
    /// This handler asks for the connection's reads itself (the channel's `autoRead` is off until
    /// it leaves): a read asked for by the channel goes from the pipeline's tail through every
    /// handler behind this one, none of which has seen a byte yet — 3–5 % of the samples of a
    /// profile under load.
    private var readsItself = false
    /// A read the channel asked for, held while a handler runs with much buffered behind it.
    private var heldRead = false
    /// The server is shutting down (`ChannelShouldQuiesceEvent`) while a request was running or
    /// arriving here: its answer closes the connection.
    private var quiescing = false
    /// The connection's ``RequestGuard``, which counts the usual pipeline's answers (found at the
    /// first hand-on).
    private var answers: RequestGuard?
    /// Handed on (`.done`): every request handed on since had a head ``HTTP1Head`` reads, so this
    /// handler knows where each ends (llhttp reads such heads the same way, a tested claim) and
    /// may take the connection back between them.
    private var following = false
    /// The start of a request handed on whose head has not all arrived.
    private var partialHead: ByteBuffer?
    /// Body bytes still to come of the last request handed on.
    private var bodyLeft = 0
    /// Requests handed on whole over the connection's life.
    private var handedOn = 0
    /// Bytes buffered behind a running handler before reading stops until it is answered.
    private var readLimit: Int { core.configuration.maxBodyBytes + HTTP1Head.maxBytes }

    init(core: PiCloudCore) {
        self.core = core
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        flushes = TurnFlushes.on(context.eventLoop)
        locals = LoopLocals.on(context.eventLoop)
        readsItself = (try? context.channel.syncOptions?.setOption(.autoRead, value: false)) != nil
        if readsItself, context.channel.isActive { context.read() }
    }

    func channelActive(context: ChannelHandlerContext) {
        if readsItself { context.read() }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        phase = .done
        buffer = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch phase {
        case .idle, .running:
            var incoming = unwrapInboundIn(data)
            if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
            reading = true
            takeRequests(context: context)
            reading = false
        case .done:
            let incoming = unwrapInboundIn(data)
            guard canTakeBack(incoming) else {
                follow(incoming)
                context.fireChannelRead(data)
                return
            }
            // Back from the usual pipeline, which holds nothing and has answered everything.
            phase = .idle
            following = false
            readsItself = (try? context.channel.syncOptions?.setOption(.autoRead, value: false)) != nil
            buffer = incoming
            reading = true
            takeRequests(context: context)
            reading = false
        case .closed:
            break
        }
    }

    /// Whether `bytes`, arriving after the connection was handed on, start a request for this path
    /// at a point where the usual pipeline holds no byte and owes no answer.
    private func canTakeBack(_ bytes: ByteBuffer) -> Bool {
        guard following, partialHead == nil, bodyLeft == 0, let answers, answers.answered == handedOn else { return false }
        switch bytes.withUnsafeReadableBytes({ HTTP1Head.parse($0, prefix: "/apps/") }) {
        case .incomplete: return true // if it turns out to be another request, it is handed on again
        case .other: return false
        case .head(let head): return answer(for: head) != nil
        }
    }

    /// Counts the requests in `bytes`, handed on, that are now whole; stops following at a head
    /// ``HTTP1Head`` does not read (another version, chunked bodies, an upgrade, ...).
    private func follow(_ bytes: ByteBuffer) {
        var rest = bytes
        while following, rest.readableBytes > 0 {
            if bodyLeft > 0 {
                let taken = min(bodyLeft, rest.readableBytes)
                rest.moveReaderIndex(forwardBy: taken)
                bodyLeft -= taken
                if bodyLeft == 0 { handedOn += 1 }
                continue
            }
            var head = rest
            let earlier = partialHead?.readableBytes ?? 0
            if var partial = partialHead {
                partial.writeImmutableBuffer(rest)
                head = partial
            }
            switch head.withUnsafeReadableBytes({ HTTP1Head.parse($0, prefix: "/") }) {
            case .incomplete:
                partialHead = head
                return
            case .other:
                following = false
                partialHead = nil
            case .head(let parsed):
                partialHead = nil
                rest.moveReaderIndex(forwardBy: parsed.length - earlier)
                if parsed.contentLength > 0 { bodyLeft = parsed.contentLength } else { handedOn += 1 }
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        switch phase {
        case .done:
            context.fireChannelReadComplete()
        case .idle, .running:
            // The handlers behind have seen none of this read (what was handed on got its own);
            // the next read is this handler's to ask for, as the channel would have.
            if readsItself { read(context: context) }
        case .closed:
            break
        }
    }

    func read(context: ChannelHandlerContext) {
        if case .running = phase, let buffer, buffer.readableBytes > readLimit {
            heldRead = true
            return
        }
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        phase = .closed
        buffer = nil
        context.fireChannelInactive()
    }

    /// A graceful shutdown asks every connection to finish. The handlers behind this one have seen
    /// none of the requests answered here, so they would close the connection at once, cutting
    /// off a running handler: while a request runs or is arriving, the event stops here and that
    /// request's answer closes the connection instead.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch phase {
        case .running:
            quiescing = true
        case .idle where (buffer?.readableBytes ?? 0) > 0:
            quiescing = true
        case .idle, .done, .closed:
            following = false // the usual pipeline closes the connection once it has answered
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// Answers the requests in `buffer` one after the other, until one is incomplete, waits for
    /// its handler, or is not for this path.
    private func takeRequests(context: ChannelHandlerContext) {
        taking = true
        defer {
            taking = false
            flushAnswers(context: context)
            if heldRead, case .idle = phase {
                heldRead = false
                context.read()
            }
        }
        while case .idle = phase, let bytes = buffer, bytes.readableBytes > 0 {
            switch bytes.withUnsafeReadableBytes({ HTTP1Head.parse($0, prefix: "/apps/") }) {
            case .incomplete:
                return
            case .other:
                handOn(context: context)
                return
            case .head(let head):
                guard head.contentLength <= core.configuration.maxBodyBytes, let locals, let answer = answer(for: head) else {
                    // The decoder answers it (413, 404, 405, ...) as for any connection.
                    handOn(context: context)
                    return
                }
                let size = head.length + head.contentLength
                guard bytes.readableBytes >= size else { return } // the rest of the body is on its way
                let body = bytes.getBytes(at: bytes.readerIndex + head.length, length: head.contentLength) ?? []
                buffer!.moveReaderIndex(forwardBy: size)
                if buffer!.readableBytes == 0 { buffer = nil }
                phase = .running
                guard case .call(let call, let query) = answer else {
                    answerPreflight(head, context: context)
                    continue
                }
                let request = EndpointRequest(
                    method: head.method, query: query, fields: head.fields, contentType: head.contentType, authorization: head.authorization, body: body
                )
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                call.run(request, core: core, locals: locals) { answer, requestID in
                    handler.value.respond(answer, requestID: requestID, head: head)
                }
            }
        }
    }

    /// What this path answers a request with.
    private enum Answer {
        case call(EndpointCall, query: Substring?)
        /// A CORS preflight, answered as the router answers it, so that a browser's first
        /// cross-origin call does not move its connection to the router. Any other `OPTIONS` is the
        /// router's (404, 405, or an endpoint of any method).
        case preflight
    }

    /// How this path answers `head`, or nil when the router is to.
    private func answer(for head: HTTP1Head) -> Answer? {
        if head.method == "OPTIONS" { return head.asksPreflight ? .preflight : nil }
        let target = EndpointStream.split(head.target)
        return EndpointCall.resolve(path: target.path, method: head.method, registry: core.registry).map { .call($0, query: target.query) }
    }

    /// Writes the answer as one buffer; then takes the next request, or closes when the request
    /// asked for that.
    private func respond(_ answer: EndpointAnswer, requestID: String, head: HTTP1Head) {
        guard case .running = phase, let context, let locals else { return }
        let sendsBody = answer.hasBody && head.method != "HEAD"
        let closing = head.closes || quiescing
        var out = answer.head(
            allocator: context.channel.allocator, reserving: sendsBody ? answer.bodyCount : 0,
            requestID: requestID, origin: head.origin, cors: core.configuration.cors, closing: closing, date: locals.date
        )
        if sendsBody { answer.writeBody(into: &out) }
        send(out, closing: closing, context: context)
    }

    /// The answer to a CORS preflight: the bytes the router's ``CORSMiddleware`` answers with
    /// (no request id, and, as there, no `Connection: close` when the request asked to close).
    private func answerPreflight(_ head: HTTP1Head, context: ChannelHandlerContext) {
        let fields = core.configuration.cors.preflightFields(origin: head.origin, requestHeaders: head.preflightHeaders)
        var out = context.channel.allocator.buffer(capacity: 128 + fields.reduce(0) { $0 + $1.name.rawName.utf8.count + $1.value.utf8.count + 4 })
        out.writeStaticString("HTTP/1.1 204 No Content\r\n")
        for field in fields {
            out.writeString(field.name.rawName)
            out.writeStaticString(": ")
            out.writeString(field.value)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("Date: ")
        out.writeString(locals?.date ?? HTTPDate.now)
        out.writeStaticString("\r\nServer: PiCloud\r\n\r\n")
        send(out, closing: head.closes || quiescing, context: context)
    }

    /// Writes an answer; then takes the next request, or closes the connection.
    private func send(_ out: ByteBuffer, closing: Bool, context: ChannelHandlerContext) {
        if closing {
            phase = .closed
            buffer = nil
            unflushed = false
            let channel = context.channel
            context.writeAndFlush(NIOAny(out)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        phase = .idle
        if taking {
            // Answered while taking requests: the loop there goes on, and flushes once at its end.
            context.write(NIOAny(out), promise: nil)
            unflushed = true
            return
        }
        // Answered later (the handler waited): flushed when taking the requests behind it ends.
        context.write(NIOAny(out), promise: nil)
        unflushed = true
        takeRequests(context: context)
    }

    /// Answers are flushed once the loop has handled what is ready in this turn (``TurnFlushes``).
    private func flushAnswers(context: ChannelHandlerContext) {
        guard unflushed else { return }
        unflushed = false
        if let flushes { flushes.add(self) } else { context.flush() }
    }

    /// Called by ``TurnFlushes`` at the end of the loop's turn (nothing to flush once handed on:
    /// it flushed what it wrote then).
    func flushNow() {
        context?.flush()
    }

    /// Passes what is buffered, and everything after it, on to the decoder.
    private func handOn(context: ChannelHandlerContext) {
        core.metrics.fastPathHandOns.increment()
        // Now, not at the end of the turn: what the decoder's handlers write goes out behind it.
        unflushed = false
        context.flush()
        phase = .done
        if answers == nil { answers = try? context.pipeline.syncOperations.handler(type: RequestGuard.self) }
        following = answers != nil && !quiescing
        partialHead = nil
        bodyLeft = 0
        if let bytes = buffer {
            buffer = nil
            follow(bytes)
            context.fireChannelRead(wrapInboundOut(bytes))
            // Outside a read (after an answer), the decoder's handlers need the read's end too.
            if !reading { context.fireChannelReadComplete() }
        }
        if readsItself {
            // The handlers behind now read as usual.
            readsItself = false
            try? context.channel.syncOptions?.setOption(.autoRead, value: true)
            heldRead = false
            context.read()
        } else if heldRead {
            heldRead = false
            context.read()
        }
        // The shutdown's request to finish was held here for what arrived: the router's
        // handlers now have it, and close after answering it.
        if quiescing { context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
    }
}
