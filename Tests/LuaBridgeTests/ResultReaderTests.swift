import Dispatch
import LuaBridge
import Synchronization
import Testing

/// Records what a reader sees of a handler's first result, and takes the results or not.
private final class Recorder: LuaResultReader, @unchecked Sendable {
    let takes: Bool
    let names: [StaticString]
    /// Written in `read`, on the worker's queue, before the completion runs there.
    var json: [UInt8]?
    var converted: Result<LuaValue, LuaConversionError>?
    var kind: LuaResults.Kind?
    var fields: [LuaValue]?
    var count = -1

    init(takes: Bool, names: [StaticString] = []) {
        self.takes = takes
        self.names = names
    }

    func read(_ results: LuaResults) -> Bool {
        count = results.count
        kind = results.kind(0)
        json = results.json(0)
        converted = Result(catching: { () throws(LuaConversionError) -> LuaValue in try results.value(0) })
        if !names.isEmpty, let parts = results.fields(of: 0, named: names) {
            fields = (0..<parts.count).map { (try? parts.value($0)) ?? .string("unconvertible") }
        }
        return takes
    }
}

/// Runs `body` on a confined worker with `reader`.
private func read(_ body: String, with reader: Recorder) async throws -> Result<[LuaValue], LuaError> {
    // A smaller budget of copied values than the default, for the shared tables below.
    let pool = try makePool(body, configuration: LuaPoolConfiguration(size: 1, maxCopiedValues: 100_000))
    let queue = DispatchQueue(label: "result-reader-test")
    let worker = pool.confinedWorker(for: ObjectIdentifier(queue), schedule: { queue.async(execute: $0) })
    return await withCheckedContinuation { continuation in
        queue.async {
            worker.invoke("handlers/main.lua", arguments: LuaArguments([]), context: nil, results: reader) { continuation.resume(returning: $0) }
        }
    }
}

/// What the usual way makes of the value: its conversion, encoded (nil when either fails).
private func expectedJSON(_ recorder: Recorder) -> [UInt8]? {
    guard case .success(let value)? = recorder.converted else { return nil }
    return try? LuaJSON.encode(value)
}

@Suite("Reading a handler's results off its stack")
struct ResultReaderTests {
    @Test("JSON written off the stack is LuaJSON's text of the converted value", arguments: [
        "nil", "true", "false", "0", "-7", "9007199254740993", "math.maxinteger", "math.mininteger", "1.5", "-0.0", "1e300", "0.1",
        "'plain'", "''", "'quote \" back \\\\ slash'", "'\\n\\r\\t\\b\\f\\0\\31 controls'", "'ünïcödé ✓ 𝄞'", "json.null",
        "{}", "json.array({})", "json.array({1, 2})", "{1, 2, 3}", "{'a', {'b', {'c'}}}", "{x = 1}", "{b = 1, a = 2, c = {z = true, y = false}}",
        "{[1] = 'a', [3] = 'c'}", "{[0] = 'zero'}", "{[-1] = 'minus'}", "{[1.5] = 'float key', x = 1}", "{1, 2, x = 3}",
        "{['a b'] = 1, ['a'] = 2, ['ab'] = 3, ['B'] = 4}", "{list = {}, map = {k = {}}, arr = json.array({})}", "{n = 2^53, f = 1/3}",
        "{['\"'] = '\\\\', ['\\n'] = 'nl'}", "{hello = 'world'}", "{[10] = 1, [2] = 2}",
        "{'only'}", "{[2] = 'two'}", "{[2.5] = 'float'}", "{['\\t'] = {['']= {}}}",
        "(function() local t = {1} for i = 1, 6 do t = {a = t, b = t} end return t end)()",
    ])
    func sameText(_ expression: String) async throws {
        let recorder = Recorder(takes: true)
        _ = try await read("return \(expression)", with: recorder)
        let expected = try #require(expectedJSON(recorder), "the usual way encodes it")
        let written = try #require(recorder.json, "written off the stack")
        #expect(String(decoding: written, as: UTF8.self) == String(decoding: expected, as: UTF8.self))
    }

    @Test("values the usual way rejects, and keys it would order or merge differently, are left to it", arguments: [
        "0/0", "1/0", "-1/0", "{x = 0/0}", "string.len", "{f = string.len}", "'\\255 invalid'", "{['\\255'] = 1}", "coroutine.running()",
        "{['ü'] = 1}", "{[1] = 'int', ['1'] = 'text', x = 0}", "{[1.5] = 'float', ['1.5'] = 'text'}",
        "(function() local t = {} t.self = t return t end)()", "(function() local t = {} for i = 1, 200 do t = {t} end return t end)()",
        // Walked down to the depth limit along every path, these would never end.
        "(function() local t = {} t.a = t t.b = t t.c = t return t end)()", "(function() local t = {} t[1] = t t[2] = t return {x = {t}} end)()",
        // Not a cycle, but 2^40 copies of a shared table: left once the text passes 4 MiB.
        "(function() local t = {} for i = 1, 40 do t = {a = t, b = t} end return t end)()",
    ])
    func declines(_ expression: String) async throws {
        let recorder = Recorder(takes: true)
        _ = try await read("return \(expression)", with: recorder)
        #expect(recorder.json == nil)
    }

    @Test("up to 10,000 tables are written off the stack; more are left to the usual way")
    func tableBudget() async throws {
        for (count, written) in [(9_999, true), (10_000, false)] {
            let recorder = Recorder(takes: true)
            _ = try await read("local t = {} for i = 1, \(count) do t[i] = {} end return t", with: recorder)
            #expect((recorder.json != nil) == written, "\(count) tables in a list")
            let expected = try #require(expectedJSON(recorder))
            if let json = recorder.json { #expect(json == expected) }
        }
    }

    @Test("random tables: whatever is written off the stack is what the usual way writes (2,000 tables)")
    func randomTables() async throws {
        var generator = TableSource(seed: 0x5eed)
        var written = 0
        for round in 0..<2_000 {
            let expression = generator.table(depth: 0)
            let recorder = Recorder(takes: true)
            _ = try await read("return \(expression)", with: recorder)
            let expected = expectedJSON(recorder)
            if let json = recorder.json {
                written += 1
                #expect(json == expected, "round \(round): \(expression)")
            }
        }
        // Most random tables have plain keys: the point is that they are written, not declined.
        #expect(written > 1_500)
    }

    @Test("a reader that takes the results finishes the invocation with none; one that declines gets them converted as usual")
    func takesOrLeaves() async throws {
        let body = "return { status = 201, json = { ok = true } }, 'second'"
        let taken = try await read(body, with: Recorder(takes: true, names: ["status", "json"]))
        #expect(try taken.get() == [])
        let recorder = Recorder(takes: false, names: ["status", "json"])
        let left = try await read(body, with: recorder)
        #expect(try left.get() == [["status": 201, "json": ["ok": true]], "second"])
        #expect(recorder.count == 2)
        #expect(recorder.kind == .table)
        #expect(recorder.fields == [201, ["ok": true]], "the named fields, read before the values were converted")
    }

    @Test("fields(of:named:) reads only tables whose keys are all among the names")
    func namedFields() async throws {
        let names: [StaticString] = ["status", "headers", "json", "body"]
        let cases: [(String, [LuaValue]?)] = [
            ("{ json = { a = 1 } }", [.nil, .nil, ["a": 1], .nil]),
            ("{ body = 'x', status = 404, headers = { A = 'b' } }", [404, ["A": "b"], .nil, "x"]),
            ("{ json = json.null }", [.nil, .nil, .null, .nil]),
            ("{}", nil),
            ("{ json = 1, other = 2 }", nil),
            ("{ 'json' }", nil),
            ("{ [1] = 1, json = 2 }", nil),
            ("'json'", nil),
        ]
        for (expression, expected) in cases {
            let recorder = Recorder(takes: true, names: names)
            _ = try await read("return \(expression)", with: recorder)
            #expect(recorder.fields == expected, "\(expression)")
        }
    }
}

/// Lua table constructors with all kinds of keys and values, from a seeded generator.
private struct TableSource {
    var random: SplitMix64
    init(seed: UInt64) { random = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { random.next() }

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    mutating func pick(_ choices: [String]) -> String { choices[below(choices.count)] }

    mutating func key() -> String {
        switch below(6) {
        case 0: "[\(below(6))]"
        case 1: "[\(below(3) - 1)]"
        case 2: "[2.5]"
        default: "[\(scalar(strings: true))]"
        }
    }

    mutating func scalar(strings: Bool = false) -> String {
        let texts = ["'a'", "'b'", "'ab'", "'B'", "'_x'", "'a b'", "'\\\"q'", "'\\\\'", "'\\n'", "'\\1'", "'10'", "'2'", "''", "'z9'"]
        if strings { return pick(texts) }
        switch below(7) {
        case 0: return String(Int64(bitPattern: next()) >> Int64(below(64)))
        case 1: return pick(["0.5", "-2.25", "1e-7", "123456.789", "2^63", "-0.0"])
        case 2: return pick(["true", "false", "json.null"])
        case 3: return pick(["'ü'", "'✓ ok'", "'\\u{10FFFF}'"])
        default: return pick(texts)
        }
    }

    mutating func table(depth: Int) -> String {
        if below(5) == 0 { return pick(["{}", "json.array({})"]) }
        var items: [String] = []
        let sequence = below(3) == 0
        for index in 0..<below(6) + 1 {
            let value = depth < 3 && below(4) == 0 ? table(depth: depth + 1) : scalar()
            items.append(sequence ? value : "\(index % 2 == 0 ? key() : key()) = \(value)")
        }
        return "{" + items.joined(separator: ", ") + "}"
    }
}
