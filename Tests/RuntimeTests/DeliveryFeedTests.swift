@testable import Runtime
@testable import Services
import Synchronization
import Testing

/// The dispatcher's line between the store (and the claim loop) and its workers (pure logic).
@Suite("Delivery feed")
struct DeliveryFeedTests {
    static func delivery(_ id: Int64) -> OutboxDelivery {
        OutboxDelivery(
            id: id, eventID: "evt_\(id)", app: "app", triggerID: "trg", kind: .kv, handler: "h.lua", event: Array("{}".utf8), depth: 0,
            attempts: 1, retry: RetryPolicy(maxAttempts: 3, baseMilliseconds: 10, capMilliseconds: 100), timeoutMilliseconds: nil,
            toDeadLetter: false, dueAt: 0, leasedUntil: nil, lastError: nil, createdAt: 0
        )
    }

    /// `task`'s value, or a failure after `seconds`: then the task is cancelled (a worker left
    /// waiting would otherwise hang the test; cancelled, its `next()` returns nil).
    static func value<T: Sendable>(of task: Task<T, Never>, seconds: Int = 20) async throws -> T {
        let timer = Task {
            try await Task.sleep(for: .seconds(seconds))
            task.cancel()
        }
        let value = await task.value
        guard !task.isCancelled else { throw TimedOut() }
        timer.cancel()
        return value
    }

    struct TimedOut: Error {}

    final class Counters: Sendable {
        let taken = Mutex<[Int64]>([])
        let started = Atomic<Int>(0)
    }

    @Test("each delivery reaches one worker, in the order pushed; every worker ends after finish")
    func manyWorkers() async throws {
        let feed = DeliveryFeed()
        let counters = Counters()
        let workers = Task {
            await withDiscardingTaskGroup { group in
                for _ in 0..<8 {
                    group.addTask {
                        while let delivery = await feed.next() {
                            counters.taken.withLock { $0.append(delivery.id) }
                            if delivery.id % 7 == 0 { await Task.yield() }
                        }
                    }
                }
            }
        }
        var next: Int64 = 1
        for size in [1, 3, 17, 64, 5, 200, 2] + Array(repeating: 9, count: 50) {
            feed.push((0..<size).map { offset in Self.delivery(next + Int64(offset)) })
            next += Int64(size)
            if size == 17 { try await Task.sleep(for: .milliseconds(5)) }
        }
        feed.finish()
        try await Self.value(of: workers)
        let ids = counters.taken.withLock { $0 }
        #expect(ids.count == Int(next - 1))
        #expect(Set(ids) == Set(1..<next))
    }

    @Test("workers idle before a push all get a delivery: each one wakes the next")
    func idleWorkersWake() async throws {
        let feed = DeliveryFeed()
        let counters = Counters()
        let workers = (0..<4).map { _ in
            Task { () -> Int64? in
                counters.started.add(1, ordering: .relaxed)
                return await feed.next()?.id
            }
        }
        while counters.started.load(ordering: .relaxed) < 4 { await Task.yield() }
        try await Task.sleep(for: .milliseconds(50)) // all four are waiting
        feed.push((1...4).map { Self.delivery($0) })
        var got: [Int64] = []
        for worker in workers {
            if let id = try await Self.value(of: worker) { got.append(id) }
        }
        #expect(got.sorted() == [1, 2, 3, 4])
    }

    @Test("after finish the line is still handed out in order, then nil; later pushes are dropped")
    func finishDrains() async throws {
        let feed = DeliveryFeed()
        feed.push([Self.delivery(1), Self.delivery(2), Self.delivery(3)])
        feed.finish()
        feed.push([Self.delivery(4)])
        #expect(await feed.next()?.id == 1)
        #expect(await feed.next()?.id == 2)
        #expect(await feed.next()?.id == 3)
        #expect(await feed.next() == nil)
        #expect(await feed.next() == nil)
    }

    @Test("idle workers end when the feed finishes with nothing in line")
    func finishWakesIdle() async throws {
        let feed = DeliveryFeed()
        let workers = (0..<3).map { _ in Task { await feed.next() } }
        try await Task.sleep(for: .milliseconds(50))
        feed.finish()
        for worker in workers { #expect(try await Self.value(of: worker) == nil) }
    }

    @Test("a cancelled waiting worker gets nil and takes nothing from the line")
    func cancellation() async throws {
        let feed = DeliveryFeed()
        let cancelled = Task { await feed.next() }
        try await Task.sleep(for: .milliseconds(50))
        cancelled.cancel()
        #expect(await cancelled.value == nil)
        let waiting = Task { await feed.next()?.id }
        try await Task.sleep(for: .milliseconds(50))
        feed.push([Self.delivery(9)])
        #expect(try await Self.value(of: waiting) == 9)
        // A task cancelled before it asks gets nil at once.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await feed.next()
        }
        #expect(await early.value == nil)
    }
}
