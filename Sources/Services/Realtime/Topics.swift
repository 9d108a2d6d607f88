/// A topic name: non-empty, at most 128 bytes, no `*` (reserved for patterns) and no control characters.
public enum Topic {
    public static let maxNameBytes = 128

    public static func validate(name: String) throws(ServiceError) {
        guard (1...maxNameBytes).contains(name.utf8.count), !name.contains("*"), !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ServiceError(.invalidInput, "invalid topic '\(name)': use 1 to \(maxNameBytes) bytes without '*' or control characters")
        }
    }
}

/// A registered topic: one that keeps a history and that browsers may subscribe to when it is
/// externally subscribable.
public struct TopicRecord: Sendable, Hashable {
    /// Who may subscribe to an external topic.
    public enum AuthMode: String, Sendable, Hashable, CaseIterable {
        /// Anyone who knows the URL.
        case `public`
        /// Holders of a subscriber token for the topic (`pubsub.subscriber_token`).
        case token
    }

    public enum Source: String, Sendable, Hashable {
        /// Declared in the manifest and kept in step with each deployment.
        case manifest
        /// Created through the admin API.
        case api
    }

    public var app: String
    public var name: String
    public var externalSubscribable: Bool
    public var authMode: AuthMode
    /// How many recent events are kept for subscribers that resume (nil: the instance default; 0: none).
    public var historyEvents: Int?
    /// How long they are kept, in seconds (nil: the instance default).
    public var historySeconds: Int?
    public var source: Source
    /// The id of the newest event (0 before the first); ids count up from 1 without holes.
    public var lastSeq: Int64
    public var createdAt: Milliseconds
    public var updatedAt: Milliseconds

    public init(app: String, name: String, externalSubscribable: Bool, authMode: AuthMode, historyEvents: Int? = nil, historySeconds: Int? = nil,
                source: Source, lastSeq: Int64 = 0, createdAt: Milliseconds, updatedAt: Milliseconds) {
        self.app = app
        self.name = name
        self.externalSubscribable = externalSubscribable
        self.authMode = authMode
        self.historyEvents = historyEvents
        self.historySeconds = historySeconds
        self.source = source
        self.lastSeq = lastSeq
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    public static let maxHistoryEvents = 100_000
    public static let maxHistorySeconds = 30 * 86400
}

/// The history a topic keeps when it does not say (`PICLOUD_REALTIME_HISTORY_EVENTS`, `_SEC`).
public struct TopicHistoryDefaults: Sendable, Hashable {
    public var events: Int
    public var seconds: Int

    public init(events: Int = 1000, seconds: Int = 86400) {
        self.events = events
        self.seconds = seconds
    }
}

/// What a deployment changed in an app's manifest topics.
public struct TopicChanges: Sendable, Hashable {
    public var created: [String] = []
    /// Topics whose auth mode or history settings changed.
    public var updated: [String] = []
    /// Of those, the ones whose auth mode changed: their subscribers must be checked again.
    public var authChanged: [String] = []
    public var removed: [String] = []
    /// Existing topics whose external flag differs from the manifest's: the flag only changes
    /// through `PATCH .../topics/{topic}/external`, so the stored one stays.
    public var externalKept: [String] = []

    public init() {}
}

/// An event committed on a registered topic.
public struct TopicEvent: Sendable, Hashable {
    public var app: String
    public var topic: String
    /// The event's id within the topic: 1, 2, 3, ... in commit order.
    public var seq: Int64
    /// The message as JSON.
    public var message: [UInt8]
    public var publishedAt: Milliseconds

    public init(app: String, topic: String, seq: Int64, message: [UInt8], publishedAt: Milliseconds) {
        self.app = app
        self.topic = topic
        self.seq = seq
        self.message = message
        self.publishedAt = publishedAt
    }
}

/// Tells live subscribers about committed events. Storage calls it after the commit, in commit
/// order, on the thread that committed: it must not block.
public protocol RealtimeBroadcasting: Sendable {
    func broadcast(_ event: TopicEvent)
}

/// No live subscribers (tools and tests that only need storage).
public struct NoBroadcast: RealtimeBroadcasting {
    public init() {}
    public func broadcast(_ event: TopicEvent) {}
}
