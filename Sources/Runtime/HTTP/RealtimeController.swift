import Foundation
import Hummingbird
import LuaBridge
import NIOCore
import Prometheus
import ServiceLifecycle
import Services

/// `GET /apps/{app}/realtime/{topic}`: a topic's events as Server-Sent Events.
///
/// A missing app, a missing topic and a topic that is not externally subscribable all answer the
/// same 404; every token failure answers the same 401. A subscriber that sends `Last-Event-ID`
/// (or `?last_event_id=`) first gets the events it missed from the topic's history, then live
/// ones, with no duplicate and no hole at the switch; what the history no longer holds is
/// announced with an `event: gap` frame.
struct RealtimeController {
    let core: PiCloudCore

    /// Reconnection delay browsers are told to use (`retry:`), in milliseconds.
    static let retryMilliseconds = 2000
    /// History events read per query while catching up.
    static let historyPage = 500

    func register(on router: Router<PiCloudRequestContext>) {
        router.get("apps/:app/realtime/:topic") { request, context in
            try await subscribe(request, context: context)
        }
    }

    func subscribe(_ request: Request, context: PiCloudRequestContext) async throws -> Response {
        let app = try context.parameters.require("app")
        let raw = try context.parameters.require("topic")
        let topics = core.services.topics
        guard let name = decodePathSegment(raw[...]), let topic = try await topics.find(app: app, name: name), topic.externalSubscribable else {
            throw ServiceError(.notFound, "no such topic")
        }
        var expiresAt: Milliseconds?
        if topic.authMode == .token {
            guard let token = Self.token(request), let claims = try await topics.verifyToken(token, app: app, topic: name) else {
                throw ServiceError(.unauthorized, "a valid subscriber token for this topic is needed")
            }
            expiresAt = (claims.expiresAt + SubscriberToken.clockSkewSeconds) * 1000
        }
        let resumeText = request.headers[.init("Last-Event-ID")!] ?? request.query("last_event_id")
        var resumeAfter: Int64?
        if let resumeText, !resumeText.isEmpty {
            guard let id = Int64(resumeText.trimmingCharacters(in: .whitespaces)), id >= 0 else {
                throw ServiceError(.invalidInput, "Last-Event-ID must be an event id of this topic (a number)")
            }
            resumeAfter = id
        }
        let stream = SubscriberStream(core: core, app: app, topic: name, expiresAt: expiresAt, resumeAfter: resumeAfter)
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"],
            body: ResponseBody { writer in try await stream.run(&writer) }
        )
    }

    /// The subscriber token: `Authorization: Bearer`, else `?token=` (EventSource cannot set headers).
    static func token(_ request: Request) -> String? {
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]).trimmingCharacters(in: .whitespaces) }
        }
        return request.query("token")
    }
}

/// One subscriber's stream: catch up from the history if asked, then follow the live channel.
struct SubscriberStream: Sendable {
    let core: PiCloudCore
    let app: String
    let topic: String
    let expiresAt: Milliseconds?
    let resumeAfter: Int64?

    func run(_ writer: inout any ResponseBodyWriter) async throws {
        let hub = core.realtime
        guard let subscription = hub.subscribe(app: app, topic: topic, expiresAt: expiresAt) else {
            try await writer.finish(nil)
            return
        }
        defer { subscription.cancel() }
        // Subscribed first, then read where the topic stands: whatever commits from now on is in
        // the channel, whatever committed before is in the history, and ids sort out the overlap.
        guard let start = try await core.services.topics.events(app: app, topic: topic, after: resumeAfter ?? Int64.max, limit: 0) else {
            try await writer.finish(nil)
            return
        }
        var out = ByteBuffer(string: "retry: \(RealtimeController.retryMilliseconds)\n\n")
        var last = start.lastSeq
        if let resumeAfter {
            core.metrics.realtimeReplays.increment()
            if resumeAfter > start.lastSeq {
                // An id this topic never gave (it was deleted and registered again): start afresh.
                out.writeImmutableBuffer(Self.gap(from: nil, to: start.lastSeq, reason: "unknown_event_id"))
            } else {
                last = try await catchUp(after: resumeAfter, through: start.lastSeq, into: &out)
            }
        }
        try await writer.write(out)
        // At shutdown the stream ends (the client reconnects elsewhere or later, with its
        // Last-Event-ID): the request's task hears it before the hub does.
        try await withGracefulShutdownHandler {
            try await follow(subscription, from: last, into: &writer)
        } onGracefulShutdown: {
            subscription.cancel()
        }
        try await writer.finish(nil)
    }

    /// Writes live events (and heartbeats) until the stream ends.
    func follow(_ subscription: RealtimeSubscription, from position: Int64, into writer: inout any ResponseBodyWriter) async throws {
        var last = position
        loop: while true {
            switch await subscription.next(after: last) {
            case .events(let entries, let missed):
                if missed == nil, entries.count == 1, let entry = entries.first {
                    try await writer.write(entry.payload)
                    last = entry.seq
                    core.metrics.realtimeDelivered.increment()
                    continue
                }
                var batch = ByteBuffer()
                if let missed { last = try await catchUp(after: last, through: missed.upperBound, into: &batch) }
                var count = 0
                for entry in entries where entry.seq > last {
                    batch.writeImmutableBuffer(entry.payload)
                    last = entry.seq
                    count += 1
                }
                core.metrics.realtimeDelivered.increment(by: Int64(count))
                try await writer.write(batch)
            case .heartbeat:
                try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
            case .expired:
                try await writer.write(ByteBuffer(string: "event: expired\ndata: {\"reason\":\"token_expired\"}\n\n"))
                break loop
            case .closed(let reason):
                if let reason { try await writer.write(ByteBuffer(string: "event: closed\ndata: {\"reason\":\"\(reason)\"}\n\n")) }
                break loop
            }
        }
    }

    /// Appends the events after `after` up to `through` from the history, with a gap frame for
    /// those it no longer holds; returns the new position (`through`, or further).
    func catchUp(after: Int64, through: Int64, into out: inout ByteBuffer) async throws -> Int64 {
        var last = after
        var replayed = 0
        while last < through {
            guard let page = try await core.services.topics.events(app: app, topic: topic, after: last, limit: RealtimeController.historyPage) else { break }
            let events = page.events.filter { $0.seq <= through }
            guard let first = events.first else { break }
            if first.seq > last + 1 {
                out.writeImmutableBuffer(Self.gap(from: last + 1, to: first.seq - 1, reason: "history_exceeded"))
                core.metrics.realtimeDropped.increment(by: first.seq - 1 - last)
            }
            for event in events {
                out.writeImmutableBuffer(RealtimeHub.frame(event))
            }
            replayed += events.count
            last = events.last!.seq
            if page.events.count < RealtimeController.historyPage { break }
        }
        if last < through {
            out.writeImmutableBuffer(Self.gap(from: last + 1, to: through, reason: "history_exceeded"))
            core.metrics.realtimeDropped.increment(by: through - last)
            last = through
        }
        core.metrics.realtimeReplayed.increment(by: Int64(replayed))
        return last
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
