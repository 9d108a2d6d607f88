import Crypto
public import Foundation
import NIOCore
import PostgresNIO

extension PostgresStorage {
    // MARK: kv

    public func kvGet(app: String, key: String, now: Milliseconds) async throws -> KVEntry? {
        try await read { connection in
            try await connection.first("""
                SELECT key, value, expires_at, updated_at FROM kv WHERE app = \(app) AND key = \(key) AND (expires_at IS NULL OR expires_at > \(now))
                """, logger).map(Self.kvEntry)
        }
    }

    public func kvSet(app: String, key: String, value: [UInt8], expiresAt: Milliseconds?, now: Milliseconds, enqueue: OutboxEnqueue) async throws {
        let text = String(decoding: value, as: UTF8.self)
        let event = enqueue.targets.isEmpty ? [] : SQLiteStorage.kvEvent(op: "set", key: key, value: value)
        try await write { connection in
            try await connection.run("""
                INSERT INTO kv (app, key, value, expires_at, updated_at) VALUES (\(app), \(key), \(text), \(expiresAt), \(now))
                ON CONFLICT (app, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, updated_at = excluded.updated_at
                """, logger)
            try await Self.insertOutbox(connection, logger, app: app, enqueue: enqueue, event: event, now: now)
        }
    }

    public func kvDelete(app: String, key: String, now: Milliseconds, enqueue: OutboxEnqueue) async throws -> Bool {
        try await write { connection in
            guard let row = try await connection.first("DELETE FROM kv WHERE app = \(app) AND key = \(key) RETURNING expires_at", logger) else { return false }
            // An expired entry was already gone as far as callers could tell.
            let wasLive = (try row.get("expires_at", as: Milliseconds?.self)).map { $0 > now } ?? true
            if wasLive {
                try await Self.insertOutbox(connection, logger, app: app, enqueue: enqueue, event: SQLiteStorage.kvEvent(op: "delete", key: key, value: nil), now: now)
            }
            return wasLive
        }
    }

    public func kvIncrement(app: String, key: String, by delta: Int64, now: Milliseconds, enqueue: OutboxEnqueue) async throws -> Int64 {
        try await write { connection in
            // Creates the row if missing, so that FOR UPDATE below always has a row to lock:
            // concurrent increments then run one after the other.
            try await connection.run("""
                INSERT INTO kv (app, key, value, expires_at, updated_at) VALUES (\(app), \(key), '0', NULL, \(now)) ON CONFLICT (app, key) DO NOTHING
                """, logger)
            let current = try await connection.first("SELECT value, expires_at FROM kv WHERE app = \(app) AND key = \(key) FOR UPDATE", logger)
            var base: Int64 = 0
            var expiresAt: Milliseconds?
            if let current, (try current.get("expires_at", as: Milliseconds?.self)).map({ $0 > now }) ?? true {
                guard let number = Int64(try current.get("value", as: String.self)) else {
                    throw ServiceError(.invalidInput, "kv.incr: the value of '\(key)' is not an integer")
                }
                base = number
                expiresAt = try current.get("expires_at")
            }
            let (sum, overflow) = base.addingReportingOverflow(delta)
            guard !overflow else { throw ServiceError(.invalidInput, "kv.incr: '\(key)' would overflow a 64-bit integer") }
            try await connection.run(
                "UPDATE kv SET value = \(String(sum)), expires_at = \(expiresAt), updated_at = \(now) WHERE app = \(app) AND key = \(key)", logger
            )
            try await Self.insertOutbox(
                connection, logger, app: app, enqueue: enqueue, event: SQLiteStorage.kvEvent(op: "set", key: key, value: Array(String(sum).utf8)), now: now
            )
            return sum
        }
    }

    public func kvList(app: String, prefix: String, after: String?, limit: Int, now: Milliseconds) async throws -> [KVEntry] {
        try await read { connection in
            let start = max(prefix, after ?? prefix)
            return try await connection.all("""
                SELECT key, value, expires_at, updated_at FROM kv
                WHERE app = \(app) AND key >= \(start) AND key < \(prefix + "\u{10FFFF}") AND key > \(after ?? "") AND (expires_at IS NULL OR expires_at > \(now))
                ORDER BY key LIMIT \(limit)
                """, logger).map(Self.kvEntry).filter { $0.key.hasPrefix(prefix) }
        }
    }

    public func kvPurgeExpired(now: Milliseconds) async throws -> Int {
        try await write { connection in
            try await connection.run("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= \(now) RETURNING 1", logger)
        }
    }

    static func kvEntry(_ row: PostgresRandomAccessRow) throws -> KVEntry {
        KVEntry(key: try row.get("key"), value: try row.json("value"), expiresAt: try row.get("expires_at"), updatedAt: try row.get("updated_at"))
    }

    // MARK: Files

    public func fileRecord(app: String, path: String) async throws -> FileRecord? {
        try await read { connection in
            try await connection.first("SELECT * FROM files WHERE app = \(app) AND path = \(path)", logger).map(Self.file)
        }
    }

    public func putFileRecord(app: String, record: FileRecord, enqueue: OutboxEnqueue) async throws -> FileRecord? {
        try await write { connection in
            let previous = try await connection.first("SELECT * FROM files WHERE app = \(app) AND path = \(record.path) FOR UPDATE", logger).map(Self.file)
            try await connection.run("""
                INSERT INTO files (app, path, blob, size, content_type, created_at, updated_at)
                VALUES (\(app), \(record.path), \(record.blob), \(record.size), \(record.contentType), \(record.createdAt), \(record.updatedAt))
                ON CONFLICT (app, path) DO UPDATE SET blob = excluded.blob, size = excluded.size, content_type = excluded.content_type, updated_at = excluded.updated_at
                """, logger)
            if !enqueue.targets.isEmpty {
                let event = EventJSON.object([
                    ("kind", EventJSON.string("files")), ("op", EventJSON.string("put")), ("path", EventJSON.string(record.path)),
                    ("size", EventJSON.integer(record.size)), ("content_type", EventJSON.string(record.contentType)), ("etag", EventJSON.string(record.blob)),
                ])
                try await Self.insertOutbox(connection, logger, app: app, enqueue: enqueue, event: event, now: record.updatedAt)
            }
            return previous
        }
    }

    public func deleteFileRecord(app: String, path: String, enqueue: OutboxEnqueue) async throws -> FileRecord? {
        try await write { connection in
            let deleted = try await connection.first("DELETE FROM files WHERE app = \(app) AND path = \(path) RETURNING *", logger).map(Self.file)
            if deleted != nil, !enqueue.targets.isEmpty {
                let event = EventJSON.object([("kind", EventJSON.string("files")), ("op", EventJSON.string("delete")), ("path", EventJSON.string(path))])
                try await Self.insertOutbox(connection, logger, app: app, enqueue: enqueue, event: event, now: Clock.now())
            }
            return deleted
        }
    }

    public func fileRecords(app: String, prefix: String, after: String?, limit: Int) async throws -> [FileRecord] {
        try await read { connection in
            try await connection.all("""
                SELECT * FROM files WHERE app = \(app) AND path >= \(prefix) AND path < \(prefix + "\u{10FFFF}") AND path > \(after ?? "") ORDER BY path LIMIT \(limit)
                """, logger).map(Self.file).filter { $0.path.hasPrefix(prefix) }
        }
    }

    public func referencedBlobs(app: String) async throws -> Set<String> {
        try await read { connection in
            Set(try await connection.all("SELECT DISTINCT blob FROM files WHERE app = \(app)", logger).map { try $0.get("blob", as: String.self) })
        }
    }

    static func file(_ row: PostgresRandomAccessRow) throws -> FileRecord {
        FileRecord(
            path: try row.get("path"), blob: try row.get("blob"), size: try row.get("size"), contentType: try row.get("content_type"),
            createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at")
        )
    }
}

/// File contents in PostgreSQL (`file_blobs`), so every node reads what any node wrote. Named by
/// SHA-256 like the blobs on disk; a blob is committed before any metadata points at it, and the
/// sweep removes only blobs nobody points at that are older than its cutoff.
public struct PostgresBlobStore: BlobStore {
    let storage: PostgresStorage

    public init(storage: PostgresStorage) { self.storage = storage }

    public func write(app: String, content: [UInt8]) async throws -> String {
        let blob = Identifiers.hex(Identifiers.sha256(content))
        let now = Clock.now()
        try await storage.write { connection in
            try await connection.run("""
                INSERT INTO file_blobs (app, blob, content, written_at) VALUES (\(app), \(blob), \(ByteBuffer(bytes: content)), \(now))
                ON CONFLICT (app, blob) DO UPDATE SET written_at = excluded.written_at
                """, storage.logger)
        }
        return blob
    }

    public func read(app: String, blob: String) async throws -> [UInt8] {
        try await storage.read { connection in
            guard let row = try await connection.first("SELECT content FROM file_blobs WHERE app = \(app) AND blob = \(blob)", storage.logger) else {
                throw ServiceError(.internal, "the content of a stored file is missing")
            }
            return try row.bytes("content")
        }
    }

    /// Nothing to do: the rows go with the app (`ON DELETE CASCADE`).
    public func removeAll(app: String) async throws {}

    public func sweep(app: String, referenced: Set<String>, olderThan cutoff: Date) async throws -> FileStore.SweepResult {
        let before = Milliseconds(cutoff.timeIntervalSince1970 * 1000)
        let removed = try await storage.write { connection in
            // Decided in SQL, under the same snapshot as the files rows it checks.
            try await connection.run("""
                DELETE FROM file_blobs b WHERE b.app = \(app) AND b.written_at < \(before)
                AND NOT EXISTS (SELECT 1 FROM files f WHERE f.app = b.app AND f.blob = b.blob) RETURNING 1
                """, storage.logger)
        }
        return FileStore.SweepResult(temporaryFiles: 0, unreferencedBlobs: removed)
    }

    public func apps() async throws -> [String] {
        try await storage.read { connection in
            try await connection.all("SELECT DISTINCT app FROM file_blobs", storage.logger).map { try $0.get("app", as: String.self) }
        }
    }
}
