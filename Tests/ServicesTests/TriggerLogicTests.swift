import Foundation
import Services
import Testing

@Suite("Retry policy (pure)")
struct RetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 5, baseMilliseconds: 100, capMilliseconds: 1000)

    @Test("backoff doubles from the base, stays under the cap, and jitter keeps it between half and all")
    func backoff() {
        #expect(policy.delay(afterAttempt: 1, jitter: 1) == 100)
        #expect(policy.delay(afterAttempt: 2, jitter: 1) == 200)
        #expect(policy.delay(afterAttempt: 3, jitter: 1) == 400)
        #expect(policy.delay(afterAttempt: 4, jitter: 1) == 800)
        #expect(policy.delay(afterAttempt: 5, jitter: 1) == 1000)
        #expect(policy.delay(afterAttempt: 60, jitter: 1) == 1000)
        #expect(policy.delay(afterAttempt: 3, jitter: 0) == 200)
        for jitter in stride(from: 0.0, to: 1.0, by: 0.1) {
            let delay = policy.delay(afterAttempt: 3, jitter: jitter)
            #expect((200...400).contains(delay))
        }
        let huge = RetryPolicy(maxAttempts: 100, baseMilliseconds: .max / 2, capMilliseconds: .max)
        #expect(huge.delay(afterAttempt: 90, jitter: 1) > 0)
    }

    @Test("retries until max_attempts, then a dead letter; a dead_letter delivery is dropped instead")
    func decisions() {
        #expect(policy.decide(afterFailedAttempt: 1, now: 10_000, isDeadLetterDelivery: false, jitter: 1) == .retry(at: 10_100))
        #expect(policy.decide(afterFailedAttempt: 4, now: 0, isDeadLetterDelivery: false, jitter: 1) == .retry(at: 800))
        #expect(policy.decide(afterFailedAttempt: 5, now: 0, isDeadLetterDelivery: false, jitter: 1) == .deadLetter)
        #expect(policy.decide(afterFailedAttempt: 9, now: 0, isDeadLetterDelivery: false, jitter: 1) == .deadLetter)
        #expect(policy.decide(afterFailedAttempt: 5, now: 0, isDeadLetterDelivery: true, jitter: 1) == .drop)
        #expect(policy.decide(afterFailedAttempt: 2, now: 0, isDeadLetterDelivery: true, jitter: 1) == .retry(at: 200))
        let once = RetryPolicy(maxAttempts: 1, baseMilliseconds: 10, capMilliseconds: 10)
        #expect(once.decide(afterFailedAttempt: 1, now: 0, isDeadLetterDelivery: false, jitter: 0.5) == .deadLetter)
    }
}

@Suite("Cron schedules (pure)")
struct CronScheduleTests {
    static func ms(_ text: String) -> Milliseconds {
        let formatter = ISO8601DateFormatter()
        return Milliseconds(formatter.date(from: text)!.timeIntervalSince1970 * 1000)
    }

    @Test("parses fields, ranges, lists, steps, names and shorthands; rejects nonsense")
    func parsing() throws {
        for good in ["* * * * *", "*/5 * * * *", "0 9-17 * * mon-fri", "15,45 */2 1 jan,jul *", "0 0 * * 7", "@hourly", "@daily", "@every 30s", "@every 1h30m", "@weekly"] {
            _ = try CronSchedule(good)
        }
        for bad in ["", "* * * *", "61 * * * *", "* * * * * *", "*/0 * * * *", "5-1 * * * *", "@sometimes", "@every 500ms", "@every", "x * * * *"] {
            #expect(throws: ServiceError.self, "\(bad)") { try CronSchedule(bad) }
        }
    }

    @Test("finds the latest due time and the next one, in UTC")
    func times() throws {
        let every5 = try CronSchedule("*/5 * * * *")
        #expect(every5.latestTime(after: Self.ms("2026-01-01T10:00:00Z"), upTo: Self.ms("2026-01-01T10:12:30Z")) == Self.ms("2026-01-01T10:10:00Z"))
        #expect(every5.latestTime(after: Self.ms("2026-01-01T10:10:00Z"), upTo: Self.ms("2026-01-01T10:14:59Z")) == nil)
        #expect(every5.nextTime(after: Self.ms("2026-01-01T10:10:00Z")) == Self.ms("2026-01-01T10:15:00Z"))
        let weekdays = try CronSchedule("30 9 * * mon-fri")
        // 2026-01-03 is a Saturday: the next run is Monday the 5th.
        #expect(weekdays.nextTime(after: Self.ms("2026-01-02T10:00:00Z")) == Self.ms("2026-01-05T09:30:00Z"))
        let daily = try CronSchedule("@daily")
        #expect(daily.latestTime(after: Self.ms("2026-01-01T00:00:00Z"), upTo: Self.ms("2026-01-03T05:00:00Z")) == Self.ms("2026-01-03T00:00:00Z"))
        let every = try CronSchedule("@every 30s")
        #expect(every.latestTime(after: 60_000, upTo: 119_999) == 90_000)
        #expect(every.latestTime(after: 90_000, upTo: 119_999) == nil)
        #expect(every.nextTime(after: 90_000) == 120_000)
        // Both day fields restricted: either matches (the 1st, or a Monday).
        let either = try CronSchedule("0 0 1 * mon")
        #expect(either.nextTime(after: Self.ms("2026-02-01T00:00:00Z")) == Self.ms("2026-02-02T00:00:00Z"))
    }
}

@Suite("Trigger matching (pure)")
struct TriggerMatchingTests {
    func trigger(_ kind: TriggerKind, _ match: TriggerMatch) -> TriggerRecord {
        TriggerRecord(id: "t", app: "a", source: .api, kind: kind, match: match, handler: "h.lua", retry: TriggerRecord.defaultRetry, timeoutMilliseconds: nil, createdAt: 0)
    }

    @Test("globs, prefixes, collections, ops, topics and dead-letter filters")
    func matching() {
        #expect(TriggerRecord.glob("user:*", matches: "user:42"))
        #expect(TriggerRecord.glob("user:*:name", matches: "user:42:name"))
        #expect(!TriggerRecord.glob("user:*:name", matches: "user:42:mail"))
        #expect(TriggerRecord.glob("a?c", matches: "abc") && !TriggerRecord.glob("a?c", matches: "ac"))
        #expect(TriggerRecord.glob("*", matches: ""))
        let kv = trigger(.kv, TriggerMatch(key: "user:*", ops: ["set"]))
        #expect(kv.matches(.kv(op: "set", key: "user:1")))
        #expect(!kv.matches(.kv(op: "delete", key: "user:1")))
        #expect(!kv.matches(.kv(op: "set", key: "admin:1")))
        #expect(!kv.matches(.docs(op: "set", collection: "user:1")))
        let prefix = trigger(.kv, TriggerMatch(prefix: "cache/"))
        #expect(prefix.matches(.kv(op: "delete", key: "cache/x")))
        let docs = trigger(.docs, TriggerMatch(collection: "orders", ops: ["insert", "update"]))
        #expect(docs.matches(.docs(op: "update", collection: "orders")) && !docs.matches(.docs(op: "delete", collection: "orders")))
        let files = trigger(.files, TriggerMatch(prefix: "uploads/"))
        #expect(files.matches(.files(op: "put", path: "uploads/a.png")) && !files.matches(.files(op: "put", path: "other/a.png")))
        #expect(trigger(.topic, TriggerMatch(topic: "news")).matches(.topic("news")))
        let dead = trigger(.deadLetter, TriggerMatch(onKind: "docs"))
        #expect(dead.matches(.deadLetter(triggerID: "t1", kind: .docs, handler: "x.lua")) && !dead.matches(.deadLetter(triggerID: "t1", kind: .kv, handler: "x.lua")))
        #expect(trigger(.deadLetter, TriggerMatch()).matches(.deadLetter(triggerID: "t1", kind: .cron, handler: "y.lua")))
        let one = trigger(.deadLetter, TriggerMatch(onTrigger: "t1", onHandler: "x.lua"))
        #expect(one.matches(.deadLetter(triggerID: "t1", kind: .kv, handler: "x.lua")))
        #expect(!one.matches(.deadLetter(triggerID: "t2", kind: .kv, handler: "x.lua")) && !one.matches(.deadLetter(triggerID: "t1", kind: .kv, handler: "y.lua")))
    }

    @Test("each kind checks its settings")
    func validation() throws {
        try TriggerRecord.validate(kind: .kv, match: TriggerMatch(prefix: ""))
        #expect(throws: ServiceError.self) { try TriggerRecord.validate(kind: .kv, match: TriggerMatch()) }
        #expect(throws: ServiceError.self) { try TriggerRecord.validate(kind: .kv, match: TriggerMatch(key: "a*", prefix: "a")) }
        #expect(throws: ServiceError.self) { try TriggerRecord.validate(kind: .kv, match: TriggerMatch(prefix: "a", ops: ["insert"])) }
        #expect(throws: ServiceError.self) { try TriggerRecord.validate(kind: .docs, match: TriggerMatch()) }
        #expect(throws: ServiceError.self) { try TriggerRecord.validate(kind: .files, match: TriggerMatch()) }
        #expect(throws: ServiceError.self) { try TriggerRecord.validate(kind: .topic, match: TriggerMatch(topic: "a*")) }
        #expect(throws: ServiceError.self) { try TriggerRecord.validate(kind: .cron, match: TriggerMatch(schedule: "often")) }
        #expect(throws: ServiceError.self) { try TriggerRecord.validate(kind: .deadLetter, match: TriggerMatch(onKind: "email")) }
        let one = TriggerRecord.manifestID(app: "a", kind: .kv, match: TriggerMatch(prefix: "x"), handler: "h.lua")
        #expect(one == TriggerRecord.manifestID(app: "a", kind: .kv, match: TriggerMatch(prefix: "x"), handler: "h.lua"))
        #expect(one != TriggerRecord.manifestID(app: "a", kind: .kv, match: TriggerMatch(prefix: "y"), handler: "h.lua"))
    }
}
