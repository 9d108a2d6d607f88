import LuaBridge
import Testing

@Suite("VM pool")
struct PoolTests {
    @Test("1,000 concurrent invocations on one pool all complete")
    func thousandConcurrent() async throws {
        let pool = try makePool("local n = ... local a = test.wait(n, 2) return a + test.wait(1)", configuration: LuaPoolConfiguration(size: 2))
        let sum = try await withThrowingTaskGroup(of: Int64.self) { group in
            for index in 0..<1000 {
                // (A minute's limit: on a machine busy with other suites 1,000 waits can take longer than 10 s.)
                group.addTask { try await pool.invoke("handlers/main.lua", [.integer(Int64(index))], limits: LuaLimits(timeout: .seconds(60))).first?.integerValue ?? -1 }
            }
            var total: Int64 = 0
            for try await value in group { total += value }
            return total
        }
        #expect(sum == (0..<1000).reduce(0) { $0 + Int64($1) + 1 })
        let statistics = await pool.statistics()
        #expect(statistics.invocations == 1000)
        #expect(statistics.failures == 0)
        #expect(statistics.vmsCreated == 2)
    }

    @Test("a VM is replaced after maxUsesPerVM invocations; module state starts over")
    func retiredAfterUses() async throws {
        let pool = try makePool(
            "local state = require('lib.state') state.n = state.n + 1 return state.n",
            modules: ["lib/state.lua": "return { n = 0 }"],
            configuration: LuaPoolConfiguration(size: 1, maxUsesPerVM: 3)
        )
        var seen: [LuaValue] = []
        for _ in 0..<7 { seen += try await pool.invoke("handlers/main.lua") }
        #expect(seen == [1, 2, 3, 1, 2, 3, 1])
        let statistics = await pool.statistics()
        #expect(statistics.vmsCreated == 3)
        #expect(statistics.vmsRetired == 2)
    }

    @Test("a VM is replaced after a limit breach")
    func retiredAfterBreach() async throws {
        let pool = try makePool("if ... then while true do end end return 'fine'")
        _ = try await failure("", in: pool, [true], limits: LuaLimits(instructions: 100_000))
        #expect(try await pool.invoke("handlers/main.lua", [.boolean(false)]) == ["fine"])
        let statistics = await pool.statistics()
        #expect(statistics.vmsRetired == 1)
        #expect(statistics.vmsCreated == 2)
    }

    @Test("compile errors are all listed with file and line")
    func compileErrors() throws {
        do {
            _ = try LuaProgram(
                files: ["handlers/a.lua": "return function() end end", "lib/b.lua": "local x = = 1", "lib/ok.lua": "return {}"],
                handlers: ["handlers/a.lua", "handlers/missing.lua"]
            )
            Issue.record("expected errors")
        } catch {
            let messages = error.errors.map(\.message)
            #expect(messages.count == 3)
            #expect(messages.contains { $0.hasPrefix("handlers/a.lua:1:") })
            #expect(messages.contains { $0.hasPrefix("lib/b.lua:1:") })
            #expect(messages.contains { $0.contains("handlers/missing.lua") })
            #expect(error.errors.first { $0.file == "lib/b.lua" }?.line == 1)
        }
    }

    @Test("binary chunks cannot be deployed")
    func binaryChunkRefused() throws {
        #expect(throws: LuaError.self) { try LuaChunk(path: "x.lua", source: "\u{1B}Lua\u{54}\0\u{19}") }
    }

    @Test("a handler file must return a function, and top-level errors surface in prepare()")
    func prepareReportsTopLevel() async throws {
        let notFunction = LuaPool(program: try LuaProgram(files: ["h.lua": "return 42"], handlers: ["h.lua"]))
        await #expect(throws: LuaError.self) { try await notFunction.prepare() }
        let failing = LuaPool(program: try LuaProgram(files: ["h.lua": "error('broken at load')"], handlers: ["h.lua"]))
        do {
            try await failing.prepare()
            Issue.record("expected a failure")
        } catch {
            #expect(error.message == "h.lua:1: broken at load")
            #expect(error.traceback?.contains("stack traceback") == true)
        }
    }

    @Test("errors carry file:line and a traceback through nested functions")
    func tracebacks() async throws {
        let pool = try makePool(
            "local helpers = require('lib.helpers')\nlocal v = helpers.outer()\nreturn v",
            modules: ["lib/helpers.lua": "local M = {}\nlocal function inner()\n  local t = nil\n  return t.field\nend\nfunction M.outer()\n  local v = inner()\n  return v\nend\nreturn M\n"]
        )
        let error = try await failure("", in: pool)
        #expect(error.file == "lib/helpers.lua")
        #expect(error.line == 4)
        #expect(error.message.hasPrefix("lib/helpers.lua:4: attempt to index a nil value"))
        let traceback = try #require(error.traceback)
        #expect(traceback.contains("lib/helpers.lua:4: in"))
        #expect(traceback.contains("lib/helpers.lua:7: in"))
        #expect(traceback.contains("handlers/main.lua:3: in"))
    }

    @Test("a table error value is kept for the host")
    func tableErrors() async throws {
        let error = try await failure("error({status = 404, message = 'no such item'})")
        #expect(error.value == ["status": 404, "message": "no such item"])
        #expect(error.message == #"error: {"message":"no such item","status":404}"#)
    }

    @Test("an unknown handler is reported")
    func unknownHandler() async throws {
        let pool = try makePool("return 1")
        await #expect(throws: LuaError.self) { try await pool.invoke("handlers/other.lua") }
    }
}
