import LuaBridge
import Synchronization
import Testing

/// Arguments written straight onto a handler's stack, field names from the VM's cache of names.
@Suite("Handler arguments written onto the stack")
struct ArgumentWriterTests {
    /// More literal names than the cache has slots (64), so some are pushed uncached.
    static let names: [StaticString] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11", "k12", "k13", "k14", "k15", "k16", "k17", "k18", "k19", "k20", "k21", "k22", "k23", "k24", "k25", "k26", "k27", "k28", "k29", "k30", "k31", "k32", "k33", "k34", "k35", "k36", "k37", "k38", "k39", "k40", "k41", "k42", "k43", "k44", "k45", "k46", "k47", "k48", "k49", "k50", "k51", "k52", "k53", "k54", "k55", "k56", "k57", "k58", "k59", "k60", "k61", "k62", "k63", "k64", "k65", "k66", "k67", "k68", "k69", "k70", "k71", "k72", "k73", "k74", "k75", "k76", "k77", "k78", "k79", "k80", "k81", "k82", "k83", "k84", "k85", "k86", "k87", "k88", "k89", "k90", "k91", "k92", "k93", "k94", "k95", "k96", "k97", "k98", "k99"]

    @Test("every field arrives under its name, cached or not, call after call")
    func cachedNames() async throws {
        let pool = try makePool("local t = ... local n = 0 for k, v in pairs(t) do assert(k == v, k) n = n + 1 end return n, t.k0, t.k99")
        for _ in 0..<3 {
            let arguments = LuaArguments(count: 1) { writer throws(LuaConversionError) in
                try writer.table(fields: Self.names.count) { () throws(LuaConversionError) in
                    for name in Self.names { try writer.field(name, string: name.description) }
                }
            }
            #expect(try await pool.invoke("handlers/main.lua", arguments: arguments) == [100, "k0", "k99"])
        }
    }

    @Test("names known only at run time, and values given as LuaValue")
    func otherFields() async throws {
        let pool = try makePool("local t = ... return t.dynamic, t.value.nested, t.bytes, t.tbl.x")
        let arguments = LuaArguments(count: 1) { writer throws(LuaConversionError) in
            try writer.table(fields: 4) { () throws(LuaConversionError) in
                try writer.field(named: "dyn" + "amic", string: "yes")
                try writer.field("value", ["nested": 7])
                try writer.field("bytes", bytes: [0x61, 0x62])
                try writer.field("tbl", tableOf: 1) { () throws(LuaConversionError) in try writer.field(named: "x", string: "in") }
            }
        }
        #expect(try await pool.invoke("handlers/main.lua", arguments: arguments) == ["yes", 7, "ab", "in"])
    }

    @Test("a writer may stop after the arguments the handler's function can receive", arguments: [
        ("function() return 'none' end", 0, ["none"]),
        ("function(a) return a end", 1, ["a"]),
        ("function(a, b) return a, b end", 2, ["a", "b"]),
        ("function(a, ...) return a, select('#', ...) end", Int.max, ["a", 2]),
        ("tostring", Int.max, ["a"]), // a C function takes `...`
    ] as [(String, Int, [LuaValue])])
    func accepted(_ function: String, _ accepted: Int, _ expected: [LuaValue]) async throws {
        let program = try LuaProgram(files: ["h.lua": "return \(function)"], handlers: ["h.lua"])
        let pool = LuaPool(program: program, environment: TestHost.environment, configuration: LuaPoolConfiguration(size: 1))
        let seen = Mutex<Int?>(nil)
        func arguments(writing count: @escaping @Sendable (Int) -> Int) -> LuaArguments {
            LuaArguments(count: 3) { writer throws(LuaConversionError) in
                seen.withLock { $0 = writer.accepted }
                for value in ["a", "b", "c"].prefix(count(writer.accepted)) { try writer.push(.string(value)) }
            }
        }
        #expect(try await pool.invoke("h.lua", arguments: arguments { min($0, 3) }) == expected)
        #expect(seen.withLock { $0 } == accepted)
        // Writing all of them is always right; fewer than the function receives is not.
        #expect(try await pool.invoke("h.lua", arguments: arguments { _ in 3 }) == expected)
        if accepted > 0 {
            await #expect(throws: LuaError.self) { try await pool.invoke("h.lua", arguments: arguments { min($0, 3) - 1 }) }
        }
    }
}

