import GRDB

extension SQLiteStorage {
    public func fileRecord(app: String, path: String) async throws -> FileRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM files WHERE app = ? AND path = ?", arguments: [app, path]).map(Self.file)
        }
    }

    public func putFileRecord(app: String, record: FileRecord, enqueue: OutboxEnqueue) async throws -> FileRecord? {
        try await write { db in
            let previous = try Row.fetchOne(db, sql: "SELECT * FROM files WHERE app = ? AND path = ?", arguments: [app, record.path]).map(Self.file)
            try db.execute(
                sql: """
                    INSERT INTO files (app, path, blob, size, content_type, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (app, path) DO UPDATE SET blob = excluded.blob, size = excluded.size,
                        content_type = excluded.content_type, updated_at = excluded.updated_at
                    """,
                arguments: [app, record.path, record.blob, record.size, record.contentType, record.createdAt, record.updatedAt]
            )
            if !enqueue.targets.isEmpty {
                let event = EventJSON.object([
                    ("kind", EventJSON.string("files")), ("op", EventJSON.string("put")), ("path", EventJSON.string(record.path)),
                    ("size", EventJSON.integer(record.size)), ("content_type", EventJSON.string(record.contentType)), ("etag", EventJSON.string(record.blob)),
                ])
                try self.insertOutbox(db, app: app, enqueue: enqueue, event: event, now: record.updatedAt)
            }
            return previous
        }
    }

    public func deleteFileRecord(app: String, path: String, enqueue: OutboxEnqueue) async throws -> FileRecord? {
        try await write { db in
            let deleted = try Row.fetchOne(db, sql: "DELETE FROM files WHERE app = ? AND path = ? RETURNING *", arguments: [app, path]).map(Self.file)
            if deleted != nil, !enqueue.targets.isEmpty {
                let event = EventJSON.object([("kind", EventJSON.string("files")), ("op", EventJSON.string("delete")), ("path", EventJSON.string(path))])
                try self.insertOutbox(db, app: app, enqueue: enqueue, event: event, now: Clock.now())
            }
            return deleted
        }
    }

    public func fileRecords(app: String, prefix: String, after: String?, limit: Int) async throws -> [FileRecord] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM files WHERE app = ? AND path >= ? AND path < ? AND path > ? ORDER BY path LIMIT ?",
                arguments: [app, prefix, prefix + "\u{10FFFF}", after ?? "", limit]
            ).map(Self.file).filter { $0.path.hasPrefix(prefix) }
        }
    }

    public func referencedBlobs(app: String) async throws -> Set<String> {
        try await read { db in Set(try String.fetchAll(db, sql: "SELECT DISTINCT blob FROM files WHERE app = ?", arguments: [app])) }
    }

    static func file(_ row: Row) -> FileRecord {
        FileRecord(
            path: row["path"], blob: row["blob"], size: row["size"], contentType: row["content_type"],
            createdAt: row["created_at"], updatedAt: row["updated_at"]
        )
    }
}
