import Hummingbird
import LuaBridge
import Services

extension AdminController {
    func registerTriggers(on admin: RouterGroup<PiCloudRequestContext>) {
        admin.get("apps/:app/triggers") { _, context in
            let (name, _) = try await app(context, .read)
            return Response.json(["items": .array(try await services.storage.triggers(app: name).map(triggerJSON))])
        }
        admin.post("apps/:app/triggers") { request, context in
            let (name, _) = try await app(context, .deploy)
            let body = try await request.jsonBody(limit: 64 << 10)
            let trigger = try triggerRecord(from: body, app: name)
            guard let deployment = core.registry.deployment(for: name), deployment.pool.program.modules.values.contains(where: { $0.path == trigger.handler }) else {
                throw ServiceError(.invalidInput, "handler '\(trigger.handler)' is not a file of the current deployment")
            }
            try await services.storage.insertTrigger(trigger)
            try await core.triggers.reload(app: name, from: services.storage)
            return Response.json(triggerJSON(trigger), status: .created)
        }
        admin.delete("apps/:app/triggers/:id") { _, context in
            let (name, _) = try await app(context, .deploy)
            let id = try context.parameters.require("id")
            guard let existing = try await services.storage.triggers(app: name).first(where: { $0.id == id }) else {
                throw ServiceError(.notFound, "no trigger '\(id)'")
            }
            guard existing.source == .api else {
                throw ServiceError(.conflict, "trigger '\(id)' is declared in the manifest; remove it there and deploy")
            }
            _ = try await services.storage.deleteTrigger(app: name, id: id)
            try await core.triggers.reload(app: name, from: services.storage)
            return Response.noContent()
        }

        admin.get("apps/:app/dead-letters") { request, context in
            let (name, _) = try await app(context, .read)
            let limit = try request.queryInteger("limit", default: 100, range: 1...1000)
            let before = request.query("before")
            if let before, !before.hasPrefix("dl_") { throw ServiceError(.invalidInput, "before must be a dead letter id (the next cursor of the previous page)") }
            let letters = try await services.storage.deadLetters(app: name, triggerID: request.query("trigger"), handler: request.query("handler"), before: before, limit: limit + 1)
            let page = letters.prefix(limit)
            let next: LuaValue = letters.count > limit ? page.last.map { .string($0.id) } ?? .nil : .nil
            return Response.json(["items": .array(page.map(deadLetterJSON)), "next": next])
        }
        admin.get("apps/:app/dead-letters/:id") { _, context in
            let (name, _) = try await app(context, .read)
            let id = try context.parameters.require("id")
            guard let letter = try await services.storage.deadLetter(app: name, id: id) else { throw ServiceError(.notFound, "no dead letter '\(id)'") }
            return Response.json(deadLetterJSON(letter))
        }
        admin.post("apps/:app/dead-letters/:id/replay") { _, context in
            let (name, _) = try await app(context, .deploy)
            let id = try context.parameters.require("id")
            guard let letter = try await services.storage.deadLetter(app: name, id: id) else { throw ServiceError(.notFound, "no dead letter '\(id)'") }
            // Back to the trigger as it is now (its handler may have been fixed by a deployment).
            let trigger = try await services.storage.triggers(app: name).first { $0.id == letter.triggerID }
            let target = trigger?.target ?? OutboxTarget(triggerID: letter.triggerID, kind: letter.kind, handler: letter.handler, retry: TriggerRecord.defaultRetry, timeoutMilliseconds: nil)
            guard try await services.storage.replayDeadLetter(app: name, id: id, target: target, now: Clock.now()) else {
                throw ServiceError(.notFound, "no dead letter '\(id)'")
            }
            core.triggers.doorbell.ring()
            return Response.json(["replayed": .string(id), "event_id": .string(letter.eventID), "handler": .string(target.handler)], status: .accepted)
        }
        admin.delete("apps/:app/dead-letters/:id") { _, context in
            let (name, _) = try await app(context, .deploy)
            let id = try context.parameters.require("id")
            guard try await services.storage.purgeDeadLetters(app: name, id: id, triggerID: nil, handler: nil) > 0 else {
                throw ServiceError(.notFound, "no dead letter '\(id)'")
            }
            return Response.noContent()
        }
        admin.delete("apps/:app/dead-letters") { request, context in
            let (name, _) = try await app(context, .deploy)
            let purged = try await services.storage.purgeDeadLetters(app: name, id: nil, triggerID: request.query("trigger"), handler: request.query("handler"))
            return Response.json(["purged": .integer(Int64(purged))])
        }

        admin.get("apps/:app/outbox") { request, context in
            let (name, _) = try await app(context, .read)
            let limit = try request.queryInteger("limit", default: 100, range: 1...1000)
            let after = try request.query("after").map { text -> Int64 in
                guard let value = Int64(text) else { throw ServiceError(.invalidInput, "after must be an outbox row id") }
                return value
            }
            let rows = try await services.storage.outbox(app: name, after: after, limit: limit)
            let now = Clock.now()
            return Response.json(["items": .array(rows.map { outboxJSON($0, now: now) })])
        }
    }

    func triggerRecord(from body: LuaValue, app: String) throws -> TriggerRecord {
        guard let kind = TriggerKind(rawValue: try body.requiredString("kind")) else {
            throw ServiceError(.invalidInput, "kind must be one of \(TriggerKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let handler = try body.requiredString("handler")
        var ops: [String]?
        if case .array(let list)? = body["ops"] { ops = list.compactMap(\.stringValue) }
        let match = TriggerMatch(
            key: body["key"]?.stringValue, prefix: body["prefix"]?.stringValue, collection: body["collection"]?.stringValue, ops: ops,
            topic: body["topic"]?.stringValue, schedule: body["schedule"]?.stringValue, onTrigger: body["on_trigger"]?.stringValue,
            onHandler: body["on_handler"]?.stringValue, onKind: body["on_kind"]?.stringValue
        )
        try TriggerRecord.validate(kind: kind, match: match)
        let defaults = TriggerRecord.defaultRetry
        func bounded(_ name: String, _ range: ClosedRange<Int64>, _ fallback: Int64) throws -> Int64 {
            guard let value = body[name] else { return fallback }
            guard let number = value.integerValue, range.contains(number) else {
                throw ServiceError(.invalidInput, "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return number
        }
        let retry = RetryPolicy(
            maxAttempts: Int(try bounded("max_attempts", 1...100, Int64(defaults.maxAttempts))),
            baseMilliseconds: try bounded("backoff_base_ms", 1...3_600_000, defaults.baseMilliseconds),
            capMilliseconds: try bounded("backoff_cap_ms", 1...86_400_000, defaults.capMilliseconds)
        )
        let timeout = body["timeout_ms"] == nil ? nil : try bounded("timeout_ms", 10...300_000, 0)
        return TriggerRecord(
            id: "trg_" + Identifiers.randomHex(8), app: app, source: .api, kind: kind, match: match, handler: handler,
            retry: retry, timeoutMilliseconds: timeout, createdAt: Clock.now()
        )
    }

    func triggerJSON(_ trigger: TriggerRecord) -> LuaValue {
        var fields: [String: LuaValue] = [
            "id": .string(trigger.id), "kind": .string(trigger.kind.rawValue), "source": .string(trigger.source.rawValue),
            "handler": .string(trigger.handler), "max_attempts": .integer(Int64(trigger.retry.maxAttempts)),
            "backoff_base_ms": .integer(trigger.retry.baseMilliseconds), "backoff_cap_ms": .integer(trigger.retry.capMilliseconds),
            "timeout_ms": trigger.timeoutMilliseconds.map { .integer($0) } ?? .null, "created_at": trigger.createdAt.iso8601,
        ]
        let match = trigger.match
        for (key, value) in [("key", match.key), ("prefix", match.prefix), ("collection", match.collection), ("topic", match.topic),
                             ("schedule", match.schedule), ("on_trigger", match.onTrigger), ("on_handler", match.onHandler), ("on_kind", match.onKind)] {
            if let value { fields[key] = .string(value) }
        }
        if let ops = match.ops { fields["ops"] = .array(ops.map(LuaValue.string)) }
        if trigger.kind == .cron, let schedule = match.schedule.flatMap({ try? CronSchedule($0) }), let next = schedule.nextTime(after: Clock.now()) {
            fields["next_run_at"] = next.iso8601
        }
        return .object(fields)
    }

    func deadLetterJSON(_ letter: DeadLetterRecord) -> LuaValue {
        [
            "id": .string(letter.id), "event_id": .string(letter.eventID), "trigger_id": .string(letter.triggerID), "kind": .string(letter.kind.rawValue),
            "handler": .string(letter.handler), "event": (try? LuaJSON.decode(letter.event)) ?? .null, "depth": .integer(Int64(letter.depth)),
            "attempts": .integer(Int64(letter.attempts)), "error": .string(letter.lastError),
            "first_enqueued_at": letter.firstEnqueuedAt.iso8601, "failed_at": letter.failedAt.iso8601,
        ]
    }

    func outboxJSON(_ row: OutboxDelivery, now: Milliseconds) -> LuaValue {
        let leased = row.leasedUntil.map { $0 > now } ?? false
        return [
            "id": .integer(row.id), "event_id": .string(row.eventID), "trigger_id": .string(row.triggerID), "kind": .string(row.kind.rawValue),
            "handler": .string(row.handler), "event": (try? LuaJSON.decode(row.event)) ?? .null, "depth": .integer(Int64(row.depth)),
            "attempts": .integer(Int64(row.attempts)), "max_attempts": .integer(Int64(row.retry.maxAttempts)),
            "status": .string(leased ? "running" : (row.dueAt > now ? "waiting_retry" : "due")),
            "due_at": row.dueAt.iso8601, "last_error": row.lastError.map(LuaValue.string) ?? .null, "created_at": row.createdAt.iso8601,
        ]
    }
}
