import Dispatch
import LuaBridge
import Synchronization
import Testing

/// A serial queue standing in for an event loop: the confined worker is used only on it.
private final class Loop: Sendable {
    let queue = DispatchQueue(label: "confined-worker-test")
    let hops = Atomic<Int>(0)

    var schedule: LuaConfinedWorker.Schedule {
        { [self] work in
            hops.add(1, ordering: .relaxed)
            queue.async(execute: work)
        }
    }

    /// Runs `body` on the queue and waits for the value it hands to `done`.
    func invoke(_ worker: LuaConfinedWorker, _ handler: String = "handlers/main.lua", _ arguments: [LuaValue] = []) async -> Result<[LuaValue], LuaError> {
        await withCheckedContinuation { continuation in
            queue.async {
                worker.invoke(handler, arguments: arguments, context: nil) { continuation.resume(returning: $0) }
            }
        }
    }
}

@Suite("Confined VM worker (event-loop handlers)")
struct ConfinedWorkerTests {
    @Test("a handler without waiting host calls finishes before invoke returns, with no hand-off")
    func synchronous() async throws {
        let pool = try makePool("local a, b = ... return { sum = a + b }")
        let loop = Loop()
        let worker = pool.confinedWorker(for: ObjectIdentifier(loop), schedule: loop.schedule)
        let finished = await withCheckedContinuation { continuation in
            loop.queue.async {
                let seen = Mutex<[LuaValue]?>(nil)
                worker.invoke("handlers/main.lua", arguments: [2, 40], context: nil) { result in seen.withLock { $0 = try? result.get() } }
                // Already done: the completion ran on this stack.
                continuation.resume(returning: seen.withLock { $0 })
            }
        }
        #expect(finished == [["sum": 42]])
        #expect(loop.hops.load(ordering: .relaxed) == 0)
        #expect(pool.confinedWorker(for: ObjectIdentifier(loop), schedule: loop.schedule) === worker, "one worker per key")
    }

    @Test("a waiting host call resumes the handler through the schedule, on the worker's thread")
    func suspends() async throws {
        let pool = try makePool("local n = ... local a = test.wait(n, 5) local b = test.wait(a + 1) return a + b")
        let loop = Loop()
        let worker = pool.confinedWorker(for: ObjectIdentifier(loop), schedule: loop.schedule)
        let result = await loop.invoke(worker, "handlers/main.lua", [20])
        #expect(try result.get() == [41])
        #expect(loop.hops.load(ordering: .relaxed) == 2, "one hand-back per waiting call")
    }

    @Test("many invocations interleave on the one VM while they wait; failures and limits are reported")
    func interleaved() async throws {
        let pool = try makePool("""
            local n, mode = ...
            if mode == 'fail' then test.wait(0) error('broke ' .. n) end
            if mode == 'loop' then while true do end end
            return test.wait(n, 2)
            """, configuration: LuaPoolConfiguration(size: 1, limits: LuaLimits(instructions: 200_000)))
        let loop = Loop()
        let worker = pool.confinedWorker(for: ObjectIdentifier(loop), schedule: loop.schedule)
        let results = await withTaskGroup(of: (Int, Result<[LuaValue], LuaError>).self) { group in
            for index in 0..<200 {
                let mode: LuaValue = index % 50 == 7 ? "loop" : index % 10 == 3 ? "fail" : .nil
                group.addTask { (index, await loop.invoke(worker, "handlers/main.lua", [.integer(Int64(index)), mode])) }
            }
            var all: [Int: Result<[LuaValue], LuaError>] = [:]
            for await (index, result) in group { all[index] = result }
            return all
        }
        for (index, result) in results {
            switch result {
            case .success(let values):
                #expect(index % 10 != 3 && index % 50 != 7)
                #expect(values == [.integer(Int64(index))])
            case .failure(let error):
                if index % 50 == 7 {
                    #expect(error.code == .instructionLimit, "\(error)")
                } else {
                    #expect(index % 10 == 3)
                    #expect(error.message.contains("broke \(index)"), "\(error.message)")
                }
            }
        }
        let statistics = await pool.statistics()
        #expect(statistics.invocations == 200, "confined workers count in the pool's statistics")
        #expect(statistics.failures == results.values.filter { (try? $0.get()) == nil }.count)
        #expect(statistics.vmsRetired == 4, "a VM that hit a limit is replaced")
    }
}
