/// `pubsub.publish`: a message on a topic reaches the app's `topic` triggers through the outbox
/// (and, with realtime, its subscribers).
public struct PubSubService: Sendable {
    let storage: any StorageBackend
    let triggers: any TriggerMatching
    public static let maxMessageBytes = 256 << 10

    public init(storage: any StorageBackend, triggers: any TriggerMatching = NoTriggers()) {
        self.storage = storage
        self.triggers = triggers
    }

    /// Publishes `message` (JSON text) and returns the event id.
    public func publish(app: String, topic: String, message: [UInt8], depth: Int = 0) async throws -> String {
        try Topic.validate(name: topic)
        guard message.count <= Self.maxMessageBytes else {
            throw ServiceError(.payloadTooLarge, "pubsub.publish: a message is limited to \(Self.maxMessageBytes) bytes of JSON")
        }
        let now = Clock.now()
        let events = OutboxEnqueue(targets: triggers.targets(app: app, event: .topic(topic), depth: depth + 1), depth: depth + 1)
        let event = EventJSON.object([
            ("kind", EventJSON.string("topic")), ("topic", EventJSON.string(topic)), ("message", message), ("published_at", EventJSON.integer(now)),
        ])
        let id = try await storage.enqueue(app: app, enqueue: events, event: event, now: now)
        if !events.targets.isEmpty { triggers.didEnqueue() }
        return id
    }
}
