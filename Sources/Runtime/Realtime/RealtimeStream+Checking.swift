import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes
import Services

/// Checking a realtime request: the topic, the token, `Last-Event-ID`, and the quota; then the
/// stream starts, or the request is refused and the connection serves the next one.
extension RealtimeStream {
    /// Checks the request that just arrived, on this event loop when the store can answer at
    /// once, else in a task.
    func check(_ head: HTTPRequest, context: ChannelHandlerContext) {
        let requestID = Identifiers.requestID()
        phase = .checking(requestID: requestID)
        corsFields = core.configuration.cors.fields(origin: head.headerFields[CORSPolicy.origin])
        let client = context.channel.remoteAddress?.ipAddress ?? "unknown"
        let stream = NIOLoopBound(self, eventLoop: context.eventLoop)
        if !checkNow(head, stream: stream, client: client, requestID: requestID) { checkLater(head, stream: stream, client: client, requestID: requestID) }
    }

    /// The check in a task, for a store that cannot answer on this thread.
    private func checkLater(_ head: HTTPRequest, stream: NIOLoopBound<RealtimeStream>, client: String, requestID: String) {
        let core = core
        Task {
            var joined: RealtimeMembership?
            do {
                let request = try await RealtimeRequest.check(head, core: core)
                let membership = try core.realtime.enter(stream, request, client: client)
                joined = membership
                // Joined first, then read where the topic stands: whatever commits from now on
                // reaches the channel's ring, whatever committed before is in the history. The
                // topic is checked again: an admin may have closed it since (its streams were
                // ended before this one joined).
                guard let topic = try await core.services.topics.find(app: request.app, name: request.topic), topic.externalSubscribable,
                      topic.authMode == request.authMode
                else { throw ServiceError(.notFound, "no such topic") }
                stream.eventLoop.execute { stream.value.start(request, membership: membership, floor: topic.lastSeq, requestID: requestID) }
            } catch {
                joined?.leave()
                let failure = RealtimeStream.failure(error, core: core)
                stream.eventLoop.execute { stream.value.refuse(failure, requestID: requestID) }
            }
        }
    }

    /// The same check on the event loop, when the store can answer without waiting (SQLite reads
    /// a topic on this thread in microseconds; a task and two hops to the pool's readers cost a
    /// subscriber several times that). False when it cannot: nothing is left changed, and the
    /// check runs in a task.
    private func checkNow(_ head: HTTPRequest, stream: NIOLoopBound<RealtimeStream>, client: String, requestID: String) -> Bool {
        var joined: RealtimeMembership?
        do {
            guard let request = try RealtimeRequest.checkNow(head, core: core) else { return false }
            let membership = try core.realtime.enter(stream, request, client: client)
            joined = membership
            guard let found = core.services.topics.findNow(app: request.app, name: request.topic) else {
                membership.leave()
                return false
            }
            guard let topic = found, topic.externalSubscribable, topic.authMode == request.authMode else { throw ServiceError(.notFound, "no such topic") }
            start(request, membership: membership, floor: topic.lastSeq, requestID: requestID)
        } catch {
            joined?.leave()
            refuse(Self.failure(error, core: core), requestID: requestID)
        }
        return true
    }

    static func failure(_ error: any Error, core: PiCloudCore) -> ServiceError {
        let failure = error as? ServiceError ?? ServiceError(.internal, "internal error", underlying: error)
        if failure.code == .internal { core.logger.error("realtime: \(failure.underlying.map { "\($0)" } ?? failure.message)") }
        return failure
    }

    /// Answers the request with an error; the connection stays open for the next request.
    func refuse(_ error: ServiceError, requestID: String) {
        guard case .checking = phase, let context else { return }
        typealias Errors = ErrorMiddleware<PiCloudRequestContext>
        let body = Errors.body(code: error.code.rawValue, message: error.message)
        var fields: HTTPFields = [.contentType: "application/json; charset=utf-8", .contentLength: String(body.readableBytes), Self.requestIDHeader: requestID]
        fields.append(contentsOf: corsFields)
        if error.code == .methodNotAllowed { fields[.allow] = "GET" }
        if error.code == .unavailable || error.code == .rateLimited { fields[.retryAfter] = "5" }
        context.write(wrapOutboundOut(.head(HTTPResponse(status: Errors.status(for: error.code), headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        if closeAfterResponse {
            phase = .ended
            context.close(promise: nil)
            return
        }
        phase = .idle
        replayPending(context: context)
    }

    /// The answer to a stream the quota refused; the streams already open keep going.
    static func refusal(_ refusal: SubscriberQuota.Refusal) -> ServiceError {
        switch refusal {
        case .server: ServiceError(.unavailable, "this server holds as many event streams as it may; retry later")
        case .app: ServiceError(.unavailable, "this app has as many event streams open as it may; retry later")
        case .client: ServiceError(.rateLimited, "too many event streams from this address")
        }
    }
}
