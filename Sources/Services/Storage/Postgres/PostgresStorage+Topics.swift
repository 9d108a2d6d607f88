import Foundation
import NIOCore
import NIOPosix
import PostgresNIO

extension PostgresStorage {
    // MARK: Topics

    public func createTopic(_ topic: TopicRecord) async throws {
        try await write { connection in
            guard try await Self.insertTopic(connection, logger, topic) else {
                throw ServiceError(.conflict, "app '\(topic.app)' already has a topic named '\(topic.name)'")
            }
            try await announce(connection, app: topic.app)
        }
    }

    /// Inserts unless the app already has a topic of that name; true when inserted.
    static func insertTopic(_ connection: PostgresConnection, _ logger: Logger, _ topic: TopicRecord) async throws -> Bool {
        try await connection.run("""
            INSERT INTO topics (app, name, external_subscribable, auth_mode, history_events, history_seconds, source, created_at, updated_at)
            VALUES (\(topic.app), \(topic.name), \(topic.externalSubscribable), \(topic.authMode.rawValue), \(topic.historyEvents), \(topic.historySeconds),
                    \(topic.source.rawValue), \(topic.createdAt), \(topic.updatedAt))
            ON CONFLICT (app, name) DO NOTHING RETURNING 1
            """, logger) > 0
    }

    public func topic(app: String, name: String) async throws -> TopicRecord? {
        try await read { connection in try await connection.first("SELECT * FROM topics WHERE app = \(app) AND name = \(name)", logger).map(Self.topic) }
    }

    public func topics(app: String) async throws -> [TopicRecord] {
        try await read { connection in try await connection.all("SELECT * FROM topics WHERE app = \(app) ORDER BY name", logger).map(Self.topic) }
    }

    public func deleteTopic(app: String, name: String) async throws -> Bool {
        try await write { connection in
            guard try await connection.run("DELETE FROM topics WHERE app = \(app) AND name = \(name) RETURNING 1", logger) > 0 else { return false }
            try await announce(connection, app: app)
            return true
        }
    }

    public func setTopicExternal(app: String, name: String, external: Bool, now: Milliseconds) async throws -> TopicRecord? {
        try await write { connection in
            let topic = try await connection.first(
                "UPDATE topics SET external_subscribable = \(external), updated_at = \(now) WHERE app = \(app) AND name = \(name) RETURNING *", logger
            ).map(Self.topic)
            if topic != nil { try await announce(connection, app: app) }
            return topic
        }
    }

    public func replaceManifestTopics(app: String, topics declared: [TopicRecord], now: Milliseconds) async throws -> TopicChanges {
        try await write { connection in
            var changes = TopicChanges()
            // Locks the app row: two nodes deploying the same app at once take turns.
            guard try await connection.first("SELECT 1 FROM apps WHERE name = \(app) FOR UPDATE", logger) != nil else {
                throw ServiceError(.notFound, "no app named '\(app)'")
            }
            let existing = Dictionary(
                try await connection.all("SELECT * FROM topics WHERE app = \(app)", logger).map(Self.topic).map { ($0.name, $0) },
                uniquingKeysWith: { first, _ in first }
            )
            for topic in declared {
                guard let stored = existing[topic.name] else {
                    _ = try await Self.insertTopic(connection, logger, topic)
                    changes.created.append(topic.name)
                    continue
                }
                if stored.externalSubscribable != topic.externalSubscribable { changes.externalKept.append(topic.name) }
                guard stored.authMode != topic.authMode || stored.historyEvents != topic.historyEvents || stored.historySeconds != topic.historySeconds
                    || stored.source != .manifest
                else { continue }
                try await connection.run("""
                    UPDATE topics SET auth_mode = \(topic.authMode.rawValue), history_events = \(topic.historyEvents), history_seconds = \(topic.historySeconds),
                        source = 'manifest', updated_at = \(now) WHERE app = \(app) AND name = \(topic.name)
                    """, logger)
                changes.updated.append(topic.name)
                if stored.authMode != topic.authMode { changes.authChanged.append(topic.name) }
            }
            let names = Set(declared.map(\.name))
            for stored in existing.values.sorted(by: { $0.name < $1.name }) where stored.source == .manifest && !names.contains(stored.name) {
                try await connection.run("DELETE FROM topics WHERE app = \(app) AND name = \(stored.name)", logger)
                changes.removed.append(stored.name)
            }
            try await announce(connection, app: app)
            return changes
        }
    }

    static func topic(_ row: PostgresRandomAccessRow) throws -> TopicRecord {
        TopicRecord(
            app: try row.get("app"), name: try row.get("name"), externalSubscribable: try row.get("external_subscribable"),
            authMode: TopicRecord.AuthMode(rawValue: try row.get("auth_mode")) ?? .token, historyEvents: try row.get("history_events"),
            historySeconds: try row.get("history_seconds"), source: TopicRecord.Source(rawValue: try row.get("source")) ?? .api,
            lastSeq: try row.get("last_seq"), createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at")
        )
    }

    // MARK: Publishing and history

    /// NOTIFY payloads must stay under 8000 bytes; a larger event travels through `topic_spill`.
    static let notifyLimit = 7000

    public func publish(
        app: String, topic: String, message: [UInt8], now: Milliseconds, defaults: TopicHistoryDefaults, enqueue: OutboxEnqueue,
        event: @escaping @Sendable (Int64?) -> [UInt8], onCommit: @escaping @Sendable (TopicEvent) -> Void
    ) async throws -> (seq: Int64?, eventID: String?) {
        let text = String(decoding: message, as: UTF8.self)
        let node = nodeID
        @Sendable func publishNow() async throws -> (seq: Int64?, eventID: String?) {
            let (seq, eventID) = try await write { connection -> (Int64?, String?) in
                // The topic row stays locked until commit: ids are consecutive and commit in order.
                let row = try await connection.first("""
                    WITH next AS (
                        UPDATE topics SET last_seq = last_seq + 1 WHERE app = \(app) AND name = \(topic)
                        RETURNING last_seq, COALESCE(history_events, \(defaults.events)) AS keep),
                    kept AS (
                        INSERT INTO topic_events (app, topic, seq, message, published_at)
                        SELECT \(app), \(topic), last_seq, \(text), \(now) FROM next WHERE keep > 0 RETURNING seq),
                    trimmed AS (
                        DELETE FROM topic_events e USING next
                        WHERE e.app = \(app) AND e.topic = \(topic) AND next.keep > 0 AND e.seq <= next.last_seq - next.keep RETURNING 1)
                    SELECT last_seq FROM next
                    """, logger)
                var seq: Int64?
                if let row {
                    let id: Int64 = try row.get("last_seq")
                    seq = id
                    // Every node's subscribers: NOTIFY is delivered at commit, in commit order.
                    let header = [EventJSON.string(node), EventJSON.string(app), EventJSON.string(topic), EventJSON.integer(id), EventJSON.integer(now)]
                    var payload = "[" + header.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ",") + "]"
                    if message.count + payload.utf8.count + 32 > Self.notifyLimit {
                        let spill = try await connection.first("INSERT INTO topic_spill (message, published_at) VALUES (\(text), \(now)) RETURNING id", logger)
                        payload += "\nspill:" + String(try spill?.get("id", as: Int64.self) ?? 0)
                    } else {
                        payload += "\n" + text
                    }
                    try await connection.run("SELECT pg_notify('picloud_topics', \(payload))", logger)
                }
                let eventID = try await Self.insertOutbox(connection, logger, app: app, enqueue: enqueue, event: event(seq), now: now)
                return (seq, eventID)
            }
            // After the commit, and only then, this node's own subscribers.
            if let seq { onCommit(TopicEvent(app: app, topic: topic, seq: seq, message: message, publishedAt: now)) }
            return (seq, eventID)
        }
        // This node's publishes to a topic take turns from before the id is taken until this
        // node's subscribers have the event: they see this node's events in id order. (The
        // database's row lock serializes them anyway; events of other nodes arrive by NOTIFY.)
        // A topic whose last publish here found it unregistered needs no turn: it gets no ids
        // and nobody subscribes to it.
        let key = TopicKey(app: app, topic: topic)
        if unregisteredTopics.contains(key) {
            let result = try await publishNow()
            if result.seq != nil { unregisteredTopics.remove(key) }
            return result
        }
        return try await publishTurns.withLock(key) {
            let result = try await publishNow()
            if result.seq == nil { unregisteredTopics.insert(key) }
            return result
        }
    }

    public func topicHistory(app: String, topic: String, after: Int64, limit: Int, now: Milliseconds, defaults: TopicHistoryDefaults) async throws -> (events: [TopicEvent], lastSeq: Int64)? {
        try await read { connection in
            guard let row = try await connection.first("SELECT last_seq, history_seconds FROM topics WHERE app = \(app) AND name = \(topic)", logger) else { return nil }
            let seconds = (try row.get("history_seconds", as: Int?.self)) ?? defaults.seconds
            let events = try await connection.all("""
                SELECT seq, message, published_at FROM topic_events
                WHERE app = \(app) AND topic = \(topic) AND seq > \(after) AND published_at >= \(now - Int64(seconds) * 1000) ORDER BY seq LIMIT \(limit)
                """, logger).map { row in
                TopicEvent(app: app, topic: topic, seq: try row.get("seq"), message: try row.json("message"), publishedAt: try row.get("published_at"))
            }
            return (events, try row.get("last_seq"))
        }
    }

    public func trimTopicHistory(now: Milliseconds, defaults: TopicHistoryDefaults) async throws -> Int {
        try await write { connection in
            // Spilled events only need to live until every node has read them.
            try await connection.run("DELETE FROM topic_spill WHERE published_at < \(now - 300_000)", logger)
            return try await connection.run("""
                DELETE FROM topic_events e WHERE e.published_at < \(now) - 1000 * COALESCE(
                    (SELECT history_seconds FROM topics t WHERE t.app = e.app AND t.name = e.topic), \(defaults.seconds)) RETURNING 1
                """, logger)
        }
    }

    // MARK: Keys the server keeps per app

    public func appSecret(app: String, name: String, orInsert sealed: [UInt8], now: Milliseconds) async throws -> [UInt8] {
        try await write { connection in
            // Two nodes (or requests) creating the key at once: the first insert wins, both read it.
            try await connection.run("""
                INSERT INTO app_secrets (app, name, sealed, created_at) SELECT \(app), \(name), \(ByteBuffer(bytes: sealed)), \(now)
                WHERE EXISTS (SELECT 1 FROM apps WHERE name = \(app)) ON CONFLICT (app, name) DO NOTHING
                """, logger)
            guard let row = try await connection.first("SELECT sealed FROM app_secrets WHERE app = \(app) AND name = \(name)", logger) else {
                throw ServiceError(.notFound, "no app named '\(app)'")
            }
            return try row.bytes("sealed")
        }
    }
}

// MARK: - Listening to the other nodes

/// What the other nodes say through the database.
public enum ClusterSignal: Sendable {
    /// Some node committed outbox rows: dispatchers should look.
    case outbox
    /// Some node committed an event on a registered topic.
    case published(TopicEvent)
    /// Another node changed an app's deployment, triggers or topics (or deleted the app).
    case changed(app: String)
    /// Listening (again): anything said while this node was not listening was missed.
    case listening
}

extension PostgresStorage {
    /// Listens on a dedicated connection until cancelled, handing each signal to `handle`. After a
    /// lost connection it reconnects (backing off up to 5 s) and says `.listening` again, so the
    /// caller can look for what it missed. A ping every 5 s finds a silently dead connection.
    public func listen(_ handle: @escaping @Sendable (ClusterSignal) async -> Void) async {
        var delay: Duration = .milliseconds(200)
        var attempt = 0
        while !Task.isCancelled {
            attempt += 1
            do {
                let connection = try await PostgresConnection.connect(
                    on: MultiThreadedEventLoopGroup.singleton.any(), configuration: location.connectionConfiguration(name: "picloud-listener"), id: attempt, logger: logger
                )
                do {
                    try await listen(on: connection, handle: handle) { delay = .milliseconds(200) }
                } catch where !(error is CancellationError) && !Task.isCancelled {
                    logger.warning("cluster listener: connection lost (\(String(reflecting: error))); reconnecting")
                } catch {}
                try? await connection.close()
            } catch where !Task.isCancelled {
                logger.warning("cluster listener: cannot connect to \(location) (\(String(reflecting: error))); retrying in \(delay)")
            } catch {}
            guard !Task.isCancelled else { return }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
        }
    }

    private func listen(on connection: PostgresConnection, handle: @escaping @Sendable (ClusterSignal) async -> Void, connected: () -> Void) async throws {
        let logger = logger
        try await connection.listen(on: "picloud_outbox") { outbox in
            try await connection.listen(on: "picloud_topics") { topics in
              try await connection.listen(on: "picloud_control") { control in
                connected()
                await handle(.listening)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await notification in control {
                            let parts = notification.payload.split(separator: " ", maxSplits: 1)
                            guard parts.count == 2, parts[0] != self.nodeID else { continue }
                            await handle(.changed(app: String(parts[1])))
                        }
                        throw ListenerEnded()
                    }
                    group.addTask {
                        for try await _ in outbox { await handle(.outbox) }
                        throw ListenerEnded()
                    }
                    group.addTask {
                        for try await notification in topics {
                            if let event = try await self.decodeTopicNotification(notification.payload) { await handle(.published(event)) }
                        }
                        throw ListenerEnded()
                    }
                    group.addTask {
                        while true {
                            try await Task.sleep(for: .seconds(5))
                            try await connection.query("SELECT 1", logger: logger)
                        }
                    }
                    defer { group.cancelAll() }
                    try await group.next()
                }
              }
            }
        }
    }

    /// A `picloud_topics` payload: a JSON header line `[node, app, topic, seq, published_at]`,
    /// then the message, or `spill:<id>` for a message kept in `topic_spill`. Nil for this node's
    /// own events (its subscribers had them at commit).
    func decodeTopicNotification(_ payload: String) async throws -> TopicEvent? {
        guard let newline = payload.firstIndex(of: "\n"),
              let header = try? JSONSerialization.jsonObject(with: Data(payload[..<newline].utf8)) as? [Any], header.count == 5,
              let node = header[0] as? String, let app = header[1] as? String, let topic = header[2] as? String,
              let seq = (header[3] as? NSNumber)?.int64Value, let publishedAt = (header[4] as? NSNumber)?.int64Value
        else {
            logger.warning("cluster listener: ignoring a malformed topic notification")
            return nil
        }
        guard node != nodeID else { return nil }
        let rest = payload[payload.index(after: newline)...]
        if rest.hasPrefix("spill:"), let id = Int64(rest.dropFirst("spill:".count)) {
            let message = try await read { connection in
                try await connection.first("SELECT message FROM topic_spill WHERE id = \(id)", logger)?.json("message")
            }
            guard let message else { return nil } // swept already: subscribers catch up from the history
            return TopicEvent(app: app, topic: topic, seq: seq, message: message, publishedAt: publishedAt)
        }
        return TopicEvent(app: app, topic: topic, seq: seq, message: Array(rest.utf8), publishedAt: publishedAt)
    }
}

/// The database ended a notification stream (the connection closed).
struct ListenerEnded: Error, CustomStringConvertible {
    var description: String { "the notification stream ended" }
}
