import Foundation
import GRDB

extension SQLiteStorage {
    public func kvGet(app: String, key: String, now: Milliseconds) async throws -> KVEntry? {
        let generation: UInt64
        switch kvCache.lookup(app: app, key: key, now: now) {
        case .known(let entry): return entry
        case .unknown(let started): generation = started
        }
        let entry = try await readStatement { db in try Self.kvEntry(db, app: app, key: key, now: now) }
        kvCache.fill(app: app, key: key, entry, generation: generation)
        return entry
    }

    public func kvGetNow(app: String, key: String, now: Milliseconds) -> KVEntry?? {
        let generation: UInt64
        switch kvCache.lookup(app: app, key: key, now: now) {
        case .known(let entry): return .some(entry)
        case .unknown(let started): generation = started
        }
        guard let entry = localReaders.read({ db in try Self.kvEntry(db, app: app, key: key, now: now) }) else { return nil }
        kvCache.fill(app: app, key: key, entry, generation: generation)
        return .some(entry)
    }

    /// What the read cache alone knows of `key` (``kvGetNow(app:key:now:)`` without its read),
    /// for tests and diagnostics.
    public func kvCached(app: String, key: String, now: Milliseconds) -> KVEntry?? {
        if case .known(let entry) = kvCache.lookup(app: app, key: key, now: now) { return .some(entry) }
        return nil
    }

    /// The live entry of `key`, read with one statement through SQLite's C API (GRDB's row
    /// machinery was most of a read's CPU, see docs/performance.md).
    static func kvEntry(_ db: Database, app: String, key: String, now: Milliseconds) throws -> KVEntry? {
        let statement = RawStatement(try db.cachedStatement(sql: """
            SELECT value, expires_at, updated_at FROM kv
            WHERE app = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)
            """))
        return try statement.withText(1, app) {
            try statement.withText(2, key) {
                try statement.bind(3, now)
                return try statement.first { row in
                    KVEntry(key: key, value: row.bytes(0), expiresAt: row.optionalInteger(1), updatedAt: row.integer(2))
                }
            }
        }
    }

    /// A write to one key, with the read cache told before and after (see ``KVReadCache``).
    private func write<T: Sendable>(app: String, key: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        kvCache.beginWrite(app: app, key: key)
        defer { kvCache.endWrite(app: app, key: key) }
        return try await write(body)
    }

    public func kvSet(app: String, key: String, value: [UInt8], expiresAt: Milliseconds?, now: Milliseconds, enqueue: OutboxEnqueue) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            kvSet(app: app, key: key, value: value, expiresAt: expiresAt, now: now, enqueue: enqueue) { continuation.resume(with: $0) }
        }
    }

    public func kvSet(
        app: String, key: String, value: [UInt8], expiresAt: Milliseconds?, now: Milliseconds, enqueue: OutboxEnqueue,
        done: @escaping @Sendable (Result<Void, any Error>) -> Void
    ) {
        let text = String(decoding: value, as: UTF8.self)
        let event = enqueue.targets.isEmpty ? [] : Self.kvEvent(op: "set", key: key, value: value)
        let cache = kvCache
        cache.beginWrite(app: app, key: key)
        write({ db in
            let upsert = try self.hot.statement(.kvUpsert, on: db)
            try upsert.withText(1, app) {
                try upsert.withText(2, key) {
                    try upsert.withText(3, text) {
                        try upsert.bind(4, expiresAt)
                        try upsert.bind(5, now)
                        try upsert.run()
                    }
                }
            }
            try self.insertOutbox(db, app: app, enqueue: enqueue, event: event, now: now)
        }, done: { outcome in
            cache.endWrite(app: app, key: key)
            done(outcome)
        })
    }

    static func kvEvent(op: String, key: String, value: [UInt8]?) -> [UInt8] {
        var fields: [(String, [UInt8])] = [("kind", EventJSON.string("kv")), ("op", EventJSON.string(op)), ("key", EventJSON.string(key))]
        if let value { fields.append(("value", value)) }
        return EventJSON.object(fields)
    }

    public func kvDelete(app: String, key: String, now: Milliseconds, enqueue: OutboxEnqueue) async throws -> Bool {
        try await write(app: app, key: key) { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT expires_at FROM kv WHERE app = ? AND key = ?", arguments: [app, key]) else {
                return false
            }
            try db.execute(sql: "DELETE FROM kv WHERE app = ? AND key = ?", arguments: [app, key])
            // An expired entry was already gone as far as callers could tell.
            let wasLive = (row["expires_at"] as Milliseconds?).map { $0 > now } ?? true
            if wasLive { try self.insertOutbox(db, app: app, enqueue: enqueue, event: Self.kvEvent(op: "delete", key: key, value: nil), now: now) }
            return wasLive
        }
    }

    public func kvIncrement(app: String, key: String, by delta: Int64, now: Milliseconds, enqueue: OutboxEnqueue) async throws -> Int64 {
        try await write(app: app, key: key) { db in
            let current = try Row.fetchOne(
                db, sql: "SELECT value, expires_at FROM kv WHERE app = ? AND key = ?", arguments: [app, key]
            )
            var base: Int64 = 0
            var expiresAt: Milliseconds?
            if let current, (current["expires_at"] as Milliseconds?).map({ $0 > now }) ?? true {
                let text: String = current["value"]
                guard let number = Int64(text) else {
                    throw ServiceError(.invalidInput, "kv.incr: the value of '\(key)' is not an integer")
                }
                base = number
                expiresAt = current["expires_at"]
            }
            let (sum, overflow) = base.addingReportingOverflow(delta)
            guard !overflow else { throw ServiceError(.invalidInput, "kv.incr: '\(key)' would overflow a 64-bit integer") }
            try db.execute(
                sql: """
                    INSERT INTO kv (app, key, value, expires_at, updated_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (app, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, updated_at = excluded.updated_at
                    """,
                arguments: [app, key, String(sum), expiresAt, now]
            )
            try self.insertOutbox(db, app: app, enqueue: enqueue, event: Self.kvEvent(op: "set", key: key, value: Array(String(sum).utf8)), now: now)
            return sum
        }
    }

    public func kvList(app: String, prefix: String, after: String?, limit: Int, now: Milliseconds) async throws -> [KVEntry] {
        try await read { db in
            // Keys from `prefix` (or just after `after`) up to the end of the prefix range.
            let start = max(prefix, after ?? prefix)
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT key, value, expires_at, updated_at FROM kv
                    WHERE app = ? AND key >= ? AND key < ? AND key > ? AND (expires_at IS NULL OR expires_at > ?)
                    ORDER BY key LIMIT ?
                    """,
                arguments: [app, start, prefix + "\u{10FFFF}", after ?? "", now, limit]
            )
            return rows.map(Self.kvEntry).filter { $0.key.hasPrefix(prefix) }
        }
    }

    public func kvPurgeExpired(now: Milliseconds) async throws -> Int {
        kvCache.beginWriteEverything()
        defer { kvCache.endWriteEverything() }
        return try await write { db in
            try db.execute(sql: "DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", arguments: [now])
            return db.changesCount
        }
    }

    static func kvEntry(_ row: Row) -> KVEntry {
        KVEntry(key: row["key"], value: Array((row["value"] as String).utf8), expiresAt: row["expires_at"], updatedAt: row["updated_at"])
    }
}
