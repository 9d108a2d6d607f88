/// An app's key-value store: JSON values, optional time to live, atomic counters.
public struct KVService: Sendable {
    let storage: any StorageBackend
    public static let maxKeyBytes = 512
    public static let maxValueBytes = 1 << 20

    public init(storage: any StorageBackend) { self.storage = storage }

    public func get(app: String, key: String) async throws -> KVEntry? {
        try Self.validate(key: key)
        return try await storage.kvGet(app: app, key: key, now: Clock.now())
    }

    /// Stores `value` (JSON text); with `ttl` (seconds) it expires.
    public func set(app: String, key: String, value: [UInt8], ttl: Double? = nil) async throws {
        try Self.validate(key: key)
        guard value.count <= Self.maxValueBytes else {
            throw ServiceError(.payloadTooLarge, "kv.set: the value of '\(key)' is \(value.count) bytes; the limit is \(Self.maxValueBytes)")
        }
        let now = Clock.now()
        var expiresAt: Milliseconds?
        if let ttl {
            guard ttl > 0, ttl <= 10 * 365 * 86400 else { throw ServiceError(.invalidInput, "kv.set: ttl must be between 0 and 10 years (in seconds)") }
            expiresAt = now + Milliseconds((ttl * 1000).rounded(.up))
        }
        try await storage.kvSet(app: app, key: key, value: value, expiresAt: expiresAt, now: now)
    }

    public func delete(app: String, key: String) async throws -> Bool {
        try Self.validate(key: key)
        return try await storage.kvDelete(app: app, key: key, now: Clock.now())
    }

    /// Adds `delta` atomically (a missing key counts as 0) and returns the new value.
    public func increment(app: String, key: String, by delta: Int64 = 1) async throws -> Int64 {
        try Self.validate(key: key)
        return try await storage.kvIncrement(app: app, key: key, by: delta, now: Clock.now())
    }

    public func list(app: String, prefix: String, after: String? = nil, limit: Int = 100) async throws -> [KVEntry] {
        guard prefix.utf8.count <= Self.maxKeyBytes else { throw ServiceError(.invalidInput, "kv.list: prefix longer than \(Self.maxKeyBytes) bytes") }
        return try await storage.kvList(app: app, prefix: prefix, after: after, limit: min(max(limit, 1), 1000), now: Clock.now())
    }

    public func purgeExpired() async throws -> Int { try await storage.kvPurgeExpired(now: Clock.now()) }

    static func validate(key: String) throws(ServiceError) {
        guard (1...maxKeyBytes).contains(key.utf8.count), !key.utf8.contains(0) else {
            throw ServiceError(.invalidInput, "invalid kv key: use 1 to \(maxKeyBytes) bytes (no NUL)")
        }
    }
}
