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

    @Test("a host call with a callback resumes the handler through the schedule, without a task")
    func callbackSuspends() async throws {
        let pool = try makePool("""
            local n = ...
            local a = test.call_back(n)
            local b = test.call_back(a + 1, 'now')
            local ok, message = pcall(test.call_back_fail, 'refused')
            return a + b, ok, message
            """)
        let loop = Loop()
        let worker = pool.confinedWorker(for: ObjectIdentifier(loop), schedule: loop.schedule)
        let result = await loop.invoke(worker, "handlers/main.lua", [20])
        #expect(try result.get() == [41, false, "refused"])
        #expect(loop.hops.load(ordering: .relaxed) == 3, "one hand-back per waiting call, also for one called back at once")
    }

    @Test("many invocations interleave on the one VM while they wait; failures and limits are reported")
    func interleaved() async throws {
        let pool = try makePool("""
            local n, mode = ...
            if mode == 'fail' then test.wait(0) error('broke ' .. n) end
            if mode == 'loop' then while true do end end
            return test.wait(n, 2)
            """, configuration: LuaPoolConfiguration(size: 1, limits: LuaLimits(instructions: 200_000), timeSlice: .zero))
        // (No time slices: each runaway loop runs to its limit alone, so each retires a VM of its own.)
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

    @Test("a handler computing past its time slice is paused: others on the thread go first, it continues where it stopped")
    func timeSlices() throws {
        let pool = try makePool("""
            local mode = ...
            if mode == 'quick' then return 'quick' end
            local function spin(n) local s = 0 for i = 1, n do s = s + i end return s end
            if mode == 'spin' then return spin(20000000) end
            local shared = require("lib.shared")
            if mode == 'own' then
              shared.co = coroutine.create(function() return spin(20000000) end)
              return coroutine.resume(shared.co)
            end
            if mode == 'intrude' then return coroutine.resume(shared.co) end
            if mode == 'sort' then
              -- no pause inside a comparator called from C (where Lua cannot yield): it just runs
              local t = { 3, 1, 2 }
              table.sort(t, function(a, b) spin(3000000) return a < b end)
              return t
            end
            -- paused inside its own coroutine (resumed through pcall) and with a pending __close
            local closed = false
            do
              local guard <close> = setmetatable({}, { __close = function() closed = true end })
              local co = coroutine.wrap(function() coroutine.yield(spin(10000000)) return 'after' end)
              local ok, first = pcall(co)
              return { first = first, second = co(), closed_inside = closed }
            end
            """, modules: ["lib/shared.lua": "return {}"], configuration: LuaPoolConfiguration(size: 1, limits: LuaLimits(timeout: LimitTests.patient)))
        let loop = ManualLoop()
        let worker = pool.confinedWorker(for: ObjectIdentifier(loop), schedule: loop.schedule)
        let finished = Mutex<[String]>([])
        let values = Mutex<[String: [LuaValue]]>([:])
        func invoke(_ mode: String) {
            worker.invoke("handlers/main.lua", arguments: [.string(mode)], context: nil) { result in
                finished.withLock { $0.append(mode) }
                values.withLock { $0[mode] = try? result.get() }
            }
        }
        invoke("spin")
        #expect(finished.withLock { $0 }.isEmpty, "20 million iterations take longer than a 2 ms slice")
        #expect(loop.waiting == 1, "the paused handler waits in the thread's queue")
        invoke("quick")
        #expect(finished.withLock { $0 } == ["quick"], "another request on the same thread is answered meanwhile")
        let pauses = loop.drain()
        #expect(pauses >= 2)
        #expect(finished.withLock { $0 } == ["quick", "spin"])
        #expect(values.withLock { $0["spin"] } == [.integer(200_000_010_000_000)])

        invoke("nested")
        #expect(loop.drain() >= 1)
        #expect(values.withLock { $0["nested"] } == [["first": .integer(50_000_005_000_000), "second": "after", "closed_inside": false]])

        invoke("own")
        invoke("intrude")
        #expect(values.withLock { $0["intrude"] } == [false, "cannot resume a coroutine that is waiting for a host call or its turn"])
        #expect(loop.drain() >= 1)
        #expect(values.withLock { $0["own"] } == [true, .integer(200_000_010_000_000)])

        invoke("sort")
        _ = loop.drain()
        #expect(values.withLock { $0["sort"] } == [[1, 2, 3]])
    }

    @Test("pauses cost nothing of the limits, which still stop a runaway handler; a zero slice never pauses")
    func timeSliceLimits() throws {
        let pool = try makePool("while true do end", configuration: LuaPoolConfiguration(size: 1, limits: LuaLimits(instructions: 30_000_000, timeout: LimitTests.patient)))
        let loop = ManualLoop()
        let worker = pool.confinedWorker(for: ObjectIdentifier(loop), schedule: loop.schedule)
        let outcome = Mutex<Result<[LuaValue], LuaError>?>(nil)
        worker.invoke("handlers/main.lua", arguments: [], context: nil) { result in outcome.withLock { $0 = result } }
        #expect(loop.drain() >= 1)
        let error = try #require(outcome.withLock { $0 }.flatMap { result -> LuaError? in
            if case .failure(let error) = result { return error }
            return nil
        })
        #expect(error.code == .instructionLimit, "\(error)")

        let unsliced = try makePool(
            "local s = 0 for i = 1, 10000000 do s = s + i end return s",
            configuration: LuaPoolConfiguration(size: 1, limits: LuaLimits(timeout: LimitTests.patient), timeSlice: .zero)
        )
        let other = ManualLoop()
        let runner = unsliced.confinedWorker(for: ObjectIdentifier(other), schedule: other.schedule)
        let sum = Mutex<[LuaValue]?>(nil)
        runner.invoke("handlers/main.lua", arguments: [], context: nil) { result in sum.withLock { $0 = try? result.get() } }
        #expect(sum.withLock { $0 } == [.integer(50_000_005_000_000)])
        #expect(other.waiting == 0)
    }

    @Test("on the actor-confined pool a long handler is paused too, and its result is whole")
    func actorTimeSlices() async throws {
        let pool = try makePool("""
            local n = ...
            local s = 0
            for i = 1, n do s = s + i end
            return s
            """, configuration: LuaPoolConfiguration(size: 1, limits: LuaLimits(timeout: LimitTests.patient)))
        async let long = pool.invoke("handlers/main.lua", [.integer(20_000_000)])
        let short = try await pool.invoke("handlers/main.lua", [.integer(10)])
        #expect(short == [.integer(55)])
        #expect(try await long == [.integer(200_000_010_000_000)])
    }
}

/// A thread queue the test drains by hand, on its own thread, to see what a worker schedules.
private final class ManualLoop: Sendable {
    private let queue = Mutex<[@Sendable () -> Void]>([])

    var schedule: LuaConfinedWorker.Schedule {
        { [self] work in queue.withLock { $0.append(work) } }
    }

    var waiting: Int { queue.withLock { $0.count } }

    /// Runs what is queued, and what that queues, until nothing is left; returns how many ran.
    func drain() -> Int {
        var ran = 0
        while let next = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
            next()
            ran += 1
        }
        return ran
    }
}
