import Foundation
import LuaBridge
import NIOHTTP1
import Testing

/// Hostile handlers deployed and called over HTTP like any app's: each is stopped with a clear
/// error (or, where Lua allows what it tries, does it harmlessly), the process keeps running, the
/// app's next request is served, and another app never notices.
@Suite("Hostile Lua")
struct HostileLuaTests {
    struct Script: Sendable, CustomTestStringConvertible {
        let name: String
        let code: String
        /// A substring of the error message, or of the body when `succeeds`.
        let expected: String
        var succeeds = false
        var testDescription: String { name }
    }

    static func fails(_ name: String, _ code: String, _ expected: String) -> Script { Script(name: name, code: code, expected: expected) }
    static func works(_ name: String, _ code: String, _ expected: String) -> Script { Script(name: name, code: code, expected: expected, succeeds: true) }

    static let corpus: [Script] = [
        // Resource bombs
        fails("string.rep bomb", "return #string.rep('x', 1 << 30)", "not enough memory|time limit"),
        fails("concatenation doubling", "local s = 'x' while true do s = s .. s end", "not enough memory|time limit"),
        fails("table growth", "local t = {} for i = 1, 1e9 do t[i] = i end", "not enough memory|time limit"),
        fails("closure bomb", "local t = {} for i = 1, 1e9 do t[i] = function() return i end end", "not enough memory|time limit"),
        fails("coroutine bomb", "local t = {} for i = 1, 1e9 do t[i] = coroutine.create(function() end) end", "not enough memory|time limit"),
        fails("gsub output bomb", "local s = string.rep('a', 4096) for i = 1, 20 do s = s:gsub('a', 'aa') end return #s", "not enough memory|instruction limit|time limit"),
        fails("string.format width", "return string.format('%99999999d', 1)", "invalid conversion"),
        fails("unpack of ten million", "return select('#', table.unpack({}, 1, 1e7))", "too many results"),
        fails("busy wait on os.clock", "local t = os.clock() while os.clock() - t < 60 do end", "instruction limit|time limit"),
        fails("deep recursion", "local function f(n) return 1 + f(n + 1) end return f(1)", "stack overflow|not enough memory"),
        fails("nested coroutines", "local function f(n) return coroutine.wrap(function() return f(n + 1) end)() end return f(1)", "stack overflow"),
        fails("recursion through __index", "local t = setmetatable({}, {}) getmetatable(t).__index = function(t, k) return t[k] end return t.x", "stack overflow"),
        fails("catastrophic pattern", "return string.find(string.rep('a', 5000), '.-.-.-.-b')", "pattern too complex|time limit"),
        fails("os.time out of range", "return os.time({ year = 1 << 40, month = 1, day = 1 })", "out-of-bound"),
        fails("os.date bad conversion", "return os.date('%Ez')", "invalid conversion"),
        fails("host calls until the deadline", "while true do kv.get('k') end", "instruction limit|time limit"),
        // Escapes
        fails("load is gone", "return load('return 1')()", "global 'load'"),
        fails("string.dump is gone", "return string.dump(function() end)", "field 'dump'"),
        fails("io is gone", "return io.open('/etc/passwd'):read('a')", "global 'io'"),
        fails("require a path outside the app", "return require('../../etc/passwd')", "not found"),
        fails("globals are read-only", "kv = nil", "globals are read-only"),
        fails("library tables are read-only", "kv.get = function() return 'fake' end", "read-only table 'kv'"),
        fails("__gc finalizers refused", "setmetatable({}, { __gc = function() kv.set('gc', 1) end })", "__gc metamethods are not allowed"),
        // Host calls at odd moments
        works("host call inside a coroutine", "local co = coroutine.wrap(function() kv.set('a', 1) coroutine.yield(kv.get('a')) return 2 end) return { json = { co(), co() } }", "[1,2]"),
        works("host call inside pcall", "local ok, v = pcall(kv.incr, 'n') return { json = { ok = ok, v = v } }", "\"ok\":true"),
        works("host call inside __index", "local t = setmetatable({}, { __index = function(_, k) return kv.get(k) end }) kv.set('x', 'from kv') return t.x", "from kv"),
        works("host call inside __close", "do local g <close> = setmetatable({}, { __close = function() kv.set('closed', true) end }) end return { json = kv.get('closed') }", "true"),
        works("coroutine abandoned after a host call", "local co = coroutine.create(function() kv.get('x') coroutine.yield() kv.set('never', 1) end) coroutine.resume(co) return 'left it'", "left it"),
        fails("host call inside table.sort's comparator", "local t = { 3, 1, 2 } table.sort(t, function(a, b) kv.get('x') return a < b end)", "cannot wait here"),
        fails("host call inside gsub's callback", "return (string.gsub('abc', '%w', function(c) return kv.get(c) or c end))", "cannot wait here"),
        fails("host call inside tostring's __tostring", "return tostring(setmetatable({}, { __tostring = function() return kv.get('x') or 'x' end }))", "cannot wait here"),
        fails("yield from the handler itself", "coroutine.yield('out')", "outside a coroutine"),
        fails("host call with a recursive table", "local t = {} t.self = t kv.set('t', t)", "cycle"),
        fails("host call with a function", "kv.set('f', function() end)", "function"),
        fails("host call with a value too deep", "local t = {} local c = t for i = 1, 500 do c.x = {} c = c.x end kv.set('deep', t)", "deep"),
        fails("kv value over the size limit", "kv.set('big', string.rep('x', 2 << 20))", "the limit is 1048576"),
        // What a handler returns or raises
        fails("returning a recursive table", "local t = {} t.self = t return { json = t }", "cycle"),
        fails("returning a function", "return { json = { f = print } }", "function"),
        fails("returning NaN", "return { json = { x = 0/0 } }", "not a finite number"),
        fails("returning invalid UTF-8", "return { json = { s = '\\xff\\xfe' } }", "UTF-8"),
        fails("returning a coroutine", "return { json = coroutine.create(print) }", "thread"),
        fails("giant return value", "local t = {} for i = 1, 1e7 do t[i] = i end return { json = t }", "not enough memory|time limit"),
        fails("error with a __tostring that fails", "error(setmetatable({}, { __tostring = function() error('inner') end }))", "error"),
        fails("error(nil)", "error(nil)", "nil"),
        fails("error in __index", "local t = setmetatable({}, { __index = function() error('from __index') end }) return t.x", "from __index"),
        fails("error in __close", "do local g <close> = setmetatable({}, { __close = function() error('from __close') end }) end", "from __close"),
        fails("a response status out of range", "return { status = 999 }", "100 to 599"),
        fails("a header with a line break", "return { headers = { ['X-A'] = 'a\\r\\nSet-Cookie: x=1' }, body = 'x' }", "line break"),
        // Other apps
        works("ctx.app rewritten", "ctx.app = 'victim' kv.set('mine', 1) return { json = { victim = kv.get('secret') } }", "{}"),
        works("another app's secret by name", "return { json = { s = secrets.get('VICTIM_TOKEN') } }", "{}"),
        fails("another app's file by path", "return { json = { f = files.get('../victim/f.txt') } }", "invalid file path"),
        fails("require another app's module", "return require('../victim/handlers/main')", "not found"),
    ]

    static let manifest: String = {
        var text = """
            name = "hostile"
            [limits]
            instructions = 20000000
            timeout_ms = 3000
            memory_mb = 32
            [[endpoints]]
            method = "GET"
            path = "/ok"
            handler = "handlers/ok.lua"

            """
        for index in corpus.indices {
            text += "[[endpoints]]\nmethod = \"GET\"\npath = \"/h\(index)\"\nhandler = \"handlers/h\(index).lua\"\n"
        }
        return text
    }()

    static var files: [String: String] {
        var files = ["handlers/ok.lua": "return function() return 'still serving' end"]
        for (index, script) in corpus.enumerated() { files["handlers/h\(index).lua"] = "return function(req, ctx)\n\(script.code)\nend\n" }
        return files
    }

    @Test("the corpus is large enough")
    func size() {
        #expect(Self.corpus.count >= 40)
    }

    @Test("every hostile handler is stopped with a clear error or does no harm; the server and other apps keep serving")
    func corpusRuns() async throws {
        try await Harness.run { server in
            // Another app with a secret and kv data the hostile app must never see.
            try await server.deployHandler("victim", source: "return function(req) if req.path == '/seed' then kv.set('secret', 'victim data') end return { json = { secret = kv.get('secret') } } end")
            try await server.request(.PUT, "/admin/apps/victim/secrets/VICTIM_TOKEN", json: ["value": "do-not-leak"])
            #expect(try await server.call("victim", .GET, "/seed").json == ["secret": "victim data"])
            let deployed = try await server.deploy("hostile", manifest: Self.manifest, files: Self.files)
            try #require(deployed.status == 201, "\(deployed.text)")

            for (index, script) in Self.corpus.enumerated() {
                let answer = try await server.call("hostile", .GET, "/h\(index)", token: Harness.adminToken)
                let message = answer.succeeds ? answer.text : answer.errorMessage
                let alternatives = script.expected.split(separator: "|").map(String.init)
                if script.succeeds {
                    #expect(answer.status == 200, "\(script.name): \(answer.status) \(answer.text)")
                } else {
                    #expect([500, 504].contains(answer.status) && answer.errorCode != nil, "\(script.name): \(answer.status) \(answer.text)")
                }
                #expect(alternatives.contains { message.contains($0) }, "\(script.name): expected '\(script.expected)' in \(message)")
                #expect(!answer.text.contains("victim data") && !answer.text.contains("do-not-leak"), "\(script.name) leaked")
                // The app's next request is served, and the other app never noticed.
                #expect(try await server.call("hostile", .GET, "/ok").text == "still serving", "after \(script.name)")
                #expect(try await server.call("victim", .GET, "/r").json == ["secret": "victim data"], "after \(script.name)")
            }
            #expect(try await server.request(.GET, "/healthz", token: nil).status == 200)
        }
    }
}

private extension Harness.Answer {
    var succeeds: Bool { (200..<300).contains(status) }
}
