import Foundation
import GRDB

extension SQLiteStorage {
    // MARK: Writing events (inside the caller's transaction)

    /// Inserts an event's rows, one per target; returns the event id of the first (nil when there
    /// was none). A row the dispatcher has room for is leased to it right away, its first attempt
    /// counted (see ``OutboxLeaseTaker``); the others wait for a claim.
    @discardableResult
    func insertOutbox(_ db: Database, app: String, enqueue: OutboxEnqueue, event: [UInt8], now: Milliseconds) throws -> String? {
        guard !enqueue.targets.isEmpty else { return nil }
        let insert = try hot.statement(.outboxInsert, on: db)
        let text = String(decoding: event, as: UTF8.self)
        let leases = writes.leases
        var first: String?
        for target in enqueue.targets {
            let eventID = "evt_" + Identifiers.eventID(at: now)
            first = first ?? eventID
            let lease = leases.reserve()
            let leasedUntil = lease.map { now + $0.milliseconds }
            try insert.bind(1, eventID)
            try insert.bind(2, app)
            try insert.bind(3, target.triggerID)
            try insert.bind(4, target.kind.rawValue)
            try insert.bind(5, target.handler)
            try insert.bind(7, enqueue.depth)
            try insert.bind(8, target.retry.maxAttempts)
            try insert.bind(9, target.retry.baseMilliseconds)
            try insert.bind(10, target.retry.capMilliseconds)
            try insert.bind(11, target.timeoutMilliseconds)
            try insert.bind(12, target.kind == .deadLetter)
            try insert.bind(13, lease == nil ? 0 : 1)
            try insert.bind(14, leasedUntil)
            try insert.bind(15, lease?.owner)
            try insert.bind(16, now)
            try insert.bind(17, now)
            // The event (up to a value's size) is read in place; the short fields are copied.
            try insert.withText(6, text) { try insert.run() }
            if lease != nil {
                leases.add(OutboxDelivery(
                    id: db.lastInsertedRowID, eventID: eventID, app: app, triggerID: target.triggerID, kind: target.kind, handler: target.handler,
                    event: event, depth: enqueue.depth, attempts: 1, retry: target.retry, timeoutMilliseconds: target.timeoutMilliseconds,
                    toDeadLetter: target.kind == .deadLetter, dueAt: now, leasedUntil: leasedUntil, lastError: nil, createdAt: now
                ))
            }
        }
        return first
    }

    public func enqueue(app: String, enqueue: OutboxEnqueue, event: [UInt8], now: Milliseconds) async throws -> String {
        guard !enqueue.targets.isEmpty else { return "evt_" + Identifiers.eventID(at: now) }
        return try await write { db in
            try self.insertOutbox(db, app: app, enqueue: enqueue, event: event, now: now) ?? ""
        }
    }

    // MARK: Delivering

    public func claimDeliveries(owner: String, now: Milliseconds, leaseMilliseconds: Int64, limit: Int) async throws -> [OutboxDelivery] {
        try await completeAndClaim(completed: [], owner: owner, now: now, leaseMilliseconds: leaseMilliseconds, limit: limit)
    }

    public func completeDeliveries(ids: [Int64], owner: String) async throws {
        guard !ids.isEmpty else { return }
        try await write { db in try self.delete(db, ids: ids, owner: owner) }
    }

    public func completeAndClaim(completed: [Int64], owner: String, now: Milliseconds, leaseMilliseconds: Int64, limit: Int) async throws -> [OutboxDelivery] {
        guard !completed.isEmpty || limit > 0 else { return [] }
        return try await write { db in
            try self.delete(db, ids: completed, owner: owner)
            guard limit > 0 else { return [] }
            let rows = try Row.fetchCursor(db.cachedStatement(sql: Self.claimSQL), arguments: [now + leaseMilliseconds, owner, now, now, limit])
            var claimed: [OutboxDelivery] = []
            while let row = try rows.next() { claimed.append(Self.delivery(row)) }
            return claimed.sorted { $0.id < $1.id }
        }
    }

    func delete(_ db: Database, ids: [Int64], owner: String) throws {
        guard !ids.isEmpty else { return }
        let delete = try hot.statement(.outboxDelete, on: db)
        for id in ids {
            try delete.bind(1, id)
            try delete.withText(2, owner) { try delete.run() }
        }
    }

    public func retryDelivery(id: Int64, owner: String, dueAt: Milliseconds, error: String) async throws {
        try await write { db in
            try db.execute(
                sql: "UPDATE outbox SET due_at = ?, leased_until = NULL, lease_owner = NULL, last_error = ? WHERE id = ? AND lease_owner = ?",
                arguments: [dueAt, error, id, owner]
            )
        }
    }

    public func deadLetter(_ delivery: OutboxDelivery, owner: String, error: String, now: Milliseconds, deadLetterTargets: OutboxEnqueue) async throws -> DeadLetterRecord? {
        try await write { db in
            try db.execute(sql: "DELETE FROM outbox WHERE id = ? AND lease_owner = ?", arguments: [delivery.id, owner])
            guard db.changesCount > 0 else { return nil } // the lease ran out and another delivery owns it now
            let record = DeadLetterRecord(
                id: "dl_" + Identifiers.ulid(at: now), app: delivery.app, eventID: delivery.eventID, triggerID: delivery.triggerID,
                kind: delivery.kind, handler: delivery.handler, event: delivery.event, depth: delivery.depth, attempts: delivery.attempts,
                lastError: error, firstEnqueuedAt: delivery.createdAt, failedAt: now
            )
            try db.execute(
                sql: """
                    INSERT INTO dead_letters (id, app, event_id, trigger_id, kind, handler, event, depth, attempts, last_error, first_enqueued_at, failed_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [record.id, record.app, record.eventID, record.triggerID, record.kind.rawValue, record.handler,
                            String(decoding: record.event, as: UTF8.self), record.depth, record.attempts, error, record.firstEnqueuedAt, now]
            )
            // The dead_letter triggers fire in the same transaction: the failure cannot be recorded without them.
            try self.insertOutbox(db, app: delivery.app, enqueue: deadLetterTargets, event: Self.deadLetterEvent(record), now: now)
            return record
        }
    }

    /// The event a dead_letter handler receives: the dead letter and the original event.
    static func deadLetterEvent(_ record: DeadLetterRecord) -> [UInt8] {
        EventJSON.object([
            ("kind", EventJSON.string("dead_letter")),
            ("dead_letter", EventJSON.object([
                ("id", EventJSON.string(record.id)), ("event_id", EventJSON.string(record.eventID)),
                ("trigger_id", EventJSON.string(record.triggerID)), ("trigger_kind", EventJSON.string(record.kind.rawValue)),
                ("handler", EventJSON.string(record.handler)), ("attempts", EventJSON.integer(Int64(record.attempts))),
                ("error", EventJSON.string(record.lastError)), ("failed_at", EventJSON.integer(record.failedAt)),
            ])),
            ("event", record.event),
        ])
    }

    public func releaseDelivery(id: Int64, owner: String) async throws {
        try await write { db in
            try db.execute(
                sql: "UPDATE outbox SET leased_until = NULL, lease_owner = NULL, attempts = max(0, attempts - 1) WHERE id = ? AND lease_owner = ?",
                arguments: [id, owner]
            )
        }
    }

    public func dropDelivery(id: Int64, owner: String) async throws {
        try await write { db in try db.execute(sql: "DELETE FROM outbox WHERE id = ? AND lease_owner = ?", arguments: [id, owner]) }
    }

    public func outbox(app: String, after: Int64?, limit: Int) async throws -> [OutboxDelivery] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT \(Self.deliveryColumns) FROM outbox WHERE app = ? AND id > ? ORDER BY id LIMIT ?", arguments: [app, after ?? 0, limit])
                .map(Self.delivery)
        }
    }

    public func outboxDepth() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox") ?? 0 }
    }

    public func nextDueTime(now: Milliseconds) async throws -> Milliseconds? {
        try await read { db in
            try Milliseconds.fetchOne(db, sql: "SELECT MIN(CASE WHEN leased_until IS NULL OR leased_until < ? THEN due_at ELSE leased_until END) FROM outbox", arguments: [now])
        }
    }

    /// The columns `delivery` reads, in its order: by position, a claimed row is decoded without
    /// looking each column up by name (GRDB compares names case-insensitively, which was a few
    /// per cent of a delivery's CPU).
    static let deliveryColumns = """
        id, event_id, app, trigger_id, kind, handler, event, depth, attempts, max_attempts, backoff_base_ms, backoff_cap_ms, \
        timeout_ms, to_dead_letter, due_at, leased_until, last_error, created_at
        """

    static let claimSQL = """
        UPDATE outbox SET leased_until = ?, lease_owner = ?, attempts = attempts + 1
        WHERE id IN (SELECT id FROM outbox WHERE due_at <= ? AND (leased_until IS NULL OR leased_until < ?) ORDER BY due_at, id LIMIT ?)
        RETURNING \(deliveryColumns)
        """

    static func delivery(_ row: Row) -> OutboxDelivery {
        OutboxDelivery(
            id: row[0], eventID: row[1], app: row[2], triggerID: row[3],
            kind: TriggerKind(rawValue: row[4]) ?? .kv, handler: row[5], event: Array((row[6] as String).utf8),
            depth: row[7], attempts: row[8],
            retry: RetryPolicy(maxAttempts: row[9], baseMilliseconds: row[10], capMilliseconds: row[11]),
            timeoutMilliseconds: row[12], toDeadLetter: row[13], dueAt: row[14],
            leasedUntil: row[15], lastError: row[16], createdAt: row[17]
        )
    }

    // MARK: Dead letters

    public func deadLetters(app: String, triggerID: String?, handler: String?, before: String?, limit: Int) async throws -> [DeadLetterRecord] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM dead_letters WHERE app = ? AND (? IS NULL OR trigger_id = ?) AND (? IS NULL OR handler = ?) AND (? IS NULL OR id < ?)
                    ORDER BY id DESC LIMIT ?
                    """,
                arguments: [app, triggerID, triggerID, handler, handler, before, before, limit]
            ).map(Self.deadLetter)
        }
    }

    public func deadLetter(app: String, id: String) async throws -> DeadLetterRecord? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM dead_letters WHERE app = ? AND id = ?", arguments: [app, id]).map(Self.deadLetter) }
    }

    public func replayDeadLetter(app: String, id: String, target: OutboxTarget, now: Milliseconds) async throws -> Bool {
        try await write { db in
            guard let row = try Row.fetchOne(db, sql: "DELETE FROM dead_letters WHERE app = ? AND id = ? RETURNING *", arguments: [app, id]) else { return false }
            let record = Self.deadLetter(row)
            try db.execute(
                sql: """
                    INSERT INTO outbox (event_id, app, trigger_id, kind, handler, event, depth, max_attempts, backoff_base_ms, backoff_cap_ms,
                                        timeout_ms, to_dead_letter, due_at, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
                    """,
                arguments: [record.eventID, app, target.triggerID, record.kind.rawValue, target.handler, String(decoding: record.event, as: UTF8.self),
                            record.depth, target.retry.maxAttempts, target.retry.baseMilliseconds, target.retry.capMilliseconds,
                            target.timeoutMilliseconds, now, now]
            )
            return true
        }
    }

    public func purgeDeadLetters(app: String, id: String?, triggerID: String?, handler: String?) async throws -> Int {
        try await write { db in
            try db.execute(
                sql: "DELETE FROM dead_letters WHERE app = ? AND (? IS NULL OR id = ?) AND (? IS NULL OR trigger_id = ?) AND (? IS NULL OR handler = ?)",
                arguments: [app, id, id, triggerID, triggerID, handler, handler]
            )
            return db.changesCount
        }
    }

    static func deadLetter(_ row: Row) -> DeadLetterRecord {
        DeadLetterRecord(
            id: row["id"], app: row["app"], eventID: row["event_id"], triggerID: row["trigger_id"], kind: TriggerKind(rawValue: row["kind"]) ?? .kv,
            handler: row["handler"], event: Array((row["event"] as String).utf8), depth: row["depth"], attempts: row["attempts"],
            lastError: row["last_error"], firstEnqueuedAt: row["first_enqueued_at"], failedAt: row["failed_at"]
        )
    }

    // MARK: Cron

    public func cronLastFired(triggerID: String) async throws -> Milliseconds? {
        try await read { db in try Milliseconds.fetchOne(db, sql: "SELECT last_fired_at FROM cron_state WHERE trigger_id = ?", arguments: [triggerID]) }
    }

    public func fireCron(app: String, triggerID: String, previous: Milliseconds?, scheduledAt: Milliseconds, enqueue: OutboxEnqueue, event: [UInt8], now: Milliseconds) async throws -> Bool {
        try await write { db in
            let current = try Milliseconds.fetchOne(db, sql: "SELECT last_fired_at FROM cron_state WHERE trigger_id = ?", arguments: [triggerID])
            guard current == previous else { return false }
            try db.execute(
                sql: """
                    INSERT INTO cron_state (trigger_id, app, last_fired_at) VALUES (?, ?, ?)
                    ON CONFLICT (trigger_id) DO UPDATE SET last_fired_at = excluded.last_fired_at
                    """,
                arguments: [triggerID, app, scheduledAt]
            )
            try self.insertOutbox(db, app: app, enqueue: enqueue, event: event, now: now)
            return true
        }
    }

    // MARK: Triggers

    public func replaceManifestTriggers(app: String, triggers: [TriggerRecord]) async throws {
        let rows = try triggers.map(Self.triggerArguments)
        try await write { db in
            try db.execute(sql: "DELETE FROM triggers WHERE app = ? AND source = 'manifest'", arguments: [app])
            for arguments in rows { try Self.insertTrigger(db, arguments) }
            // Cron state of triggers no longer declared goes with them.
            try db.execute(sql: "DELETE FROM cron_state WHERE app = ? AND trigger_id NOT IN (SELECT id FROM triggers WHERE app = ?)", arguments: [app, app])
        }
    }

    public func insertTrigger(_ trigger: TriggerRecord) async throws {
        let arguments = try Self.triggerArguments(trigger)
        try await write { db in try Self.insertTrigger(db, arguments) }
    }

    public func deleteTrigger(app: String, id: String) async throws -> TriggerRecord? {
        try await write { db in
            let deleted = try Row.fetchOne(db, sql: "DELETE FROM triggers WHERE app = ? AND id = ? RETURNING *", arguments: [app, id]).map(Self.trigger)
            try db.execute(sql: "DELETE FROM cron_state WHERE trigger_id = ?", arguments: [id])
            return deleted
        }
    }

    public func triggers(app: String) async throws -> [TriggerRecord] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM triggers WHERE app = ? ORDER BY created_at, id", arguments: [app]).map(Self.trigger) }
    }

    public func allTriggers() async throws -> [TriggerRecord] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM triggers ORDER BY app, created_at, id").map(Self.trigger) }
    }

    static func triggerArguments(_ trigger: TriggerRecord) throws -> StatementArguments {
        let config = String(decoding: try JSONEncoder.sorted.encode(trigger.match), as: UTF8.self)
        return [trigger.id, trigger.app, trigger.source.rawValue, trigger.kind.rawValue, config, trigger.handler, trigger.retry.maxAttempts,
                trigger.retry.baseMilliseconds, trigger.retry.capMilliseconds, trigger.timeoutMilliseconds, trigger.createdAt]
    }

    static func insertTrigger(_ db: Database, _ arguments: StatementArguments) throws {
        try db.execute(
            sql: """
                INSERT INTO triggers (id, app, source, kind, config, handler, max_attempts, backoff_base_ms, backoff_cap_ms, timeout_ms, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET source = excluded.source
                """,
            arguments: arguments
        )
    }

    static func trigger(_ row: Row) -> TriggerRecord {
        let match = (try? JSONDecoder().decode(TriggerMatch.self, from: Data((row["config"] as String).utf8))) ?? TriggerMatch()
        return TriggerRecord(
            id: row["id"], app: row["app"], source: TriggerRecord.Source(rawValue: row["source"]) ?? .api,
            kind: TriggerKind(rawValue: row["kind"]) ?? .kv, match: match, handler: row["handler"],
            retry: RetryPolicy(maxAttempts: row["max_attempts"], baseMilliseconds: row["backoff_base_ms"], capMilliseconds: row["backoff_cap_ms"]),
            timeoutMilliseconds: row["timeout_ms"], createdAt: row["created_at"]
        )
    }
}
