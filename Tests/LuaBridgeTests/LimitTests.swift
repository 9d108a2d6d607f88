import LuaBridge
import Testing

@Suite("Limits")
struct LimitTests {
    /// The time limit of tests about other limits. On the actor pool a handler is paused every
    /// 2 ms and continues behind whatever else the pool has queued; while the whole suite starts
    /// on two cores that queue is long, and the default 10 s were seen to run out first.
    static let patient = Duration.seconds(120)

    @Test("the instruction budget stops a loop, even one that catches errors")
    func instructionBudget() async throws {
        let error = try await failure("local ok repeat ok = pcall(function() while true do end end) until false", limits: LuaLimits(instructions: 1_000_000, timeout: Self.patient))
        #expect(error.code == .instructionLimit)
        #expect(error.message == "handlers/main.lua:2: instruction limit of 1000000 exceeded")
    }

    @Test("the budget covers coroutines the handler creates")
    func budgetInCoroutines() async throws {
        let error = try await failure("""
            local cos = {}
            for i = 1, 10 do cos[i] = coroutine.create(function() while true do coroutine.yield() end end) end
            while true do for _, co in ipairs(cos) do coroutine.resume(co) end end
            """, limits: LuaLimits(instructions: 2_000_000, timeout: Self.patient))
        #expect(error.code == .instructionLimit)
    }

    @Test("the deadline stops a handler that runs too long")
    func deadline() async throws {
        let error = try await failure("while true do end", limits: LuaLimits(instructions: .max, timeout: .milliseconds(50)))
        #expect(error.code == .timeout)
        #expect(error.message.contains("time limit of 0.05 seconds exceeded"))
    }

    @Test("the deadline covers time spent waiting for host calls")
    func deadlineWhileWaiting() async throws {
        let error = try await failure("for i = 1, 100 do test.wait(i, 20) end", limits: LuaLimits(timeout: .milliseconds(60)))
        #expect(error.code == .timeout)
        #expect(error.message.contains("waiting for test.wait"))
    }

    @Test("running out of memory is a catchable error, and the VM is replaced")
    func memoryCap() async throws {
        let pool = try makePool("""
            local ok, err = pcall(string.rep, "x", 100 * 1024 * 1024)
            local after = #string.rep("y", 1000)
            return ok, err, after
            """, configuration: LuaPoolConfiguration(size: 1, memoryLimit: 16 << 20))
        let values = try await pool.invoke("handlers/main.lua")
        #expect(values == [false, "not enough memory", 1000])
        _ = try await pool.invoke("handlers/main.lua")
        let statistics = await pool.statistics()
        #expect(statistics.vmsCreated == 2)
        #expect(statistics.vmsRetired >= 1)
    }

    @Test("an uncaught memory error fails the invocation with code memory")
    func memoryFailure() async throws {
        let pool = try makePool(
            "local t = {} for i = 1, 1e8 do t[i] = tostring(i) end",
            configuration: LuaPoolConfiguration(size: 1, memoryLimit: 8 << 20, limits: LuaLimits(timeout: Self.patient))
        )
        let error = try await failure("", in: pool)
        #expect(error.code == .memory)
        #expect(error.message.contains("not enough memory"))
    }

    @Test("pattern matching has a step budget but keeps ordinary patterns working")
    func patterns() async throws {
        let values = try await run("""
            local s = string.rep("ab ", 10000)
            local n = select(2, s:gsub("%s+", "_"))
            local first, last = s:find("(b) (a)", 1)
            local trimmed = ("  padded  "):match("^%s*(.-)%s*$")
            return n, first, last, trimmed, ("key=value"):match("(%w+)=(%w+)")
            """)
        #expect(values == [10000, 2, 4, "padded", "key", "value"])
        let error = try await failure(#"return ("a"):rep(20000):find("(.-)(.-)(.-)b")"#)
        #expect(error.message.contains("pattern too complex"))
    }

    @Test("pattern functions behave like Lua's")
    func patternSemantics() async throws {
        let values = try await run("""
            local out = {}
            local function add(...) for i = 1, select("#", ...) do out[#out + 1] = tostring((select(i, ...))) end end
            add(("hello world"):find("o w"))
            add(("hello world"):find("l+"))
            add(("hello"):find("l", 1, true))
            add(("hello"):find(""))
            add(("hello"):find("x"))
            add(("hello"):match("()ll()"))
            add(("THE (quick) fox"):find("%((%a+)%)"))
            add(("f(a(b)c)d"):match("%b()"))
            add(("THE (quick) fox"):gsub("%f[%a]%a+", function(w) return w:lower() end))
            add(("abc"):gsub("", "-"))
            add(("hello world"):gsub("o", {o = "0"}))
            add(("abc"):gsub("%w", "%0%0"))
            add(("x = 1, y = 2"):gsub("(%w+) = (%w+)", "%2 = %1"))
            for k, v in ("a=1, b=2"):gmatch("(%w+)=(%w+)") do add(k, v) end
            add(("aaa"):gsub("a*", "-"))
            add(("  x"):find("^%s*"))
            add(string.match("2024-01-05", "(%d+)-(%d+)-(%d+)"))
            add(string.find("a.b", ".", 1, true), string.find("a+b", "+", 1, true))
            add(pcall(string.find, "a", "[a"))
            add(pcall(string.gsub, "a", "(a", "x"))
            add(pcall(string.gsub, "abc", "b", "%9"))
            return table.concat(out, "|")
            """)
        // What stock Lua 5.4 prints for the same script (`lua5.4`), recorded here.
        let expected = #"5|7|3|4|3|3|1|0|nil|3|5|5|11|quick|(a(b)c)|the (quick) fox|3|-a-b-c-|4|hell0 w0rld|2|aabbcc|3|1 = x, 2 = y|2|a|1|b|2|-|1|1|2|2024|01|05|2|2|2|false|malformed pattern (missing ']')|true|x|1|false|invalid capture index %9"#
        #expect(values == [.string(expected)])
    }
}
