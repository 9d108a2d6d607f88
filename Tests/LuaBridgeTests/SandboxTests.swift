import LuaBridge
import Synchronization
import Testing

/// Every way out of the sandbox we know of fails with a clear error, and the pool keeps serving.
@Suite("Sandbox")
struct SandboxTests {
    struct Escape: CustomTestStringConvertible, Sendable {
        let name: String
        let code: String
        let expected: String
        var testDescription: String { name }
    }

    static let escapes: [Escape] = [
        Escape(name: "binary chunk via load", code: #"return load(string.char(27) .. "LuaT\0")"#, expected: "global 'load'"),
        Escape(name: "string.dump", code: "return string.dump(function() end)", expected: "field 'dump'"),
        Escape(name: "debug library", code: "return debug.getinfo(1)", expected: "global 'debug'"),
        Escape(name: "io library", code: #"return io.open("/etc/passwd")"#, expected: "global 'io'"),
        Escape(name: "os.execute", code: #"return os.execute("id")"#, expected: "field 'execute'"),
        Escape(name: "os.exit", code: "os.exit(1)", expected: "field 'exit'"),
        Escape(name: "os.getenv", code: #"return os.getenv("HOME")"#, expected: "field 'getenv'"),
        Escape(name: "package.loadlib", code: #"return package.loadlib("libc.so.6", "system")"#, expected: "global 'package'"),
        Escape(name: "require of a C library", code: #"return require("io")"#, expected: "module 'io' not found"),
        Escape(name: "require of a file path", code: #"return require("/etc/passwd")"#, expected: "not found"),
        Escape(name: "dofile", code: #"return dofile("/etc/passwd")"#, expected: "global 'dofile'"),
        Escape(name: "loadfile", code: #"return loadfile("/etc/passwd")"#, expected: "global 'loadfile'"),
        Escape(name: "string metatable __index replaced", code: #"getmetatable("").__index = { upper = function() return "pwned" end }"#, expected: "read-only table 'string metatable'"),
        Escape(name: "string library patched", code: #"string.upper = function() return "pwned" end"#, expected: "read-only table 'string'"),
        Escape(name: "global kv overwritten", code: "kv = { get = function() return 'fake' end }", expected: "globals are read-only"),
        Escape(name: "kv.get overwritten", code: "kv.get = function() return 'fake' end", expected: "read-only table 'kv'"),
        Escape(name: "new global", code: "counter = 1", expected: "declare it with 'local counter'"),
        Escape(name: "collectgarbage", code: #"collectgarbage("stop")"#, expected: "global 'collectgarbage'"),
        Escape(name: "rawset on _G", code: #"rawset(_G, "kv", {})"#, expected: "read-only table"),
        Escape(name: "rawset on a library", code: #"rawset(string, "upper", print)"#, expected: "read-only table"),
        Escape(name: "setmetatable on _G", code: "setmetatable(_G, { __index = function() return 1 end })", expected: "protected metatable"),
        Escape(name: "setmetatable on the string metatable stand-in", code: #"setmetatable(getmetatable(""), {})"#, expected: "protected metatable"),
        Escape(name: "__gc finalizer", code: "setmetatable({}, { __gc = function() while true do end end })", expected: "__gc metamethods are not allowed"),
        Escape(name: "coroutine-wrapped infinite loop", code: "coroutine.wrap(function() while true do end end)()", expected: "instruction limit"),
        Escape(name: "pcall-wrapped infinite loop", code: "while true do pcall(function() while true do end end) end", expected: "instruction limit"),
        Escape(name: "xpcall with a handler that loops", code: "while true do xpcall(function() while true do end end, function() while true do end end) end", expected: "instruction limit"),
        Escape(name: "__close handler that loops after a kill", code: "local guard <close> = setmetatable({}, { __close = function() while true do end end }) while true do end", expected: "instruction limit"),
        Escape(name: "coroutine.close of a killed coroutine", code: "local co = coroutine.create(function() local g <close> = setmetatable({}, { __close = function() while true do end end }) while true do end end) coroutine.resume(co) coroutine.close(co) while true do end", expected: "instruction limit"),
        Escape(name: "error in __index", code: "local t = setmetatable({}, { __index = function() error('from __index') end }) return t.x", expected: "from __index"),
        Escape(name: "error in __close", code: "do local g <close> = setmetatable({}, { __close = function() error('from __close') end }) end", expected: "from __close"),
        Escape(name: "string.rep bomb", code: #"local s = string.rep("x", 1 << 30) return #s"#, expected: "not enough memory"),
        Escape(name: "concatenation bomb", code: #"local s = "x" while true do s = s .. s end"#, expected: "not enough memory"),
        Escape(name: "table growth bomb", code: "local t = {} for i = 1, 1e9 do t[i] = i end", expected: "not enough memory"),
        Escape(name: "deep recursion", code: "local function f(n) return 1 + f(n + 1) end return f(1)", expected: "stack overflow"),
        Escape(name: "recursion through metamethods", code: "local t = setmetatable({}, {}) getmetatable(t).__index = function(t, k) return t[k] end return t.x", expected: "stack overflow"),
        Escape(name: "table.concat spin", code: #"return table.concat(setmetatable({}, { __len = function() return 1 << 60 end, __index = function() return "" end }))"#, expected: "instruction limit"),
        Escape(name: "table.move spin", code: "table.move({}, 1, 1 << 60, 2)", expected: "instruction limit"),
        Escape(name: "table.insert with a lying __len", code: "local t = setmetatable({}, { __len = function() return 1 << 60 end }) table.insert(t, 1, 'x')", expected: "instruction limit"),
        Escape(name: "table.sort with a lying __len", code: "local t = setmetatable({}, { __len = function() return (1 << 31) - 2 end, __index = rawlen, __newindex = rawequal }) table.sort(t)", expected: "instruction limit"),
        Escape(name: "catastrophic pattern", code: #"return string.find(string.rep("a", 5000), ".-.-.-.-b")"#, expected: "pattern too complex"),
        Escape(name: "yield from the handler itself", code: "coroutine.yield(1)", expected: "outside a coroutine"),
    ]

    @Test("escape attempts fail clearly, and the pool serves the next call", arguments: escapes)
    func escapeFails(_ escape: Escape) async throws {
        let pool = try makePool("if ... == 'ok' then return 'still serving' end\n" + escape.code)
        // The instruction and memory limits must stop each escape, not the clock: a handler paused
        // after its time slice waits for its turn behind every other test's work on the
        // cooperative pool, and in a loaded CI run (2026-12-01) all five escapes that loop until
        // the instruction limit passed 20 s of wall time first. The timeout is only the backstop
        // should a limit not hold.
        let error = try await failure("", in: pool, limits: LuaLimits(instructions: 20_000_000, timeout: .seconds(300)))
        #expect(error.message.contains(escape.expected), "\(escape.name): \(error.message)")
        #expect(error.file == "handlers/main.lua" || escape.name == "yield from the handler itself", "\(escape.name): no location in \(error.message)")
        let next = try await pool.invoke("handlers/main.lua", ["ok"])
        #expect(next == ["still serving"])
    }

    @Test("the number of escape attempts covered")
    func coverage() {
        #expect(Self.escapes.count >= 15)
    }

    @Test("string.rep of empty strings returns at once instead of spinning")
    func emptyRep() async throws {
        #expect(try await run(#"return #string.rep("", 1 << 62), #string.rep("", 1 << 62, "")"#) == [0, 0])
    }

    @Test("allowed libraries work as in Lua")
    func allowedLibraries() async throws {
        let values = try await run("""
            local t = {}
            for word in ("a b c"):gmatch("%a") do table.insert(t, word:upper()) end
            return table.concat(t, ","), math.max(3, 7), utf8.char(72, 105), type(os.time()), os.date("!%Y", 0),
                select("#", 1, 2, 3), tostring(nil), string.format("%5.2f", 3.14159)
            """)
        #expect(values == ["A,B,C", 7, "Hi", "number", "1970", 3, "nil", " 3.14"])
    }

    @Test("library tables can be iterated and read, not written")
    func readOnlyLibrariesIterate() async throws {
        let values = try await run("""
            local names = {}
            for name in pairs(math) do names[#names + 1] = name end
            local count = 0
            for _ in pairs(_G) do count = count + 1 end
            return #names > 20, count > 20, rawget(string, "upper") == nil, getmetatable(string)
            """)
        #expect(values == [true, true, true, "read-only"])
    }

    @Test("print goes to the host's log")
    func printGoesToLog() async throws {
        _ = try await run(#"print("hello", 42, nil, true)"#)
        #expect(TestHost.printed.withLock { $0.contains("hello\t42\tnil\ttrue") })
    }

    @Test("require loads the app's modules once per VM and detects cycles")
    func requireModules() async throws {
        let pool = try makePool(
            """
            local util = require("lib.util")
            util.calls = util.calls + 1
            if ... == "cycle" then return require("lib.a") end
            return util.double(21), util.calls
            """,
            modules: [
                "lib/util.lua": "local M = { calls = 0 } function M.double(x) return x * 2 end return M",
                "lib/a.lua": "return require('lib.b')",
                "lib/b.lua": "return require('lib.a')",
            ]
        )
        #expect(try await pool.invoke("handlers/main.lua") == [42, 1])
        #expect(try await pool.invoke("handlers/main.lua") == [42, 2])
        do {
            _ = try await pool.invoke("handlers/main.lua", ["cycle"])
            Issue.record("a circular require must fail")
        } catch {
            #expect(error.message.contains("circular require"))
        }
    }
}
