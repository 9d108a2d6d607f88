import LuaBridge
import Testing

@Suite("Values between Lua and Swift")
struct ValueTests {
    static let samples: [LuaValue] = [
        .nil, .null, true, false, 0, -1, .integer(.max), .integer(.min), 1.5, 1.0, -0.25, 1e300,
        "", "hello", "ünïcødé ✓ 🎉", .bytes([0xFF, 0x00, 0xFE]), .string("with\0nul"),
        [], [1, 2, 3], ["a", ["b", ["c"]]], [:], ["name": "x", "n": 1, "nested": ["ok": true, "list": [1.5, .null]]],
    ]

    @Test("values survive Swift → Lua → Swift unchanged", arguments: samples)
    func roundTrip(_ value: LuaValue) async throws {
        let values = try await run("return ...", [value])
        #expect(values == [value])
    }

    @Test("integers and floats stay apart inside Lua")
    func integerFloat() async throws {
        let values = try await run("local a, b = ... return math.type(a), math.type(b), a == b", [1, 1.0])
        #expect(values == ["integer", "float", true])
    }

    @Test("tables become arrays or objects")
    func tableShapes() async throws {
        let values = try await run("""
            return {1, 2, 3}, {}, json.array({}), {[1] = "a", [3] = "c"}, {x = 1, [2] = "two"}, {[1.5] = "f"}
            """)
        #expect(values == [
            [1, 2, 3], [:], [], ["1": "a", "3": "c"], ["x": 1, "2": "two"], ["1.5": "f"],
        ])
    }

    @Test("json.null and nil are different values")
    func nullSentinel() async throws {
        let values = try await run("local t = {a = json.null, b = nil} return t, json.null == nil, type(json.null)")
        #expect(values == [["a": .null], false, "userdata"])
    }

    @Test("values that cannot leave Lua are refused with where they are")
    func refusedValues() async throws {
        let cases: [(String, String)] = [
            ("return print", "cannot convert a function value"),
            ("return {ok = {handler = print}}", "(at .ok.handler)"),
            ("return {coroutine.create(print)}", "cannot convert a thread value (at [1])"),
            ("local t = {} t.self = t return t", "cycle"),
            ("return {[true] = 1}", "boolean key"),
            ("local t = {} local c = t for i = 1, 200 do c.next = {} c = c.next end return t", "nested deeper than 128"),
        ]
        for (code, expected) in cases {
            let error = try await failure(code)
            #expect(error.code == .conversion)
            #expect(error.message.contains(expected), "\(code): \(error.message)")
        }
    }

    @Test("a table shared twice (not a cycle) converts")
    func sharedTable() async throws {
        let values = try await run("local s = {1} return {a = s, b = s}")
        #expect(values == [["a": [1], "b": [1]]])
    }

    @Test("tables shared by many fields are copied for each, up to the pool's budget of copied values")
    func sharedTablesBudget() async throws {
        let configuration = LuaPoolConfiguration(size: 1, maxCopiedValues: 5_000)
        // Ten levels, each referring twice to the next: 2^10 copies of the innermost table.
        let values = try await run("local t = {1} for i = 1, 10 do t = {a = t, b = t} end return t", configuration: configuration)
        var expected: LuaValue = [1]
        for _ in 0..<10 { expected = .object(["a": expected, "b": expected]) }
        #expect(values == [expected])
        // Forty levels would be 2^40 values: refused (before the budget, this never returned).
        let deep = "local t = {} for i = 1, 40 do t = {a = t, b = t} end"
        let pool = try makePool("\(deep) return t", configuration: configuration)
        let error = try await failure("", in: pool)
        #expect(error.code == .conversion)
        #expect(error.message.contains("more than 5000 values"), "\(error.message)")
        // The same walk reads host functions' arguments.
        let encode = try await failure("", in: try makePool("\(deep) return json.encode(t)", configuration: configuration))
        #expect(encode.message.contains("more than 5000 values"), "\(encode.message)")
        #expect(LuaPoolConfiguration().maxCopiedValues == 1_000_000)
    }

    @Test("a large table reached once is not limited by the copy budget")
    func largeUnsharedTable() async throws {
        // Thirty times the budget (a small one: a million values took seconds in a debug build,
        // which under a busy test run ran past the time limit).
        let configuration = LuaPoolConfiguration(size: 1, maxCopiedValues: 5_000)
        let values = try await run("local t = {} for i = 1, 150000 do t[i] = i end return t", configuration: configuration)
        guard case .array(let items) = try #require(values.first) else {
            Issue.record("not an array: \(values)")
            return
        }
        #expect(items.count == 150_000)
        #expect(items.last == .integer(150_000))
    }

    @Test("random values round-trip through Lua and through JSON", arguments: 0..<8)
    func propertyRoundTrip(seed: UInt64) async throws {
        var generator = SplitMix64(seed: seed)
        let pool = try makePool("return ...")
        for _ in 0..<50 {
            let value = LuaValue.random(using: &generator, depth: 0, jsonSafe: false)
            #expect(try await pool.invoke("handlers/main.lua", [value]) == [value])
            let jsonValue = LuaValue.random(using: &generator, depth: 0, jsonSafe: true)
            #expect(try LuaJSON.decode(LuaJSON.encode(jsonValue)) == jsonValue)
            #expect(try LuaJSON.decode(LuaJSON.encode(jsonValue, pretty: true)) == jsonValue)
        }
    }

    @Test("mutated and random bytes never crash the JSON decoder; what it accepts re-encodes to the same value", arguments: 0..<4)
    func decoderFuzz(seed: UInt64) throws {
        var generator = SplitMix64(seed: seed + 100)
        var accepted = 0
        for round in 0..<2500 {
            var bytes: [UInt8]
            if round % 5 == 0 {
                bytes = (0..<Int.random(in: 0..<64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            } else {
                // A valid document with a few bytes changed, inserted or removed.
                bytes = try LuaJSON.encode(LuaValue.random(using: &generator, depth: 0, jsonSafe: true))
                for _ in 0..<Int.random(in: 1...3, using: &generator) where !bytes.isEmpty {
                    let at = Int.random(in: 0..<bytes.count, using: &generator)
                    let byte = [UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "{"), UInt8(ascii: "]"), UInt8(ascii: "-"), UInt8(ascii: "e"), 0x00, 0xC3, 0xFF, UInt8.random(in: 0...255, using: &generator)]
                        .randomElement(using: &generator)!
                    switch Int.random(in: 0..<3, using: &generator) {
                    case 0: bytes[at] = byte
                    case 1: bytes.insert(byte, at: at)
                    default: bytes.remove(at: at)
                    }
                }
            }
            guard let value = try? LuaJSON.decode(bytes) else { continue }
            accepted += 1
            #expect(try LuaJSON.decode(LuaJSON.encode(value)) == value, "\(bytes)")
        }
        #expect(accepted > 100, "the mutations left some documents valid")
    }

    @Test("bytes are a string exactly when they are valid UTF-8, contiguous or not", arguments: 0..<4)
    func utf8(seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        let samples: [[UInt8]] = [[], Array("hello".utf8), Array("ünïcødé ✓ 🎉".utf8), [0xFF], [0xEF, 0xBF, 0xBD], [0xC3], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x00]]
            + (0..<200).map { _ in (0..<Int.random(in: 0..<12, using: &generator)).map { _ in UInt8.random(in: 0x70...0xF5, using: &generator) } }
        for bytes in samples {
            let expected: LuaValue = String(validating: bytes, as: UTF8.self).map(LuaValue.string) ?? .bytes(bytes)
            #expect(LuaValue(bytes: bytes) == expected, "\(bytes)")
            #expect(LuaValue(bytes: bytes.lazy.map { $0 }) == expected, "\(bytes), not contiguous")
        }
    }

    @Test("json.encode and json.decode inside Lua")
    func jsonInLua() async throws {
        let values = try await run("""
            local text = json.encode({b = {1, 2.5, "x"}, a = json.null, e = json.array()})
            local back = json.decode('{"n": 1, "f": 1.0, "list": [], "s": "\\\\u00e9\\\\ud83c\\\\udf89"}')
            return text, math.type(back.n), math.type(back.f), json.encode(back.list), back.s
            """)
        #expect(values == [#"{"a":null,"b":[1,2.5,"x"],"e":[]}"#, "integer", "float", "[]", "é🎉"])
        let error = try await failure(#"return json.decode("{bad")"#)
        #expect(error.message.contains("json.decode: invalid JSON"))
        #expect(error.line == 2)
    }
}

/// A small seeded generator so property tests repeat.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension LuaValue {
    /// A random value; arrays are never empty-vs-object ambiguous because empty arrays keep their
    /// marker through Lua, and objects never have integer-like keys (those become arrays).
    static func random(using generator: inout SplitMix64, depth: Int, jsonSafe: Bool) -> LuaValue {
        let scalarKinds = 7
        var kind = depth >= 4 ? Int.random(in: 0..<scalarKinds, using: &generator) : Int.random(in: 0..<(scalarKinds + 2), using: &generator)
        if jsonSafe && kind == 6 { kind = 4 }
        switch kind {
        case 0: return .null
        case 1: return .boolean(Bool.random(using: &generator))
        case 2: return .integer(Int64.random(in: .min ... .max, using: &generator))
        case 3:
            let value = Double.random(in: -1e12...1e12, using: &generator)
            return .number(Bool.random(using: &generator) ? value : value.rounded())
        case 4: return .string(randomText(using: &generator))
        case 5: return .string(String(repeating: "\u{1F600}\\\"\n\t", count: Int.random(in: 0...3, using: &generator)))
        case 6: return .bytes([0xC3, 0x28] + (0..<Int.random(in: 0...4, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        case scalarKinds:
            return .array((0..<Int.random(in: 0...4, using: &generator)).map { _ in random(using: &generator, depth: depth + 1, jsonSafe: jsonSafe) })
        default:
            var fields: [String: LuaValue] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &generator) {
                fields["k" + randomText(using: &generator)] = random(using: &generator, depth: depth + 1, jsonSafe: jsonSafe)
            }
            return .object(fields)
        }
    }

    static func randomText(using generator: inout SplitMix64) -> String {
        let alphabet = Array("abcxyz019 _-é€🎉\"\\/\u{7}")
        return String((0..<Int.random(in: 0...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
    }
}
