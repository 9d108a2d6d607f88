import Foundation
import GRDB

extension SQLiteStorage {
    // MARK: Topics

    public func createTopic(_ topic: TopicRecord) async throws {
        try await write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM topics WHERE app = ? AND name = ?", arguments: [topic.app, topic.name]) == nil else {
                throw ServiceError(.conflict, "app '\(topic.app)' already has a topic named '\(topic.name)'")
            }
            try Self.insertTopic(db, topic)
        }
    }

    static func insertTopic(_ db: Database, _ topic: TopicRecord) throws {
        try db.execute(
            sql: """
                INSERT INTO topics (app, name, external_subscribable, auth_mode, history_events, history_seconds, source, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [topic.app, topic.name, topic.externalSubscribable, topic.authMode.rawValue, topic.historyEvents, topic.historySeconds,
                        topic.source.rawValue, topic.createdAt, topic.updatedAt]
        )
    }

    public func topic(app: String, name: String) async throws -> TopicRecord? {
        try await readStatement { db in try Self.topic(db, app: app, name: name) }
    }

    public func topicNow(app: String, name: String) -> TopicRecord?? {
        localReaders.read { db in try Self.topic(db, app: app, name: name) }
    }

    /// A topic, read with one statement through SQLite's C API (as ``kvEntry(_:app:key:now:)``).
    static func topic(_ db: Database, app: String, name: String) throws -> TopicRecord? {
        let statement = RawStatement(try db.cachedStatement(sql: """
            SELECT external_subscribable, auth_mode, history_events, history_seconds, source, last_seq, created_at, updated_at
            FROM topics WHERE app = ? AND name = ?
            """))
        return try statement.withText(1, app) {
            try statement.withText(2, name) {
                try statement.first { row in
                    TopicRecord(
                        app: app, name: name, externalSubscribable: row.integer(0) != 0,
                        authMode: TopicRecord.AuthMode(rawValue: row.text(1)) ?? .token,
                        historyEvents: row.optionalInteger(2).map { Int($0) }, historySeconds: row.optionalInteger(3).map { Int($0) },
                        source: TopicRecord.Source(rawValue: row.text(4)) ?? .api, lastSeq: row.integer(5), createdAt: row.integer(6), updatedAt: row.integer(7)
                    )
                }
            }
        }
    }

    public func topics(app: String) async throws -> [TopicRecord] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM topics WHERE app = ? ORDER BY name", arguments: [app]).map(Self.topic) }
    }

    public func deleteTopic(app: String, name: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM topics WHERE app = ? AND name = ?", arguments: [app, name])
            return db.changesCount > 0
        }
    }

    public func setTopicExternal(app: String, name: String, external: Bool, now: Milliseconds) async throws -> TopicRecord? {
        try await write { db in
            try Row.fetchOne(
                db, sql: "UPDATE topics SET external_subscribable = ?, updated_at = ? WHERE app = ? AND name = ? RETURNING *",
                arguments: [external, now, app, name]
            ).map(Self.topic)
        }
    }

    public func replaceManifestTopics(app: String, topics declared: [TopicRecord], now: Milliseconds) async throws -> TopicChanges {
        try await write { db in
            var changes = TopicChanges()
            let existing = Dictionary(
                try Row.fetchAll(db, sql: "SELECT * FROM topics WHERE app = ?", arguments: [app]).map(Self.topic).map { ($0.name, $0) },
                uniquingKeysWith: { first, _ in first }
            )
            for topic in declared {
                guard let stored = existing[topic.name] else {
                    try Self.insertTopic(db, topic)
                    changes.created.append(topic.name)
                    continue
                }
                if stored.externalSubscribable != topic.externalSubscribable { changes.externalKept.append(topic.name) }
                guard stored.authMode != topic.authMode || stored.historyEvents != topic.historyEvents || stored.historySeconds != topic.historySeconds
                    || stored.source != .manifest
                else { continue }
                // A topic created through the API and then declared in the manifest becomes the manifest's.
                try db.execute(
                    sql: "UPDATE topics SET auth_mode = ?, history_events = ?, history_seconds = ?, source = 'manifest', updated_at = ? WHERE app = ? AND name = ?",
                    arguments: [topic.authMode.rawValue, topic.historyEvents, topic.historySeconds, now, app, topic.name]
                )
                changes.updated.append(topic.name)
                if stored.authMode != topic.authMode { changes.authChanged.append(topic.name) }
            }
            let names = Set(declared.map(\.name))
            for stored in existing.values.sorted(by: { $0.name < $1.name }) where stored.source == .manifest && !names.contains(stored.name) {
                try db.execute(sql: "DELETE FROM topics WHERE app = ? AND name = ?", arguments: [app, stored.name])
                changes.removed.append(stored.name)
            }
            return changes
        }
    }

    static func topic(_ row: Row) -> TopicRecord {
        TopicRecord(
            app: row["app"], name: row["name"], externalSubscribable: row["external_subscribable"],
            authMode: TopicRecord.AuthMode(rawValue: row["auth_mode"]) ?? .token, historyEvents: row["history_events"], historySeconds: row["history_seconds"],
            source: TopicRecord.Source(rawValue: row["source"]) ?? .api, lastSeq: row["last_seq"], createdAt: row["created_at"], updatedAt: row["updated_at"]
        )
    }

    // MARK: Publishing and history

    public func publish(
        app: String, topic: String, message: [UInt8], now: Milliseconds, defaults: TopicHistoryDefaults, enqueue: OutboxEnqueue,
        event: @escaping @Sendable (Int64?) -> [UInt8], onCommit: @escaping @Sendable (TopicEvent) -> Void
    ) async throws -> (seq: Int64?, eventID: String?) {
        try await write { db in
            let next = try db.cachedStatement(sql: "UPDATE topics SET last_seq = last_seq + 1 WHERE app = ? AND name = ? RETURNING last_seq, history_events")
            var seq: Int64?
            if let row = try Row.fetchOne(next, arguments: [app, topic]) {
                let id: Int64 = row[0]
                seq = id
                let keep = (row[1] as Int?) ?? defaults.events
                if keep > 0 {
                    try db.cachedStatement(sql: "INSERT INTO topic_events (app, topic, seq, message, published_at) VALUES (?, ?, ?, ?, ?)")
                        .execute(arguments: [app, topic, id, String(decoding: message, as: UTF8.self), now])
                    if id > Int64(keep) {
                        try db.cachedStatement(sql: "DELETE FROM topic_events WHERE app = ? AND topic = ? AND seq <= ?")
                            .execute(arguments: [app, topic, id - Int64(keep)])
                    }
                }
            }
            let eventID = try self.insertOutbox(db, app: app, enqueue: enqueue, event: event(seq), now: now)
            if let seq {
                let committed = TopicEvent(app: app, topic: topic, seq: seq, message: message, publishedAt: now)
                // Runs on the writer queue right after the transaction commits, so in commit order;
                // never when it rolls back. Registered last: nothing of this write can fail after it
                // (a write of a batch rolls back alone, to its savepoint).
                db.afterNextTransaction(onCommit: { _ in onCommit(committed) })
            }
            return (seq, eventID)
        }
    }

    public func topicHistory(app: String, topic: String, after: Int64, limit: Int, now: Milliseconds, defaults: TopicHistoryDefaults) async throws -> (events: [TopicEvent], lastSeq: Int64)? {
        try await read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT last_seq, history_seconds FROM topics WHERE app = ? AND name = ?", arguments: [app, topic]) else { return nil }
            let seconds = (row["history_seconds"] as Int?) ?? defaults.seconds
            let statement = try db.cachedStatement(sql: """
                SELECT seq, message, published_at FROM topic_events
                WHERE app = ? AND topic = ? AND seq > ? AND published_at >= ? ORDER BY seq LIMIT ?
                """)
            let events = try Row.fetchAll(statement, arguments: [app, topic, after, now - Int64(seconds) * 1000, limit]).map { row in
                TopicEvent(app: app, topic: topic, seq: row["seq"], message: Array((row["message"] as String).utf8), publishedAt: row["published_at"])
            }
            return (events, row["last_seq"])
        }
    }

    public func trimTopicHistory(now: Milliseconds, defaults: TopicHistoryDefaults) async throws -> Int {
        try await write { db in
            try db.execute(
                sql: """
                    DELETE FROM topic_events WHERE published_at < ? - 1000 * COALESCE(
                        (SELECT history_seconds FROM topics t WHERE t.app = topic_events.app AND t.name = topic_events.topic), ?)
                    """,
                arguments: [now, defaults.seconds]
            )
            return db.changesCount
        }
    }

    // MARK: Keys the server keeps per app

    public func appSecret(app: String, name: String, orInsert sealed: [UInt8], now: Milliseconds) async throws -> [UInt8] {
        try await write { db in
            // Two nodes (or requests) creating the key at once: the first insert wins, both read it.
            try db.execute(
                sql: "INSERT INTO app_secrets (app, name, sealed, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (app, name) DO NOTHING",
                arguments: [app, name, Data(sealed), now]
            )
            guard let stored = try Data.fetchOne(db, sql: "SELECT sealed FROM app_secrets WHERE app = ? AND name = ?", arguments: [app, name]) else {
                throw ServiceError(.notFound, "no app named '\(app)'")
            }
            return [UInt8](stored)
        }
    }
}
