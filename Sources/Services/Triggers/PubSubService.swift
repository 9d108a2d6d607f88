/// `pubsub.publish`: a message on a topic reaches the app's `topic` triggers through the outbox and,
/// on a registered topic, the topic's history and its live subscribers.
public struct PubSubService: Sendable {
    let storage: any StorageBackend
    let triggers: any TriggerMatching
    let broadcaster: any RealtimeBroadcasting
    let history: TopicHistoryDefaults
    public static let maxMessageBytes = 256 << 10

    public init(storage: any StorageBackend, triggers: any TriggerMatching = NoTriggers(), broadcaster: any RealtimeBroadcasting = NoBroadcast(), history: TopicHistoryDefaults = .init()) {
        self.storage = storage
        self.triggers = triggers
        self.broadcaster = broadcaster
        self.history = history
    }

    /// Publishes `message` (JSON text) and returns the event id: on a registered topic its id
    /// within the topic ("1", "2", ...: what subscribers see), else a unique id.
    ///
    /// The order is the one that never tells a subscriber about an event that did not happen:
    /// validate, write the history row and the outbox rows, commit, then broadcast. The
    /// publish time is stamped once and is the same for triggers, history and subscribers.
    public func publish(app: String, topic: String, message: [UInt8], depth: Int = 0) async throws -> String {
        try Topic.validate(name: topic)
        guard message.count <= Self.maxMessageBytes else {
            throw ServiceError(.payloadTooLarge, "pubsub.publish: a message is limited to \(Self.maxMessageBytes) bytes of JSON")
        }
        let now = Clock.now()
        let events = OutboxEnqueue(targets: triggers.targets(app: app, event: .topic(topic), depth: depth + 1), depth: depth + 1)
        let broadcaster = broadcaster
        let result = try await storage.publish(
            app: app, topic: topic, message: message, now: now, defaults: history, enqueue: events,
            event: { seq in
                var fields = [("kind", EventJSON.string("topic")), ("topic", EventJSON.string(topic)), ("message", message), ("published_at", EventJSON.integer(now))]
                if let seq { fields.append(("seq", EventJSON.integer(seq))) }
                return EventJSON.object(fields)
            },
            onCommit: { broadcaster.broadcast($0) }
        )
        if !events.targets.isEmpty { triggers.didEnqueue() }
        return result.seq.map { String($0) } ?? result.eventID ?? "evt_" + Identifiers.eventID(at: now)
    }
}
