// Micro-benchmarks of the Lua runtime, each against a baseline measured in the same process:
// plain Lua 5.4 through its C API, without PiCloud's sandbox, limits or Swift scheduling.
//
//   swift run -c release lua-bench [--quick]
//
// Prints a table and writes bench/results/lua-micro-<date>.csv and .md.
import CLua
import Foundation
import LuaBridge

let quick = CommandLine.arguments.contains("--quick")
let scale = quick ? 10 : 1

struct Row {
    let name: String
    let unit: String
    let picloud: Double
    let baseline: Double
    let baselineName: String
    var ratio: Double { picloud / baseline }
}

/// Median of several runs of `body`, in nanoseconds per operation.
func measure(runs: Int = 5, operations: Int, _ body: () async throws -> Void) async rethrows -> Double {
    var samples: [Double] = []
    let clock = ContinuousClock()
    for _ in 0..<runs {
        let elapsed = try await clock.measure { try await body() }
        let (seconds, attoseconds) = elapsed.components
        samples.append((Double(seconds) * 1e9 + Double(attoseconds) / 1e9) / Double(operations))
    }
    return samples.sorted()[samples.count / 2]
}

/// A plain Lua state with the standard libraries and no hook: the baseline.
final class PlainLua {
    let state: OpaquePointer = luaL_newstate()
    init() { luaL_openlibs(state) }
    deinit { lua_close(state) }

    /// Runs `source` as a chunk returning a function, keeps the function, returns a runner.
    func function(_ source: String) -> () -> Void {
        luaL_loadstring(state, source)
        lua_pcallk(state, 0, 1, 0, 0, nil)
        let reference = luaL_ref(state, LUA_REGISTRYINDEX_VALUE)
        return { [state] in
            lua_rawgeti(state, LUA_REGISTRYINDEX_VALUE, lua_Integer(reference))
            lua_pcallk(state, 0, 0, 0, 0, nil)
        }
    }
}

let LUA_REGISTRYINDEX_VALUE: Int32 = -1_000_000 - 1000

let benchLibrary = LuaLibrary(name: "bench", functions: [
    "noop": { _ in .none },
    "wait": { _ in .suspend { .none } },
])

func pool(_ handlers: [String: String], size: Int = 1, maxUses: Int = 1_000_000_000) throws -> LuaPool {
    let program = try LuaProgram(files: handlers, handlers: Array(handlers.keys))
    return LuaPool(
        program: program,
        environment: LuaEnvironment(libraries: [benchLibrary]),
        configuration: LuaPoolConfiguration(size: size, maxUsesPerVM: maxUses, limits: LuaLimits(instructions: .max, timeout: .seconds(600)))
    )
}

/// Runs every benchmark off the main actor (a hop to the main thread per await would dominate).
@concurrent
func runBenchmarks() async throws -> [Row] {
    var rows: [Row] = []
    let plain = PlainLua()

        // 1. Lua → Swift host call, against Lua → C function call.
        do {
            let n = 2_000_000 / scale
            let subject = try pool(["h.lua": "return function(n) local f = bench.noop for i = 1, n do f() end end"])
            try await subject.prepare()
            let picloud = try await measure(operations: n) { _ = try await subject.invoke("h.lua", [.integer(Int64(n))]) }
            let baselineRun = plain.function("return function() local f = rawequal for i = 1, \(n) do f(1, 1) end end")
            let baseline = await measure(operations: n) { baselineRun() }
            rows.append(Row(name: "host call (Lua → Swift)", unit: "ns/call", picloud: picloud, baseline: baseline, baselineName: "Lua → C function, plain Lua"))
        }

        // 2. Swift → Lua handler call through the pool, against lua_pcall of a Lua function.
        do {
            let n = 200_000 / scale
            let subject = try pool(["h.lua": "return function(x) return x end"])
            try await subject.prepare()
            let picloud = try await measure(operations: n) {
                for _ in 0..<n { _ = try await subject.invoke("h.lua", [1]) }
            }
            let baselineRun = plain.function("return function() return 1 end")
            let baseline = await measure(operations: n) { for _ in 0..<n { baselineRun() } }
            rows.append(Row(name: "handler call (Swift → Lua, via the pool)", unit: "ns/call", picloud: picloud, baseline: baseline, baselineName: "lua_pcall, plain Lua"))
        }

        // 3. A host call that suspends the coroutine and resumes it, against a Lua coroutine round trip.
        do {
            let n = 200_000 / scale
            let subject = try pool(["h.lua": "return function(n) local w = bench.wait for i = 1, n do w() end end"])
            try await subject.prepare()
            let picloud = try await measure(operations: n) { _ = try await subject.invoke("h.lua", [.integer(Int64(n))]) }
            let baselineRun = plain.function("""
                return function()
                  local co = coroutine.wrap(function() while true do coroutine.yield() end end)
                  for i = 1, \(n) do co() end
                end
                """)
            let baseline = await measure(operations: n) { baselineRun() }
            rows.append(Row(name: "suspend/resume round trip (host call awaits)", unit: "ns/round trip", picloud: picloud, baseline: baseline, baselineName: "coroutine.yield/resume, plain Lua"))
        }

        // 4. VM creation: sandbox, libraries, bytecode loading and running the handler file.
        do {
            let n = 2000 / scale
            let files = [
                "h.lua": "local util = require('lib.util') return function(x) return util.double(x) end",
                "lib/util.lua": "local M = {} function M.double(x) return x * 2 end return M",
            ]
            let program = try LuaProgram(files: files, handlers: ["h.lua"])
            let environment = LuaEnvironment(libraries: [benchLibrary])
            let picloud = try await measure(operations: n) {
                for _ in 0..<n {
                    try await LuaPool(program: program, environment: environment, configuration: LuaPoolConfiguration(size: 1)).prepare()
                }
            }
            let baseline = await measure(operations: n) {
                for _ in 0..<n {
                    let state = luaL_newstate()
                    luaL_openlibs(state)
                    lua_close(state)
                }
            }
            rows.append(Row(name: "VM creation", unit: "ns/VM", picloud: picloud, baseline: baseline, baselineName: "luaL_newstate + luaL_openlibs + lua_close"))
        }

        // 5. Pure Lua code under the count hook (instruction budget and deadline), against no hook.
        do {
            let n = 20_000_000 / scale
            let loop = "local s = 0 for i = 1, n do s = s + i % 7 end return s"
            let subject = try pool(["h.lua": "return function(n) \(loop) end"])
            try await subject.prepare()
            let picloud = try await measure(operations: n) { _ = try await subject.invoke("h.lua", [.integer(Int64(n))]) }
            let baselineRun = plain.function("return function() local n = \(n) \(loop) end")
            let baseline = await measure(operations: n) { baselineRun() }
            rows.append(Row(name: "Lua arithmetic loop (count hook on)", unit: "ns/iteration", picloud: picloud, baseline: baseline, baselineName: "same loop, plain Lua, no hook"))
        }

        // 6. Decoding JSON into Lua values (kv.get, docs.get, a trigger's event, a request's
        // body), against Foundation's parser on the same bytes.
        do {
            let n = 200_000 / scale
            let event = Array(#"{"kind":"kv","op":"set","key":"t:r10000:1","value":{"name":"Ada Lovelace","tags":["a","b"],"n":1}}"#.utf8)
            let picloud = try await measure(operations: n) {
                for _ in 0..<n { _ = try LuaJSON.decode(event) }
            }
            let data = Data(event)
            let baseline = try await measure(operations: n) {
                for _ in 0..<n { _ = try JSONSerialization.jsonObject(with: data) }
            }
            rows.append(Row(name: "JSON decode (a kv trigger's event)", unit: "ns/decode", picloud: picloud, baseline: baseline, baselineName: "Foundation JSONSerialization"))
        }

    return rows
}

let rows = try await Task.detached { try await runBenchmarks() }.value

// Report.
func format(_ value: Double) -> String { value >= 100 ? String(format: "%.0f", value) : String(format: "%.1f", value) }

let date = ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withFullDate])
var markdown = "# Lua runtime micro-benchmarks (\(date))\n\n"
markdown += "`swift run -c release lua-bench\(quick ? " --quick" : "")` on \(ProcessInfo.processInfo.activeProcessorCount) cores. Median of 5 runs. Ratio = PiCloud / baseline (lower is better).\n\n"
markdown += "| benchmark | PiCloud | baseline | ratio | baseline is |\n|---|---|---|---|---|\n"
var csv = "name,unit,picloud,baseline,ratio,baseline_name\n"
for row in rows {
    markdown += "| \(row.name) | \(format(row.picloud)) \(row.unit) | \(format(row.baseline)) \(row.unit) | \(String(format: "%.2f", row.ratio)) | \(row.baselineName) |\n"
    csv += "\"\(row.name)\",\(row.unit),\(format(row.picloud)),\(format(row.baseline)),\(String(format: "%.3f", row.ratio)),\"\(row.baselineName)\"\n"
}
print(markdown)

let results = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("results")
try FileManager.default.createDirectory(at: results, withIntermediateDirectories: true)
try csv.write(to: results.appendingPathComponent("lua-micro-\(date).csv"), atomically: true, encoding: .utf8)
try markdown.write(to: results.appendingPathComponent("lua-micro-\(date).md"), atomically: true, encoding: .utf8)
print("wrote \(results.path)/lua-micro-\(date).{csv,md}")
