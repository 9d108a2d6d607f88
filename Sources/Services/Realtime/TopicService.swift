import Crypto
import Foundation
import Synchronization

/// The lifetime of subscriber tokens: asked-for lifetimes are clamped to `minimum...maximum`
/// (`PICLOUD_SUBSCRIBER_TOKEN_TTL_{MIN,MAX,DEFAULT}_SEC`).
public struct SubscriberTokenLifetime: Sendable, Hashable {
    public var minimum: Int
    public var maximum: Int
    public var standard: Int

    public init(minimum: Int = 10, maximum: Int = 86400, standard: Int = 3600) {
        self.minimum = minimum
        self.maximum = maximum
        self.standard = standard
    }

    /// The lifetime a token gets when `seconds` are asked for (nil: the default).
    public func clamp(_ seconds: Int?) -> Int { min(maximum, max(minimum, seconds ?? standard)) }
}

/// Registered topics, their history, and subscriber tokens.
public struct TopicService: Sendable {
    let storage: any StorageBackend
    let masterKey: [UInt8]
    var sealingKey: SymmetricKey { SymmetricKey(data: masterKey) }
    public let history: TopicHistoryDefaults
    public let tokenLifetime: SubscriberTokenLifetime
    private let signingKeys = SigningKeyCache()

    /// Most topics one token may name.
    public static let maxTokenTopics = 32
    static let signingKeyName = "realtime_signing_key"

    /// - Parameter masterKey: 32 bytes; seals the signing keys at rest.
    public init(storage: any StorageBackend, masterKey: [UInt8], history: TopicHistoryDefaults = .init(), tokenLifetime: SubscriberTokenLifetime = .init()) {
        self.storage = storage
        self.masterKey = masterKey
        self.history = history
        self.tokenLifetime = tokenLifetime
    }

    // MARK: Registry

    public func create(
        app: String, name: String, externalSubscribable: Bool, authMode: TopicRecord.AuthMode, historyEvents: Int?, historySeconds: Int?
    ) async throws -> TopicRecord {
        let now = Clock.now()
        let record = TopicRecord(
            app: app, name: name, externalSubscribable: externalSubscribable, authMode: authMode, historyEvents: historyEvents,
            historySeconds: historySeconds, source: .api, createdAt: now, updatedAt: now
        )
        try Self.validate(record)
        try await storage.createTopic(record)
        return record
    }

    public static func validate(_ topic: TopicRecord) throws(ServiceError) {
        try Topic.validate(name: topic.name)
        if let events = topic.historyEvents, !(0...TopicRecord.maxHistoryEvents).contains(events) {
            throw ServiceError(.invalidInput, "history_events must be from 0 to \(TopicRecord.maxHistoryEvents)")
        }
        if let seconds = topic.historySeconds, !(1...TopicRecord.maxHistorySeconds).contains(seconds) {
            throw ServiceError(.invalidInput, "history_seconds must be from 1 to \(TopicRecord.maxHistorySeconds)")
        }
    }

    /// The topic, or `not_found`.
    public func get(app: String, name: String) async throws -> TopicRecord {
        guard let topic = try await storage.topic(app: app, name: name) else { throw ServiceError(.notFound, "app '\(app)' has no topic named '\(name)'") }
        return topic
    }

    /// The topic if it exists (no error).
    public func find(app: String, name: String) async throws -> TopicRecord? {
        guard (try? Topic.validate(name: name)) != nil else { return nil }
        return try await storage.topic(app: app, name: name)
    }

    /// ``find(app:name:)`` without waiting, when the store can read on the calling thread;
    /// nil when it cannot (then `find` must be asked).
    public func findNow(app: String, name: String) -> TopicRecord?? {
        guard (try? Topic.validate(name: name)) != nil else { return .some(nil) }
        return storage.topicNow(app: app, name: name)
    }

    public func list(app: String) async throws -> [TopicRecord] { try await storage.topics(app: app) }

    public func delete(app: String, name: String) async throws {
        guard try await storage.deleteTopic(app: app, name: name) else { throw ServiceError(.notFound, "app '\(app)' has no topic named '\(name)'") }
    }

    public func setExternal(app: String, name: String, external: Bool) async throws -> TopicRecord {
        guard let topic = try await storage.setTopicExternal(app: app, name: name, external: external, now: Clock.now()) else {
            throw ServiceError(.notFound, "app '\(app)' has no topic named '\(name)'")
        }
        return topic
    }

    /// Makes the app's manifest topics those declared (see ``TopicStore/replaceManifestTopics``).
    public func replaceManifestTopics(app: String, topics: [TopicRecord]) async throws -> TopicChanges {
        for topic in topics { try Self.validate(topic) }
        return try await storage.replaceManifestTopics(app: app, topics: topics, now: Clock.now())
    }

    /// Kept events after `after`, and the topic's newest id; nil if there is no such topic.
    public func events(app: String, topic: String, after: Int64, limit: Int) async throws -> (events: [TopicEvent], lastSeq: Int64)? {
        try await storage.topicHistory(app: app, topic: topic, after: after, limit: limit, now: Clock.now(), defaults: history)
    }

    public func trimHistory() async throws -> Int { try await storage.trimTopicHistory(now: Clock.now(), defaults: history) }

    // MARK: Subscriber tokens

    /// A token for subscribing to `topics` of `app`, issued to `subject`, valid for `seconds`
    /// (clamped); every topic must be registered.
    public func issueToken(app: String, topics: [String], subject: String, seconds: Int?) async throws -> (token: String, expiresAt: Int64) {
        var names: [String] = []
        for name in topics where !names.contains(name) { names.append(name) }
        guard !names.isEmpty, names.count <= Self.maxTokenTopics else {
            throw ServiceError(.invalidInput, "name 1 to \(Self.maxTokenTopics) topics")
        }
        for name in names {
            try Topic.validate(name: name)
            guard try await storage.topic(app: app, name: name) != nil else {
                throw ServiceError(.invalidInput, "topic '\(name)' is not registered (declare it under [[topics]] in picloud.toml)")
            }
        }
        let now = Clock.now() / 1000
        let claims = SubscriberClaims(app: app, topics: names, subject: subject, issuedAt: now, expiresAt: now + Int64(tokenLifetime.clamp(seconds)))
        return (SubscriberToken.encode(claims, key: try await signingKey(app: app)), claims.expiresAt)
    }

    /// The claims of a token that lets its holder subscribe to `topic` of `app` now; nil when it
    /// does not, whatever the reason.
    public func verifyToken(_ token: String, app: String, topic: String) async throws -> SubscriberClaims? {
        guard token.hasPrefix(SubscriberToken.prefix) else { return nil }
        let key = try await signingKey(app: app)
        return try? SubscriberToken.verify(token, key: key, app: app, topic: topic, now: Clock.now() / 1000)
    }

    /// ``verifyToken(_:app:topic:)`` without waiting, when the app's signing key is in memory:
    /// `.some(claims)` or `.some(nil)` (the token does not let its holder in); nil when the key
    /// must be read first (then `verifyToken` must be asked).
    public func verifyTokenNow(_ token: String, app: String, topic: String) -> SubscriberClaims?? {
        guard token.hasPrefix(SubscriberToken.prefix) else { return .some(nil) }
        guard let key = signingKeys.get(app) else { return nil }
        return .some(try? SubscriberToken.verify(token, key: key, app: app, topic: topic, now: Clock.now() / 1000))
    }

    /// The app's signing key: 32 random bytes created on first use (once, even when several
    /// requests or nodes ask at the same time), sealed at rest, cached in memory.
    public func signingKey(app: String) async throws -> [UInt8] {
        if let key = signingKeys.get(app) { return key }
        let generation = signingKeys.generation(app)
        let fresh = Identifiers.randomBytes(32)
        let slot = Array("\(app)\u{0}\(Self.signingKeyName)".utf8)
        guard let sealed = try AES.GCM.seal(fresh, using: sealingKey, authenticating: slot).combined else {
            throw ServiceError(.internal, "cannot seal a signing key")
        }
        let stored = try await storage.appSecret(app: app, name: Self.signingKeyName, orInsert: [UInt8](sealed), now: Clock.now())
        let key: [UInt8]
        do {
            key = [UInt8](try AES.GCM.open(AES.GCM.SealedBox(combined: stored), using: sealingKey, authenticating: slot))
        } catch {
            throw ServiceError(.internal, "the signing key of app '\(app)' cannot be opened with this master key", underlying: error)
        }
        signingKeys.set(app, key, ifGeneration: generation)
        return key
    }

    /// Drops cached keys of a deleted app (a new app of the same name gets a new key).
    public func forget(app: String) { signingKeys.remove(app) }
}

/// Signing keys by app, in memory. Forgetting an app bumps its generation, so a key read from the
/// database before the app was deleted is not cached after it.
final class SigningKeyCache: Sendable {
    private struct State {
        var keys: [String: [UInt8]] = [:]
        var generations: [String: Int] = [:]
    }

    private let state = Mutex(State())
    func get(_ app: String) -> [UInt8]? { state.withLock { $0.keys[app] } }
    func generation(_ app: String) -> Int { state.withLock { $0.generations[app, default: 0] } }

    func set(_ app: String, _ key: [UInt8], ifGeneration generation: Int) {
        state.withLock { state in
            if state.generations[app, default: 0] == generation { state.keys[app] = key }
        }
    }

    func remove(_ app: String) {
        state.withLock { state in
            state.keys.removeValue(forKey: app)
            state.generations[app, default: 0] += 1
        }
    }
}
