import Foundation
import HTTPTypes
import NIOCore
import Services

/// A realtime request, checked: the topic exists and browsers may follow it, and the token (for a
/// token topic) lets the caller.
struct RealtimeRequest: Sendable {
    var app: String
    var topic: String
    /// When the token that allowed it runs out (plus the clock-skew allowance), in ms.
    var expiresAt: Milliseconds?
    var resumeAfter: Int64?
    /// The auth mode the request was checked under.
    var authMode: TopicRecord.AuthMode

    /// `(app, raw topic segment)` for `/apps/{app}/realtime/{topic}` (a query may follow).
    /// Runs for every request, so it looks at bytes, not characters (the delimiters are ASCII).
    static func match(_ target: String) -> (app: Substring, topic: Substring)? {
        let bytes = target.utf8
        guard bytes.starts(with: "/apps/".utf8) else { return nil }
        let end = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.endIndex
        let appStart = bytes.index(bytes.startIndex, offsetBy: 6)
        guard let appEnd = bytes[appStart..<end].firstIndex(of: UInt8(ascii: "/")), appEnd > appStart,
              bytes[appEnd..<end].starts(with: "/realtime/".utf8)
        else { return nil }
        let topicStart = bytes.index(appEnd, offsetBy: 10)
        guard topicStart < end, !bytes[topicStart..<end].contains(UInt8(ascii: "/")) else { return nil }
        return (target[appStart..<appEnd], target[topicStart..<end])
    }

    /// What a request asks for, read from its head alone.
    struct Asked {
        var app: String
        var topic: String
        var resumeAfter: Int64?
        var token: String?
    }

    /// Checks a request; throws the `ServiceError` to answer with.
    static func check(_ head: HTTPRequest, core: PiCloudCore) async throws -> RealtimeRequest {
        let asked = try parse(head)
        let topics = core.services.topics
        let topic = try await topics.find(app: asked.app, name: asked.topic)
        var claims: SubscriberClaims?
        if topic?.authMode == .token, let token = asked.token {
            claims = try await topics.verifyToken(token, app: asked.app, topic: asked.topic)
        }
        return try admit(asked, topic: topic, claims: claims)
    }

    /// ``check(_:core:)`` on the calling thread, when the store can answer without waiting (see
    /// ``TopicService/findNow(app:name:)``); nil when it cannot.
    static func checkNow(_ head: HTTPRequest, core: PiCloudCore) throws -> RealtimeRequest? {
        let asked = try parse(head)
        let topics = core.services.topics
        guard let topic = topics.findNow(app: asked.app, name: asked.topic) else { return nil }
        var claims: SubscriberClaims?
        if topic?.authMode == .token, let token = asked.token {
            guard let verified = topics.verifyTokenNow(token, app: asked.app, topic: asked.topic) else { return nil }
            claims = verified
        }
        return try admit(asked, topic: topic, claims: claims)
    }

    static func parse(_ head: HTTPRequest) throws -> Asked {
        guard let target = head.path, let (app, raw) = match(target) else { throw ServiceError(.notFound, "no such topic") }
        guard head.method == .get else { throw ServiceError(.methodNotAllowed, "subscribe with GET") }
        let query = Self.query(target)
        var resumeAfter: Int64?
        if let text = head.headerFields[RealtimeStream.lastEventIDHeader] ?? query["last_event_id"], !text.isEmpty {
            guard let id = Int64(text.trimmingCharacters(in: .whitespaces)), id >= 0 else {
                throw ServiceError(.invalidInput, "Last-Event-ID must be an event id of this topic (a number)")
            }
            resumeAfter = id
        }
        guard let name = decodePathSegment(raw) else { throw ServiceError(.notFound, "no such topic") }
        return Asked(app: String(app), topic: name, resumeAfter: resumeAfter, token: token(head, query: query))
    }

    /// The request if `topic` (nil: there is none) lets it in with the token's `claims` (nil: no
    /// valid token).
    static func admit(_ asked: Asked, topic: TopicRecord?, claims: SubscriberClaims?) throws -> RealtimeRequest {
        guard let topic, topic.externalSubscribable else { throw ServiceError(.notFound, "no such topic") }
        var expiresAt: Milliseconds?
        if topic.authMode == .token {
            guard let claims else { throw ServiceError(.unauthorized, "a valid subscriber token for this topic is needed") }
            expiresAt = (claims.expiresAt + SubscriberToken.clockSkewSeconds) * 1000
        }
        return RealtimeRequest(app: asked.app, topic: asked.topic, expiresAt: expiresAt, resumeAfter: asked.resumeAfter, authMode: topic.authMode)
    }

    /// The subscriber token: `Authorization: Bearer`, else `?token=` (EventSource cannot set headers).
    static func token(_ head: HTTPRequest, query: [String: String]) -> String? {
        if let header = head.headerFields[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]).trimmingCharacters(in: .whitespaces) }
        }
        return query["token"]
    }

    /// The query parameters of a request target, percent-decoded.
    static func query(_ target: String) -> [String: String] {
        guard let mark = target.firstIndex(of: "?") else { return [:] }
        var parameters: [String: String] = [:]
        for pair in target[target.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = parts[0].removingPercentEncoding else { continue }
            parameters[name] = parts.count > 1 ? parts[1].replacingOccurrences(of: "+", with: " ").removingPercentEncoding : ""
        }
        return parameters
    }
}

/// Sits at the front of a streaming connection's pipeline (below the HTTP encoder) and passes
/// writes through: a stream writes its body chunks from this handler's context. The HTTP encoder
/// wrote the head (chunked transfer coding, as for any HTTP/1.1 answer without a length) and
/// writes the final `0\r\n\r\n`; in between, chunks framed once per event go out as they are.
final class RawBodyWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData
}
