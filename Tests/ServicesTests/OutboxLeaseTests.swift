import Foundation
import GRDB
import Synchronization
import Testing

@testable import Services

/// A dispatcher as the store sees it: room for `room` deliveries, recording what it is given.
final class RecordingTaker: OutboxLeaseTaker {
    let owner = "node-test"
    let leaseMilliseconds: Int64 = 60_000
    let room: Atomic<Int>
    let reserved = Atomic<Int>(0)
    let released = Atomic<Int>(0)
    let unleasedCommits = Atomic<Int>(0)
    let taken = Mutex<[OutboxDelivery]>([])

    init(room: Int) { self.room = Atomic(room) }

    func reserve() -> Bool {
        guard room.load(ordering: .relaxed) > 0 else { return false }
        room.subtract(1, ordering: .relaxed)
        reserved.add(1, ordering: .relaxed)
        return true
    }

    func release(_ count: Int) {
        room.add(count, ordering: .relaxed)
        released.add(count, ordering: .relaxed)
    }

    func take(_ deliveries: [OutboxDelivery]) { taken.withLock { $0 += deliveries } }
    func committedUnleased() { unleasedCommits.add(1, ordering: .relaxed) }
}

@Suite("Outbox rows leased as they are written")
struct OutboxLeaseTests {
    static let target = OutboxTarget(triggerID: "trg_1", kind: .kv, handler: "h.lua", retry: TriggerRecord.defaultRetry, timeoutMilliseconds: nil)

    /// An embedded store leasing new rows to a taker with `room`.
    func leasingStore(room: Int) async throws -> (SQLiteStorage, RecordingTaker) {
        let storage = try #require(try await TestStore(.sqlite).storage as? SQLiteStorage)
        let taker = RecordingTaker(room: room)
        #expect(storage.leaseNewRows(to: taker))
        return (storage, taker)
    }

    @Test("the embedded store leases a new row to its dispatcher in the write's transaction: handed over after the commit, first attempt counted, never claimed")
    func leasedAtWrite() async throws {
        let store = try await TestStore(.sqlite)
        let storage = store.storage
        let taker = RecordingTaker(room: 1)
        #expect(storage.leaseNewRows(to: taker))
        let triggers = EverythingTriggers()
        let kv = KVService(storage: storage, triggers: triggers)
        try await kv.set(app: "demo", key: "a", value: store.json("1"))
        // Handed over before the write was acknowledged.
        let taken = taker.taken.withLock { $0 }
        try #require(taken.count == 1)
        let rows = try await storage.outbox(app: "demo", after: nil, limit: 10)
        #expect(rows.count == 1)
        #expect(rows[0].id == taken[0].id && rows[0].eventID == taken[0].eventID && rows[0].event == taken[0].event)
        #expect(taken[0].attempts == 1 && rows[0].attempts == 1)
        #expect(rows[0].leasedUntil == taken[0].leasedUntil && taken[0].leasedUntil == taken[0].dueAt + 60_000)
        #expect(taker.unleasedCommits.load(ordering: .relaxed) == 0)
        // No claim takes it while its lease runs; one does once it ran out (the node died).
        #expect(try await storage.claimDeliveries(owner: "other", now: Clock.now(), leaseMilliseconds: 1000, limit: 10).isEmpty)
        let late = try await storage.claimDeliveries(owner: "other", now: taken[0].dueAt + 60_001, leaseMilliseconds: 1000, limit: 10)
        #expect(late.map(\.id) == [taken[0].id] && late.first?.attempts == 2)

        // Without room the row waits for a claim, and the taker hears of it after the commit.
        try await kv.set(app: "demo", key: "b", value: store.json("2"))
        #expect(taker.taken.withLock { $0.count } == 1)
        #expect(taker.unleasedCommits.load(ordering: .relaxed) == 1)
        // A long lease: the last claim below must not find this row again, however slow the run.
        let claimed = try await storage.claimDeliveries(owner: "other", now: Clock.now(), leaseMilliseconds: 600_000, limit: 10)
        #expect(claimed.count == 1 && claimed.first?.attempts == 1)

        // Detached: rows are left to the claim again.
        #expect(storage.leaseNewRows(to: nil) == false)
        taker.room.store(10, ordering: .relaxed)
        try await kv.set(app: "demo", key: "c", value: store.json("3"))
        #expect(taker.taken.withLock { $0.count } == 1 && taker.reserved.load(ordering: .relaxed) == 1)
        #expect(try await storage.claimDeliveries(owner: "other", now: Clock.now(), leaseMilliseconds: 1000, limit: 10).count == 1)
    }

    @Test("a store several nodes share leaves new rows to the claim", arguments: Backend.all)
    func sharedStoreDoesNot(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        #expect(store.storage.leaseNewRows(to: RecordingTaker(room: 10)) == (backend == .sqlite))
    }

    /// In a batch rolled back because one write failed, the others' leased rows are forgotten and
    /// their room given back; the rerun leases them again. Only committed rows reach the taker.
    @Test("rows leased by writes that rolled back give their room back and never reach the dispatcher")
    func rolledBackLeases() async throws {
        let (storage, taker) = try await leasingStore(room: 1000)
        struct Refused: Error {}
        let target = Self.target
        let outcomes = try await storage.writesSharingABatch(30) { db, index in
            _ = try storage.insertOutbox(db, app: "demo", enqueue: OutboxEnqueue(targets: [target], depth: 0), event: Array(#"{"n":\#(index)}"#.utf8), now: Clock.now())
            if index % 3 == 0 { throw Refused() }
        }
        #expect(outcomes.values.filter { $0 }.count == 20)
        let rows = try await storage.outbox(app: "demo", after: nil, limit: 100)
        let taken = taker.taken.withLock { $0 }
        #expect(rows.count == 20)
        #expect(Set(taken.map(\.id)) == Set(rows.map(\.id)) && taken.count == 20)
        #expect(rows.allSatisfy { $0.attempts == 1 && $0.leasedUntil != nil })
        // Every reservation either reached the taker or was given back.
        #expect(taker.released.load(ordering: .relaxed) > 0)
        #expect(taker.reserved.load(ordering: .relaxed) - taker.released.load(ordering: .relaxed) == 20)
        #expect(taker.room.load(ordering: .relaxed) == 980)
    }

    @Test("room taken for a row whose insert failed is given back")
    func failedInsert() async throws {
        let (storage, taker) = try await leasingStore(room: 5)
        let target = Self.target
        // No such app: the row breaks its foreign key after its room was taken.
        await #expect(throws: (any Error).self) {
            try await storage.write { db in
                try storage.insertOutbox(db, app: "missing", enqueue: OutboxEnqueue(targets: [target], depth: 0), event: Array("{}".utf8), now: Clock.now())
            }
        }
        #expect(taker.reserved.load(ordering: .relaxed) >= 1)
        #expect(taker.room.load(ordering: .relaxed) == 5 && taker.taken.withLock { $0.isEmpty })
    }
}
