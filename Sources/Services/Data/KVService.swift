/// An app's key-value store: JSON values, optional time to live, atomic counters.
public struct KVService: Sendable {
    let storage: any StorageBackend
    let triggers: any TriggerMatching
    public static let maxKeyBytes = 512
    public static let maxValueBytes = 1 << 20

    public init(storage: any StorageBackend, triggers: any TriggerMatching = NoTriggers()) {
        self.storage = storage
        self.triggers = triggers
    }

    /// The events a change at `depth` (the changing invocation's) enqueues.
    func enqueue(_ app: String, _ event: TriggerEvent, depth: Int) -> OutboxEnqueue {
        OutboxEnqueue(targets: triggers.targets(app: app, event: event, depth: depth + 1), depth: depth + 1)
    }

    public func get(app: String, key: String) async throws -> KVEntry? {
        try Self.validate(key: key)
        return try await storage.kvGet(app: app, key: key, now: Clock.now())
    }

    /// The entry when the store can tell without waiting (its read cache, or SQLite's point read
    /// on the calling thread): `.some(entry)` (`.some(nil)`: no such key), or nil when
    /// ``get(app:key:)`` must read the store. Invalid keys are left to it.
    public func getNow(app: String, key: String) -> KVEntry?? {
        guard (try? Self.validate(key: key)) != nil else { return nil }
        return storage.kvGetNow(app: app, key: key, now: Clock.now())
    }

    /// Stores `value` (JSON text); with `ttl` (seconds) it expires. `depth` is the calling
    /// invocation's trigger depth (0 for a request).
    public func set(app: String, key: String, value: [UInt8], ttl: Double? = nil, depth: Int = 0) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            set(app: app, key: key, value: value, ttl: ttl, depth: depth) { continuation.resume(with: $0) }
        }
    }

    /// ``set(app:key:value:ttl:depth:)`` with a callback, called once from any thread (at once
    /// for invalid input): a script's `kv.set` waits this way, without a task.
    public func set(app: String, key: String, value: [UInt8], ttl: Double?, depth: Int, done: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        let now = Clock.now()
        let expiresAt: Milliseconds?
        do {
            try Self.validate(key: key)
            guard value.count <= Self.maxValueBytes else {
                throw ServiceError(.payloadTooLarge, "kv.set: the value of '\(key)' is \(value.count) bytes; the limit is \(Self.maxValueBytes)")
            }
            expiresAt = try ttl.map { ttl in
                guard ttl > 0, ttl <= 10 * 365 * 86400 else { throw ServiceError(.invalidInput, "kv.set: ttl must be between 0 and 10 years (in seconds)") }
                return now + Milliseconds((ttl * 1000).rounded(.up))
            }
        } catch {
            return done(.failure(error))
        }
        let events = enqueue(app, .kv(op: "set", key: key), depth: depth)
        let triggers = triggers
        storage.kvSet(app: app, key: key, value: value, expiresAt: expiresAt, now: now, enqueue: events) { outcome in
            if case .success = outcome, !events.targets.isEmpty { triggers.didEnqueue() }
            done(outcome)
        }
    }

    public func delete(app: String, key: String, depth: Int = 0) async throws -> Bool {
        try Self.validate(key: key)
        let events = enqueue(app, .kv(op: "delete", key: key), depth: depth)
        let deleted = try await storage.kvDelete(app: app, key: key, now: Clock.now(), enqueue: events)
        if deleted, !events.targets.isEmpty { triggers.didEnqueue() }
        return deleted
    }

    /// Adds `delta` atomically (a missing key counts as 0) and returns the new value.
    public func increment(app: String, key: String, by delta: Int64 = 1, depth: Int = 0) async throws -> Int64 {
        try Self.validate(key: key)
        let events = enqueue(app, .kv(op: "set", key: key), depth: depth)
        let sum = try await storage.kvIncrement(app: app, key: key, by: delta, now: Clock.now(), enqueue: events)
        if !events.targets.isEmpty { triggers.didEnqueue() }
        return sum
    }

    /// Entries in key order; at most 1,001 (a page of 1,000 and one more that tells the caller
    /// whether another page follows).
    public func list(app: String, prefix: String, after: String? = nil, limit: Int = 100) async throws -> [KVEntry] {
        guard prefix.utf8.count <= Self.maxKeyBytes else { throw ServiceError(.invalidInput, "kv.list: prefix longer than \(Self.maxKeyBytes) bytes") }
        return try await storage.kvList(app: app, prefix: prefix, after: after, limit: min(max(limit, 1), 1001), now: Clock.now())
    }

    public func purgeExpired() async throws -> Int { try await storage.kvPurgeExpired(now: Clock.now()) }

    static func validate(key: String) throws(ServiceError) {
        guard (1...maxKeyBytes).contains(key.utf8.count), !key.utf8.contains(0) else {
            throw ServiceError(.invalidInput, "invalid kv key: use 1 to \(maxKeyBytes) bytes (no NUL)")
        }
    }
}
