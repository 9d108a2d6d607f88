import LuaBridge
import Synchronization
import Testing

@Suite("Host calls")
struct HostCallTests {
    @Test("a host function returns values")
    func returnsValues() async throws {
        #expect(try await run("return test.echo(1, 'two', {3})") == [1, "two", [3]])
    }

    @Test("a host function's error is a Lua error at the calling line, catchable by pcall")
    func raisesAtCaller() async throws {
        let error = try await failure("\n\ntest.fail('nope')")
        #expect(error.message == "handlers/main.lua:4: nope")
        #expect(error.line == 4)
        #expect(try await run("return pcall(test.fail, 'caught')") == [false, "caught"])
    }

    @Test("bad arguments are reported like Lua's own functions do")
    func badArgument() async throws {
        let error = try await failure("return kv.get({})")
        #expect(error.message == "handlers/main.lua:2: bad argument #1 to 'kv.get' (string expected, got table)")
    }

    @Test("a host function that raises releases every Swift object it held")
    func releasesSwiftObjects() async throws {
        let before = Tracked.live.load(ordering: .relaxed)
        let values = try await run("""
            local caught = 0
            for i = 1, 100 do
              local ok = pcall(test.tracked_fail)
              if not ok then caught = caught + 1 end
            end
            local ok, err = pcall(function() return coroutine.wrap(function() test.tracked_fail() end)() end)
            return caught, ok
            """)
        #expect(values == [100, false])
        #expect(Tracked.live.load(ordering: .relaxed) == before)
        let error = try await failure("test.tracked_fail()")
        #expect(error.message.contains("failed while holding Swift objects"))
        #expect(Tracked.live.load(ordering: .relaxed) == before)
    }

    @Test("a suspended coroutine resumes with the awaited value")
    func suspendResume() async throws {
        #expect(try await run("return test.wait(41) + 1, kv.get('k')") == [42, "value of k"])
    }

    @Test("a host call can wait inside the script's own coroutines, pcall and wrap")
    func suspendNested() async throws {
        let values = try await run("""
            local co = coroutine.create(function(a)
              local b = test.wait(a + 1)
              local c = coroutine.yield(b)
              return pcall(function() return test.wait(c * 10) end)
            end)
            local ok1, first = coroutine.resume(co, 1)
            local ok2, ok3, second = coroutine.resume(co, 5)
            local deep = coroutine.wrap(function()
              return coroutine.wrap(function() return test.wait("deep") end)()
            end)()
            return first, second, deep, coroutine.status(co)
            """)
        #expect(values == [2, 50, "deep", "dead"])
    }

    @Test("a host call written with a callback resumes the script with its outcome, also when called back at once")
    func callback() async throws {
        let values = try await run("""
            local a = test.call_back(40)
            local b = test.call_back(2, 'now')
            local ok, message = pcall(test.call_back_fail, 'no disk')
            local co = coroutine.wrap(function() return test.call_back('inner') end)
            return a + b, ok, message, co()
            """)
        #expect(values == [42, false, "no disk", "inner"])
        let error = try await failure("local t = {3, 1, 2} table.sort(t, function(a, b) return test.call_back(a) < b end)")
        #expect(error.message.contains("'test.call_back' cannot wait here"))
    }

    @Test("an awaited operation that fails raises in the script")
    func suspendFailure() async throws {
        #expect(try await run("return pcall(test.wait_fail, 'disk on fire')") == [false, "disk on fire"])
    }

    @Test("a host call that would wait where Lua cannot yield fails clearly")
    func cannotSuspendInSort() async throws {
        let error = try await failure("local t = {3, 1, 2} table.sort(t, function(a, b) return test.wait(a) < b end)")
        #expect(error.message.contains("'test.wait' cannot wait here"))
    }

    @Test("a module's top level cannot wait for I/O")
    func cannotSuspendAtModuleLoad() async throws {
        let program = try LuaProgram(files: ["handlers/main.lua": "local v = kv.get('x') return function() return v end"], handlers: ["handlers/main.lua"])
        let pool = LuaPool(program: program, environment: TestHost.environment)
        await #expect(throws: LuaError.self) { try await pool.prepare() }
    }

    @Test("a coroutine waiting for a host call cannot be resumed by someone else")
    func foreignResume() async throws {
        let pool = try makePool(
            """
            local shared = require("lib.shared")
            if ... == "waiter" then
              shared.co = coroutine.running()
              return test.wait("real", 50)
            end
            while not shared.co do test.wait(nil, 1) end
            return coroutine.resume(shared.co, true, "forged")
            """,
            modules: ["lib/shared.lua": "return {}"]
        )
        async let waiter = pool.invoke("handlers/main.lua", ["waiter"])
        let intruder = try await pool.invoke("handlers/main.lua", ["intruder"])
        #expect(intruder == [false, "cannot resume a coroutine that is waiting for a host call or its turn"])
        #expect(try await waiter == ["real"])
    }
}
