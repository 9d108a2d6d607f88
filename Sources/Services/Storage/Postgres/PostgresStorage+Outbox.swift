import Foundation
import PostgresNIO

/// The outbox on PostgreSQL: several nodes claim rows at once with `FOR UPDATE SKIP LOCKED`
/// (a row is leased by exactly one node; others skip it instead of waiting), leases expire so a
/// dead node's rows are delivered by another, and every statement that checks a lease names its
/// owner. An insert into the outbox notifies every node at commit (a trigger in the schema).
extension PostgresStorage {
    // MARK: Writing events (inside the caller's transaction)

    /// One outbox row per target; returns the event id of the first (nil when there was none).
    @discardableResult
    static func insertOutbox(_ connection: PostgresConnection, _ logger: Logger, app: String, enqueue: OutboxEnqueue, event: [UInt8], now: Milliseconds) async throws -> String? {
        guard !enqueue.targets.isEmpty else { return nil }
        let text = String(decoding: event, as: UTF8.self)
        var first: String?
        // One statement for every target: arrays unnested into rows.
        var eventIDs: [String] = [], triggerIDs: [String] = [], kinds: [String] = [], handlers: [String] = []
        var maxAttempts: [Int] = [], bases: [Int64] = [], caps: [Int64] = [], timeouts: [Int64?] = [], toDeadLetter: [Bool] = []
        for target in enqueue.targets {
            let eventID = "evt_" + Identifiers.eventID(at: now)
            first = first ?? eventID
            eventIDs.append(eventID)
            triggerIDs.append(target.triggerID)
            kinds.append(target.kind.rawValue)
            handlers.append(target.handler)
            maxAttempts.append(target.retry.maxAttempts)
            bases.append(target.retry.baseMilliseconds)
            caps.append(target.retry.capMilliseconds)
            timeouts.append(target.timeoutMilliseconds)
            toDeadLetter.append(target.kind == .deadLetter)
        }
        try await connection.run("""
            INSERT INTO outbox (event_id, app, trigger_id, kind, handler, event, depth, max_attempts, backoff_base_ms, backoff_cap_ms,
                                timeout_ms, to_dead_letter, due_at, created_at)
            SELECT e, \(app), t, k, h, \(text), \(enqueue.depth), m, b, c, o, d, \(now), \(now)
            FROM unnest(\(eventIDs)::text[], \(triggerIDs)::text[], \(kinds)::text[], \(handlers)::text[], \(maxAttempts)::int[],
                        \(bases)::bigint[], \(caps)::bigint[], \(timeouts.map { $0 ?? -1 })::bigint[], \(toDeadLetter)::boolean[])
                 AS x(e, t, k, h, m, b, c, o0, d), LATERAL (SELECT NULLIF(o0, -1) AS o) n
            """, logger)
        return first
    }

    public func enqueue(app: String, enqueue: OutboxEnqueue, event: [UInt8], now: Milliseconds) async throws -> String {
        guard !enqueue.targets.isEmpty else { return "evt_" + Identifiers.eventID(at: now) }
        return try await write { connection in
            try await Self.insertOutbox(connection, logger, app: app, enqueue: enqueue, event: event, now: now) ?? ""
        }
    }

    // MARK: Delivering

    public func claimDeliveries(owner: String, now: Milliseconds, leaseMilliseconds: Int64, limit: Int) async throws -> [OutboxDelivery] {
        try await completeAndClaim(completed: [], owner: owner, now: now, leaseMilliseconds: leaseMilliseconds, limit: limit)
    }

    public func completeDeliveries(ids: [Int64], owner: String) async throws {
        guard !ids.isEmpty else { return }
        try await write { connection in try await connection.run("DELETE FROM outbox WHERE id = ANY(\(ids)) AND lease_owner = \(owner)", logger) }
    }

    public func completeAndClaim(completed: [Int64], owner: String, now: Milliseconds, leaseMilliseconds: Int64, limit: Int) async throws -> [OutboxDelivery] {
        guard !completed.isEmpty || limit > 0 else { return [] }
        return try await write { connection in
            if !completed.isEmpty {
                try await connection.run("DELETE FROM outbox WHERE id = ANY(\(completed)) AND lease_owner = \(owner)", logger)
            }
            guard limit > 0 else { return [] }
            return try await connection.all("""
                UPDATE outbox SET leased_until = \(now + leaseMilliseconds), lease_owner = \(owner), attempts = attempts + 1
                WHERE id IN (
                    SELECT id FROM outbox WHERE due_at <= \(now) AND (leased_until IS NULL OR leased_until < \(now))
                    ORDER BY due_at, id LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING *
                """, logger).map(Self.delivery).sorted { $0.id < $1.id }
        }
    }

    public func retryDelivery(id: Int64, owner: String, dueAt: Milliseconds, error: String) async throws {
        try await write { connection in
            try await connection.run("""
                UPDATE outbox SET due_at = \(dueAt), leased_until = NULL, lease_owner = NULL, last_error = \(error) WHERE id = \(id) AND lease_owner = \(owner)
                """, logger)
        }
    }

    public func deadLetter(_ delivery: OutboxDelivery, owner: String, error: String, now: Milliseconds, deadLetterTargets: OutboxEnqueue) async throws -> DeadLetterRecord? {
        try await write { connection in
            guard try await connection.run("DELETE FROM outbox WHERE id = \(delivery.id) AND lease_owner = \(owner) RETURNING 1", logger) > 0 else {
                return nil // the lease ran out and another delivery owns it now
            }
            let record = DeadLetterRecord(
                id: "dl_" + Identifiers.ulid(at: now), app: delivery.app, eventID: delivery.eventID, triggerID: delivery.triggerID,
                kind: delivery.kind, handler: delivery.handler, event: delivery.event, depth: delivery.depth, attempts: delivery.attempts,
                lastError: error, firstEnqueuedAt: delivery.createdAt, failedAt: now
            )
            try await connection.run("""
                INSERT INTO dead_letters (id, app, event_id, trigger_id, kind, handler, event, depth, attempts, last_error, first_enqueued_at, failed_at)
                VALUES (\(record.id), \(record.app), \(record.eventID), \(record.triggerID), \(record.kind.rawValue), \(record.handler),
                        \(String(decoding: record.event, as: UTF8.self)), \(record.depth), \(record.attempts), \(error), \(record.firstEnqueuedAt), \(now))
                """, logger)
            // The dead_letter triggers fire in the same transaction: the failure cannot be recorded without them.
            try await Self.insertOutbox(connection, logger, app: delivery.app, enqueue: deadLetterTargets, event: SQLiteStorage.deadLetterEvent(record), now: now)
            return record
        }
    }

    public func releaseDelivery(id: Int64, owner: String) async throws {
        try await write { connection in
            try await connection.run("""
                UPDATE outbox SET leased_until = NULL, lease_owner = NULL, attempts = GREATEST(0, attempts - 1) WHERE id = \(id) AND lease_owner = \(owner)
                """, logger)
        }
    }

    public func dropDelivery(id: Int64, owner: String) async throws {
        try await write { connection in try await connection.run("DELETE FROM outbox WHERE id = \(id) AND lease_owner = \(owner)", logger) }
    }

    public func outbox(app: String, after: Int64?, limit: Int) async throws -> [OutboxDelivery] {
        try await read { connection in
            try await connection.all("SELECT * FROM outbox WHERE app = \(app) AND id > \(after ?? 0) ORDER BY id LIMIT \(limit)", logger).map(Self.delivery)
        }
    }

    public func outboxDepth() async throws -> Int {
        try await read { connection in try await connection.first("SELECT COUNT(*) AS n FROM outbox", logger)?.get("n", as: Int.self) ?? 0 }
    }

    public func nextDueTime(now: Milliseconds) async throws -> Milliseconds? {
        try await read { connection in
            try await connection.first(
                "SELECT MIN(CASE WHEN leased_until IS NULL OR leased_until < \(now) THEN due_at ELSE leased_until END) AS due FROM outbox", logger
            )?.get("due", as: Milliseconds?.self)
        }
    }

    static func delivery(_ row: PostgresRandomAccessRow) throws -> OutboxDelivery {
        OutboxDelivery(
            id: try row.get("id"), eventID: try row.get("event_id"), app: try row.get("app"), triggerID: try row.get("trigger_id"),
            kind: TriggerKind(rawValue: try row.get("kind")) ?? .kv, handler: try row.get("handler"), event: try row.json("event"),
            depth: try row.get("depth"), attempts: try row.get("attempts"),
            retry: RetryPolicy(maxAttempts: try row.get("max_attempts"), baseMilliseconds: try row.get("backoff_base_ms"), capMilliseconds: try row.get("backoff_cap_ms")),
            timeoutMilliseconds: try row.get("timeout_ms"), toDeadLetter: try row.get("to_dead_letter"), dueAt: try row.get("due_at"),
            leasedUntil: try row.get("leased_until"), lastError: try row.get("last_error"), createdAt: try row.get("created_at")
        )
    }

    // MARK: Dead letters

    public func deadLetters(app: String, triggerID: String?, handler: String?, before: String?, limit: Int) async throws -> [DeadLetterRecord] {
        try await read { connection in
            try await connection.all("""
                SELECT * FROM dead_letters WHERE app = \(app) AND (\(triggerID)::text IS NULL OR trigger_id = \(triggerID))
                    AND (\(handler)::text IS NULL OR handler = \(handler)) AND (\(before)::text IS NULL OR id COLLATE "C" < \(before))
                ORDER BY id COLLATE "C" DESC LIMIT \(limit)
                """, logger).map(Self.deadLetter)
        }
    }

    public func deadLetter(app: String, id: String) async throws -> DeadLetterRecord? {
        try await read { connection in
            try await connection.first("SELECT * FROM dead_letters WHERE app = \(app) AND id = \(id)", logger).map(Self.deadLetter)
        }
    }

    public func replayDeadLetter(app: String, id: String, target: OutboxTarget, now: Milliseconds) async throws -> Bool {
        try await write { connection in
            guard let row = try await connection.first("DELETE FROM dead_letters WHERE app = \(app) AND id = \(id) RETURNING *", logger) else { return false }
            let record = try Self.deadLetter(row)
            try await connection.run("""
                INSERT INTO outbox (event_id, app, trigger_id, kind, handler, event, depth, max_attempts, backoff_base_ms, backoff_cap_ms,
                                    timeout_ms, to_dead_letter, due_at, created_at)
                VALUES (\(record.eventID), \(app), \(target.triggerID), \(record.kind.rawValue), \(target.handler), \(String(decoding: record.event, as: UTF8.self)),
                        \(record.depth), \(target.retry.maxAttempts), \(target.retry.baseMilliseconds), \(target.retry.capMilliseconds),
                        \(target.timeoutMilliseconds), false, \(now), \(now))
                """, logger)
            return true
        }
    }

    public func purgeDeadLetters(app: String, id: String?, triggerID: String?, handler: String?) async throws -> Int {
        try await write { connection in
            try await connection.run("""
                DELETE FROM dead_letters WHERE app = \(app) AND (\(id)::text IS NULL OR id = \(id)) AND (\(triggerID)::text IS NULL OR trigger_id = \(triggerID))
                    AND (\(handler)::text IS NULL OR handler = \(handler)) RETURNING 1
                """, logger)
        }
    }

    static func deadLetter(_ row: PostgresRandomAccessRow) throws -> DeadLetterRecord {
        DeadLetterRecord(
            id: try row.get("id"), app: try row.get("app"), eventID: try row.get("event_id"), triggerID: try row.get("trigger_id"),
            kind: TriggerKind(rawValue: try row.get("kind")) ?? .kv, handler: try row.get("handler"), event: try row.json("event"),
            depth: try row.get("depth"), attempts: try row.get("attempts"), lastError: try row.get("last_error"),
            firstEnqueuedAt: try row.get("first_enqueued_at"), failedAt: try row.get("failed_at")
        )
    }

    // MARK: Cron

    public func cronLastFired(triggerID: String) async throws -> Milliseconds? {
        try await read { connection in
            try await connection.first("SELECT last_fired_at FROM cron_state WHERE trigger_id = \(triggerID)", logger)?.get("last_fired_at", as: Milliseconds.self)
        }
    }

    public func fireCron(app: String, triggerID: String, previous: Milliseconds?, scheduledAt: Milliseconds, enqueue: OutboxEnqueue, event: [UInt8], now: Milliseconds) async throws -> Bool {
        try await write { connection in
            // A conditional write: of several nodes with the same view, the first to commit wins
            // and the others' statements (waiting on its row lock) then match nothing.
            let won: Int
            if let previous {
                won = try await connection.run("""
                    UPDATE cron_state SET last_fired_at = \(scheduledAt) WHERE trigger_id = \(triggerID) AND last_fired_at = \(previous) RETURNING 1
                    """, logger)
            } else {
                won = try await connection.run("""
                    INSERT INTO cron_state (trigger_id, app, last_fired_at) VALUES (\(triggerID), \(app), \(scheduledAt)) ON CONFLICT (trigger_id) DO NOTHING RETURNING 1
                    """, logger)
            }
            guard won > 0 else { return false }
            try await Self.insertOutbox(connection, logger, app: app, enqueue: enqueue, event: event, now: now)
            return true
        }
    }

    // MARK: Triggers

    public func replaceManifestTriggers(app: String, triggers: [TriggerRecord]) async throws {
        let rows = try triggers.map(Self.triggerRow)
        try await write { connection in
            try await connection.run("DELETE FROM triggers WHERE app = \(app) AND source = 'manifest'", logger)
            for row in rows { try await Self.insertTrigger(connection, logger, row) }
            // Cron state of triggers no longer declared goes with them.
            try await connection.run("DELETE FROM cron_state WHERE app = \(app) AND trigger_id NOT IN (SELECT id FROM triggers WHERE app = \(app))", logger)
            try await announce(connection, app: app)
        }
    }

    public func insertTrigger(_ trigger: TriggerRecord) async throws {
        let row = try Self.triggerRow(trigger)
        try await write { connection in
            try await Self.insertTrigger(connection, logger, row)
            try await announce(connection, app: trigger.app)
        }
    }

    public func deleteTrigger(app: String, id: String) async throws -> TriggerRecord? {
        try await write { connection in
            let deleted = try await connection.first("DELETE FROM triggers WHERE app = \(app) AND id = \(id) RETURNING *", logger).map(Self.trigger)
            try await connection.run("DELETE FROM cron_state WHERE trigger_id = \(id)", logger)
            if deleted != nil { try await announce(connection, app: app) }
            return deleted
        }
    }

    public func triggers(app: String) async throws -> [TriggerRecord] {
        try await read { connection in
            try await connection.all("SELECT * FROM triggers WHERE app = \(app) ORDER BY created_at, id COLLATE \"C\"", logger).map(Self.trigger)
        }
    }

    public func allTriggers() async throws -> [TriggerRecord] {
        try await read { connection in
            try await connection.all("SELECT * FROM triggers ORDER BY app COLLATE \"C\", created_at, id COLLATE \"C\"", logger).map(Self.trigger)
        }
    }

    static func triggerRow(_ trigger: TriggerRecord) throws -> (TriggerRecord, String) {
        (trigger, String(decoding: try JSONEncoder.sorted.encode(trigger.match), as: UTF8.self))
    }

    static func insertTrigger(_ connection: PostgresConnection, _ logger: Logger, _ row: (TriggerRecord, String)) async throws {
        let (trigger, config) = row
        try await connection.run("""
            INSERT INTO triggers (id, app, source, kind, config, handler, max_attempts, backoff_base_ms, backoff_cap_ms, timeout_ms, created_at)
            VALUES (\(trigger.id), \(trigger.app), \(trigger.source.rawValue), \(trigger.kind.rawValue), \(config), \(trigger.handler),
                    \(trigger.retry.maxAttempts), \(trigger.retry.baseMilliseconds), \(trigger.retry.capMilliseconds),
                    \(trigger.timeoutMilliseconds), \(trigger.createdAt))
            ON CONFLICT (id) DO UPDATE SET source = excluded.source
            """, logger)
    }

    static func trigger(_ row: PostgresRandomAccessRow) throws -> TriggerRecord {
        let match = (try? JSONDecoder().decode(TriggerMatch.self, from: Data((try row.get("config", as: String.self)).utf8))) ?? TriggerMatch()
        return TriggerRecord(
            id: try row.get("id"), app: try row.get("app"), source: TriggerRecord.Source(rawValue: try row.get("source")) ?? .api,
            kind: TriggerKind(rawValue: try row.get("kind")) ?? .kv, match: match, handler: try row.get("handler"),
            retry: RetryPolicy(maxAttempts: try row.get("max_attempts"), baseMilliseconds: try row.get("backoff_base_ms"), capMilliseconds: try row.get("backoff_cap_ms")),
            timeoutMilliseconds: try row.get("timeout_ms"), createdAt: try row.get("created_at")
        )
    }
}
