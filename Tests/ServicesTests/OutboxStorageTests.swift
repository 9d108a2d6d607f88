import Foundation
import Services
import Synchronization
import Testing

/// Triggers that match everything in one app, recording wake-ups.
final class EverythingTriggers: TriggerMatching {
    let wakes = Atomic<Int>(0)
    let target = OutboxTarget(triggerID: "trg_all", kind: .kv, handler: "h.lua", retry: RetryPolicy(maxAttempts: 2, baseMilliseconds: 10, capMilliseconds: 10), timeoutMilliseconds: nil)

    func targets(app: String, event: TriggerEvent, depth: Int) -> [OutboxTarget] {
        guard depth <= 3 else { return [] }
        var target = target
        target.kind = {
            switch event {
            case .kv: return .kv
            case .docs: return .docs
            case .files: return .files
            case .topic: return .topic
            case .deadLetter: return .deadLetter
            }
        }()
        return [target]
    }

    func didEnqueue() { wakes.add(1, ordering: .relaxed) }
}

@Suite("Outbox storage")
struct OutboxStorageTests {
    func json(_ bytes: [UInt8]) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] ?? [:]
    }

    @Test("a change and its outbox rows commit together, with the event's data", arguments: Backend.all)
    func enqueueWithChanges(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let triggers = EverythingTriggers()
        let kv = KVService(storage: store.storage, triggers: triggers)
        let docs = DocService(storage: store.storage, triggers: triggers)
        let files = FileService(storage: store.storage, store: store.blobs, triggers: triggers)
        try await kv.set(app: "demo", key: "k", value: store.json(#"{"a":1}"#))
        #expect(try await kv.delete(app: "demo", key: "k"))
        #expect(try await kv.delete(app: "demo", key: "k") == false)
        _ = try await docs.insert(app: "demo", collection: "c", id: "d1", body: store.json(#"{"id":"d1","n":1}"#), depth: 2)
        _ = try await docs.update(app: "demo", collection: "c", id: "d1") { _ in store.json(#"{"id":"d1","n":2}"#) }
        _ = try await files.put(app: "demo", path: "f.txt", content: [1, 2], contentType: nil)
        let rows = try await store.storage.outbox(app: "demo", after: nil, limit: 100)
        #expect(rows.count == 5)
        #expect(triggers.wakes.load(ordering: .relaxed) == 5)
        let events = try rows.map { try json($0.event) }
        #expect(events[0]["op"] as? String == "set" && (events[0]["value"] as? [String: Int]) == ["a": 1])
        #expect(events[1]["op"] as? String == "delete" && events[1]["key"] as? String == "k")
        #expect(events[2]["op"] as? String == "insert" && rows[2].depth == 3)
        #expect(events[3]["op"] as? String == "update" && (events[3]["old"] as? [String: Any])?["n"] as? Int == 1 && (events[3]["doc"] as? [String: Any])?["n"] as? Int == 2)
        #expect(events[4]["kind"] as? String == "files" && events[4]["size"] as? Int == 2)
        #expect(Set(rows.map(\.eventID)).count == 5)
        // Past the depth limit nothing is enqueued.
        _ = try await docs.insert(app: "demo", collection: "c", id: "deep", body: store.json(#"{"id":"deep"}"#), depth: 3)
        #expect(try await store.storage.outboxDepth() == 5)
    }

    @Test("when the write fails or rolls back, no outbox row exists", arguments: Backend.all)
    func rollback(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let docs = DocService(storage: store.storage, triggers: EverythingTriggers())
        _ = try await docs.insert(app: "demo", collection: "c", id: "d1", body: store.json(#"{"id":"d1"}"#))
        let before = try await store.storage.outboxDepth()
        await #expect(throws: ServiceError.self) { try await docs.insert(app: "demo", collection: "c", id: "d1", body: store.json(#"{"id":"d1"}"#)) }
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await docs.update(app: "demo", collection: "c", id: "d1") { _ in throw Refused() } }
        await #expect(throws: ServiceError.self) {
            try await docs.update(app: "demo", collection: "c", id: "d1") { _ in Array(repeating: UInt8(ascii: "x"), count: DocService.maxBodyBytes + 1) }
        }
        let kv = KVService(storage: store.storage, triggers: EverythingTriggers())
        try await kv.set(app: "demo", key: "name", value: store.json(#""text""#))
        let afterSet = try await store.storage.outboxDepth()
        await #expect(throws: ServiceError.self) { try await kv.increment(app: "demo", key: "name") }
        #expect(try await store.storage.outboxDepth() == afterSet)
        #expect(afterSet == before + 1)
        #expect(try await store.storage.docGet(app: "demo", collection: "c", id: "d1")?.body == store.json(#"{"id":"d1"}"#))
    }

    @Test("claims lease rows, count attempts, free them when the lease runs out; completes, retries, dead-letters, replays", arguments: Backend.all)
    func lifecycle(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let storage = store.storage
        let target = OutboxTarget(triggerID: "trg_1", kind: .kv, handler: "h.lua", retry: RetryPolicy(maxAttempts: 2, baseMilliseconds: 10, capMilliseconds: 10), timeoutMilliseconds: nil)
        let deadTarget = OutboxTarget(triggerID: "trg_dead", kind: .deadLetter, handler: "dead.lua", retry: TriggerRecord.defaultRetry, timeoutMilliseconds: nil)
        for index in 0..<3 {
            _ = try await storage.enqueue(app: "demo", enqueue: OutboxEnqueue(targets: [target], depth: 1), event: Array(#"{"n":\#(index)}"#.utf8), now: 1000)
        }
        let first = try await storage.claimDeliveries(owner: "a", now: 1000, leaseMilliseconds: 500, limit: 2)
        #expect(first.count == 2 && first.allSatisfy { $0.attempts == 1 })
        #expect(try await storage.claimDeliveries(owner: "b", now: 1100, leaseMilliseconds: 500, limit: 10).count == 1)
        #expect(try await storage.claimDeliveries(owner: "b", now: 1200, leaseMilliseconds: 500, limit: 10).isEmpty)
        // Owner a "crashed": its leases run out and the rows go to b, with the attempt counted.
        let reclaimed = try await storage.claimDeliveries(owner: "b", now: 1600, leaseMilliseconds: 500, limit: 10)
        #expect(reclaimed.map(\.id) == first.map(\.id) && reclaimed.allSatisfy { $0.attempts == 2 })
        try await storage.completeDeliveries(ids: [first[0].id], owner: "a") // a lost the lease: nothing happens
        #expect(try await storage.outboxDepth() == 3)
        try await storage.completeDeliveries(ids: [first[0].id], owner: "b")
        #expect(try await storage.outboxDepth() == 2)

        // A row given back unstarted is claimable at once, its claim's attempt taken back; only by its owner.
        try await storage.releaseDelivery(id: first[1].id, owner: "a")
        #expect(try await storage.claimDeliveries(owner: "c", now: 1650, leaseMilliseconds: 500, limit: 10).filter { $0.id == first[1].id }.isEmpty)
        try await storage.releaseDelivery(id: first[1].id, owner: "b")
        let released = try await storage.claimDeliveries(owner: "b", now: 1650, leaseMilliseconds: 500, limit: 10).filter { $0.id == first[1].id }
        #expect(released.count == 1 && released.first?.attempts == 2)

        try await storage.retryDelivery(id: first[1].id, owner: "b", dueAt: 5000, error: "boom")
        #expect(try await storage.nextDueTime(now: 1700) != nil)
        #expect(try await storage.claimDeliveries(owner: "c", now: 4000, leaseMilliseconds: 500, limit: 10).filter { $0.id == first[1].id }.isEmpty)
        let again = try await storage.claimDeliveries(owner: "c", now: 5000, leaseMilliseconds: 500, limit: 10).first { $0.id == first[1].id }
        #expect(again?.lastError == "boom" && again?.attempts == 3)

        let exhausted = try #require(again)
        let letter = try #require(try await storage.deadLetter(exhausted, owner: "c", error: "handlers/h.lua:3: boom", now: 6000,
                                                               deadLetterTargets: OutboxEnqueue(targets: [deadTarget], depth: 1)))
        #expect(letter.attempts == 3 && letter.lastError == "handlers/h.lua:3: boom" && letter.event == Array(#"{"n":1}"#.utf8))
        let deadDelivery = try await storage.outbox(app: "demo", after: nil, limit: 10).first { $0.triggerID == "trg_dead" }
        #expect(deadDelivery?.toDeadLetter == true)
        let deadRow = try #require(deadDelivery)
        let deadEvent = try json(deadRow.event)
        #expect((deadEvent["event"] as? [String: Int]) == ["n": 1] && (deadEvent["dead_letter"] as? [String: Any])?["handler"] as? String == "h.lua")
        #expect(try await storage.deadLetters(app: "demo", triggerID: nil, handler: nil, before: nil, limit: 10).map(\.id) == [letter.id])
        #expect(try await storage.deadLetters(app: "demo", triggerID: "other", handler: nil, before: nil, limit: 10).isEmpty)

        #expect(try await storage.replayDeadLetter(app: "demo", id: letter.id, target: target, now: 7000))
        let replayed = try await storage.outbox(app: "demo", after: nil, limit: 10).first { $0.eventID == letter.eventID }
        #expect(replayed?.attempts == 0 && replayed?.lastError == nil)
        #expect(try await storage.deadLetters(app: "demo", triggerID: nil, handler: nil, before: nil, limit: 10).isEmpty)
        #expect(try await storage.replayDeadLetter(app: "demo", id: letter.id, target: target, now: 7000) == false)
    }

    @Test("a claimed delivery carries every field of its row, each in its place", arguments: Backend.all)
    func claimedFields(_ backend: Backend) async throws {
        let storage = try await TestStore(backend).storage
        let target = OutboxTarget(triggerID: "trg_fields", kind: .docs, handler: "handlers/on_doc.lua",
                                  retry: RetryPolicy(maxAttempts: 7, baseMilliseconds: 30, capMilliseconds: 900), timeoutMilliseconds: 1234)
        let eventID = try await storage.enqueue(app: "demo", enqueue: OutboxEnqueue(targets: [target], depth: 2), event: Array(#"{"n":1}"#.utf8), now: 1000)
        let claimed = try #require(try await storage.claimDeliveries(owner: "a", now: 1000, leaseMilliseconds: 500, limit: 10).first)
        try await storage.retryDelivery(id: claimed.id, owner: "a", dueAt: 3000, error: "first try failed")
        let again = try #require(try await storage.claimDeliveries(owner: "a", now: 3000, leaseMilliseconds: 700, limit: 10).first)
        #expect(again.id == claimed.id && again.eventID == eventID && again.app == "demo" && again.triggerID == "trg_fields")
        #expect(again.kind == .docs && again.handler == "handlers/on_doc.lua" && again.event == Array(#"{"n":1}"#.utf8))
        #expect(again.depth == 2 && again.attempts == 2 && again.retry == target.retry && again.timeoutMilliseconds == 1234)
        #expect(again.toDeadLetter == false && again.dueAt == 3000 && again.leasedUntil == 3700)
        #expect(again.lastError == "first try failed" && again.createdAt == 1000)
        #expect(try await storage.outbox(app: "demo", after: nil, limit: 10) == [again])
    }

    @Test("dead letters page newest first without skipping letters that failed in the same millisecond", arguments: Backend.all)
    func deadLetterPages(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let storage = store.storage
        let target = OutboxTarget(triggerID: "trg_1", kind: .kv, handler: "h.lua", retry: RetryPolicy(maxAttempts: 1, baseMilliseconds: 10, capMilliseconds: 10), timeoutMilliseconds: nil)
        for index in 0..<5 {
            _ = try await storage.enqueue(app: "demo", enqueue: OutboxEnqueue(targets: [target], depth: 1), event: Array(#"{"n":\#(index)}"#.utf8), now: 1000)
        }
        var letters: [String] = []
        for delivery in try await storage.claimDeliveries(owner: "a", now: 1000, leaseMilliseconds: 500, limit: 10) {
            // All fail in the same millisecond.
            letters.append(try #require(try await storage.deadLetter(delivery, owner: "a", error: "boom", now: 2000, deadLetterTargets: .none)).id)
        }
        var paged: [String] = []
        var before: String?
        repeat {
            let page = try await storage.deadLetters(app: "demo", triggerID: nil, handler: nil, before: before, limit: 2)
            paged += page.map(\.id)
            before = page.count == 2 ? page.last?.id : nil
        } while before != nil
        #expect(paged == letters.sorted(by: >))
    }

    @Test("cron fires a scheduled time once: a second node with the same view loses", arguments: Backend.all)
    func cronOnce(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let storage = store.storage
        let target = OutboxTarget(triggerID: "trg_cron", kind: .cron, handler: "c.lua", retry: TriggerRecord.defaultRetry, timeoutMilliseconds: nil)
        #expect(try await storage.cronLastFired(triggerID: "trg_cron") == nil)
        #expect(try await storage.fireCron(app: "demo", triggerID: "trg_cron", previous: nil, scheduledAt: 1000, enqueue: .none, event: [], now: 1000))
        #expect(try await storage.fireCron(app: "demo", triggerID: "trg_cron", previous: nil, scheduledAt: 1000, enqueue: .none, event: [], now: 1000) == false)
        let fire = OutboxEnqueue(targets: [target], depth: 0)
        #expect(try await storage.fireCron(app: "demo", triggerID: "trg_cron", previous: 1000, scheduledAt: 2000, enqueue: fire, event: Array("{}".utf8), now: 2000))
        #expect(try await storage.fireCron(app: "demo", triggerID: "trg_cron", previous: 1000, scheduledAt: 2000, enqueue: fire, event: Array("{}".utf8), now: 2000) == false)
        #expect(try await storage.cronLastFired(triggerID: "trg_cron") == 2000)
        #expect(try await storage.outboxDepth() == 1)
    }
}

@Suite("SQLite group commit")
struct GroupCommitTests {
    @Test("concurrent writes share transactions, yet each commits or fails alone, with its own outbox rows")
    func failuresStayAlone() async throws {
        let store = try await TestStore(.sqlite)
        let storage = store.storage
        let target = OutboxTarget(triggerID: "t", kind: .docs, handler: "h.lua", retry: RetryPolicy(maxAttempts: 1, baseMilliseconds: 10, capMilliseconds: 10), timeoutMilliseconds: nil)
        let enqueue = OutboxEnqueue(targets: [target], depth: 1)
        _ = try await storage.docInsert(app: "demo", collection: "c", id: "taken", body: store.json("{}"), now: 1, enqueue: .none)
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for index in 0..<200 {
                group.addTask {
                    // Every third write conflicts (the id exists) and must fail without taking others with it.
                    let id = index % 3 == 0 ? "taken" : "d\(index)"
                    let ok = (try? await storage.docInsert(app: "demo", collection: "c", id: id, body: store.json("{\"n\":\(index)}"), now: 2, enqueue: enqueue)) != nil
                    return (index, ok)
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        for (index, ok) in results { #expect(ok == (index % 3 != 0), "write \(index)") }
        let written = results.values.filter { $0 }.count
        #expect(try await storage.docCount(app: "demo", collection: "c", filter: []) == written + 1)
        #expect(try await storage.outboxDepth() == written, "only the writes that committed left outbox rows")
    }
}
