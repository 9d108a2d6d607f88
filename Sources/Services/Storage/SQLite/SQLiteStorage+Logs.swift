import GRDB

extension SQLiteStorage {
    public func appendLogs(_ entries: [LogEntry]) async throws -> [LogEntry] {
        try await write { db in
            let statement = try db.cachedStatement(sql: "INSERT INTO logs (app, at, level, message, request_id) SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM apps WHERE name = ?)")
            var stored: [LogEntry] = []
            for var entry in entries {
                try statement.execute(arguments: [entry.app, entry.at, entry.level.rawValue, entry.message, entry.requestID, entry.app])
                guard db.changesCount > 0 else { continue } // the app was deleted meanwhile
                entry.id = db.lastInsertedRowID
                stored.append(entry)
            }
            return stored
        }
    }

    public func logs(app: String, after: Int64?, minimumLevel: LogEntry.Level, limit: Int) async throws -> [LogEntry] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM logs WHERE app = ? AND id > ? AND level IN (\(Self.levels(from: minimumLevel))) ORDER BY id LIMIT ?",
                arguments: [app, after ?? 0, limit]
            ).map(Self.log)
        }
    }

    public func recentLogs(app: String, minimumLevel: LogEntry.Level, limit: Int) async throws -> [LogEntry] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM logs WHERE app = ? AND level IN (\(Self.levels(from: minimumLevel))) ORDER BY id DESC LIMIT ?",
                arguments: [app, limit]
            ).map(Self.log).reversed()
        }
    }

    public func trimLogs(keep: Int) async throws -> Int {
        try await write { db in
            var removed = 0
            for app in try String.fetchAll(db, sql: "SELECT name FROM apps") {
                guard let cutoff = try Int64.fetchOne(db, sql: "SELECT id FROM logs WHERE app = ? ORDER BY id DESC LIMIT 1 OFFSET ?", arguments: [app, keep]) else { continue }
                try db.execute(sql: "DELETE FROM logs WHERE app = ? AND id <= ?", arguments: [app, cutoff])
                removed += db.changesCount
            }
            return removed
        }
    }

    /// The level names at or above `level`, as SQL literals (a closed set, not input).
    static func levels(from level: LogEntry.Level) -> String {
        LogEntry.Level.allCases.filter { $0 >= level }.map { "'\($0.rawValue)'" }.joined(separator: ", ")
    }

    static func log(_ row: Row) -> LogEntry {
        LogEntry(
            id: row["id"], app: row["app"], at: row["at"], level: LogEntry.Level(rawValue: row["level"]) ?? .info,
            message: row["message"], requestID: row["request_id"]
        )
    }
}
