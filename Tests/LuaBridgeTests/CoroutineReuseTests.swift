import LuaBridge
import Testing

/// A VM keeps the coroutines of handlers that returned and runs later invocations on them. What a
/// handler can see of that: `coroutine.running()` may be an earlier invocation's, and nothing else.
@Suite("Coroutines reused across invocations")
struct CoroutineReuseTests {
    static let shared = ["lib/shared.lua": "return { seen = {} }"]

    @Test("a handler that returned leaves its coroutine to the next one, which starts clean")
    func reused() async throws {
        let pool = try makePool(
            """
            local shared = require("lib.shared")
            local co = coroutine.running()
            local again = shared.last == co
            shared.last = co
            return again, select("#", ...), ...
            """,
            modules: Self.shared
        )
        #expect(try await pool.invoke("handlers/main.lua", ["a", "b"]) == [false, 2, "a", "b"])
        #expect(try await pool.invoke("handlers/main.lua", ["c"]) == [true, 1, "c"], "the same coroutine, with only this call's arguments")
        #expect(try await pool.invoke("handlers/main.lua", []) == [true, 0])
    }

    @Test("a failed handler's coroutine is not reused")
    func failedNotReused() async throws {
        let pool = try makePool(
            """
            local shared = require("lib.shared")
            local co = coroutine.running()
            local again = shared.last == co
            shared.last = co
            if ... == "fail" then error("failed on purpose") end
            return again
            """,
            modules: Self.shared
        )
        #expect(try await pool.invoke("handlers/main.lua", ["ok"]) == [false])
        #expect(try await pool.invoke("handlers/main.lua", ["ok"]) == [true])
        _ = try await failure("", in: pool, ["fail"])
        #expect(try await pool.invoke("handlers/main.lua", ["ok"]) == [false], "a fresh coroutine after the failure")
    }

    @Test("an earlier invocation's coroutine, kept by a script, cannot be resumed or closed to reach a later one")
    func staleReference() async throws {
        let pool = try makePool(
            """
            local shared = require("lib.shared")
            local role = ...
            if role == "keep" then
              shared.kept = coroutine.running()
              return "kept"
            elseif role == "wait" then
              -- Waits in host calls until the intruder has tried (not a fixed time, which a busy
              -- machine can outlast before the intruder looks); gives up after 10,000 waits.
              shared.waiting = coroutine.running()
              local value
              for _ = 1, 10000 do
                value = test.wait("real", 1)
                if shared.intruded then break end
              end
              return value
            elseif role == "again" then
              -- This invocation runs on the kept coroutine: to the script, it is its own.
              return coroutine.status(shared.kept), shared.kept == coroutine.running(), coroutine.resume(shared.kept)
            end
            while not shared.waiting do test.wait(nil, 1) end
            local resumed = { coroutine.resume(shared.waiting, true, "forged") }
            local closed = { pcall(coroutine.close, shared.waiting) }
            shared.intruded = true
            return resumed[1], resumed[2], closed[1], closed[2]
            """,
            modules: Self.shared
        )
        #expect(try await pool.invoke("handlers/main.lua", ["keep"]) == ["kept"])
        #expect(try await pool.invoke("handlers/main.lua", ["again"]) == ["running", true, false, "cannot resume non-suspended coroutine"])
        async let waiter = pool.invoke("handlers/main.lua", ["wait"])
        let intruder = try await pool.invoke("handlers/main.lua", ["intrude"])
        #expect(intruder == [
            false, "cannot resume a coroutine that is waiting for a host call or its turn",
            false, "cannot close a coroutine that is waiting for a host call",
        ])
        #expect(try await waiter == ["real"])
    }

    @Test("limits hold on a reused coroutine: the instruction budget is the new invocation's")
    func limitsHold() async throws {
        let pool = try makePool("if ... == 'spin' then while true do end end return 'quick'")
        let limits = LuaLimits(instructions: 1_000_000)
        #expect(try await pool.invoke("handlers/main.lua", ["quick"], limits: limits) == ["quick"])
        #expect(try await pool.invoke("handlers/main.lua", ["quick"], limits: limits) == ["quick"])
        let error = try await failure("", in: pool, ["spin"], limits: limits)
        #expect(error.code == .instructionLimit)
        #expect(try await pool.invoke("handlers/main.lua", ["quick"], limits: limits) == ["quick"])
    }
}
