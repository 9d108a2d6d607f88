import LuaBridge
import Runtime
import NIOHTTP1
import Testing

@Suite("App endpoints")
struct EndpointTests {
    @Test("req carries method, path, params, query, headers, body and parsed JSON")
    func requestShape() async throws {
        try await Harness.run { server in
            let manifest = """
                name = "echo"
                [[endpoints]]
                method = "POST"
                path = "/items/:id/notes/*rest"
                handler = "handlers/echo.lua"
                """
            try await server.deploy("echo", manifest: manifest, files: ["handlers/echo.lua": """
                return function(req, ctx)
                  return { json = { method = req.method, path = req.path, params = req.params, query = req.query,
                    header = req.headers["x-thing"], body = req.body, json = req.json, app = ctx.app, rid = ctx.request_id } }
                end
                """])
            let answer = try await server.call("echo", .POST, "/items/42/notes/a/b%20c?x=1&y=two&form=a+b%20c&plus=%2B", json: ["n": 1.5], headers: [("X-Thing", "yes")])
            #expect(answer.status == 200)
            #expect(answer.json["method"] == "POST")
            #expect(answer.json["path"] == "/items/42/notes/a/b c")
            #expect(answer.json["params"] == ["id": "42", "rest": "a/b c"])
            #expect(answer.json["query"] == ["x": "1", "y": "two", "form": "a b c", "plus": "+"], "'+' is a space, as HTML forms write it")
            #expect(answer.json["header"] == "yes")
            #expect(answer.json["body"] == #"{"n":1.5}"#)
            #expect(answer.json["json"] == ["n": 1.5])
            #expect(answer.json["app"] == "echo")
            #expect(answer.json["rid"]?.stringValue == answer.headers.first(name: "X-Request-Id"))
        }
    }

    @Test("routing: most specific first, 404 for no endpoint, 405 with Allow for the wrong method")
    func routing() async throws {
        try await Harness.run { server in
            let manifest = """
                name = "r"
                [[endpoints]]
                method = "GET"
                path = "/items/:id"
                handler = "handlers/param.lua"
                [[endpoints]]
                method = "GET"
                path = "/items/special"
                handler = "handlers/static.lua"
                [[endpoints]]
                method = "DELETE"
                path = "/items/:id"
                handler = "handlers/param.lua"
                """
            try await server.deploy("r", manifest: manifest, files: [
                "handlers/param.lua": "return function(req) return 'param ' .. req.params.id end",
                "handlers/static.lua": "return function() return 'static' end",
            ])
            #expect(try await server.call("r", .GET, "/items/special").text == "static")
            #expect(try await server.call("r", .GET, "/items/7").text == "param 7")
            let missing = try await server.call("r", .GET, "/nothing")
            #expect(missing.status == 404 && missing.errorCode == "not_found")
            #expect(missing.headers.first(name: "X-Request-Id")?.isEmpty == false, "error answers carry the request id")
            let wrongMethod = try await server.call("r", .POST, "/items/7")
            #expect(wrongMethod.status == 405 && wrongMethod.headers.first(name: "Allow") == "GET, DELETE")
            #expect(try await server.call("ghost", .GET, "/x").status == 404)
        }
    }

    @Test("responses: text, 204, JSON shorthand, status and headers, redirects")
    func responses() async throws {
        try await Harness.run { server in
            try await server.deployHandler("resp", source: """
                return function(req)
                  local kind = req.params.rest
                  if kind == "text" then return "plain" end
                  if kind == "none" then return nil end
                  if kind == "short" then return { a = 1, items = {} } end
                  if kind == "list" then return { 1, 2, 3 } end
                  if kind == "custom" then return { status = 418, headers = { ["x-tea"] = "earl grey" }, body = "<p>teapot</p>" } end
                  if kind == "created" then return { status = 201, json = { id = "x" } } end
                  if kind == "bad" then return { status = "nope" } end
                  return { status = 302, headers = { location = "https://example.com" } }
                end
                """)
            let text = try await server.call("resp", .GET, "/text")
            #expect(text.status == 200 && text.text == "plain" && text.headers.first(name: "Content-Type")?.hasPrefix("text/plain") == true)
            #expect(try await server.call("resp", .GET, "/none").status == 204)
            #expect(try await server.call("resp", .GET, "/short").json == ["a": 1, "items": [:]])
            #expect(try await server.call("resp", .GET, "/list").json == [1, 2, 3])
            let custom = try await server.call("resp", .GET, "/custom")
            #expect(custom.status == 418 && custom.text == "<p>teapot</p>" && custom.headers.first(name: "x-tea") == "earl grey")
            let created = try await server.call("resp", .GET, "/created")
            #expect(created.status == 201 && created.json == ["id": "x"])
            #expect(try await server.call("resp", .GET, "/bad").status == 500)
            let redirect = try await server.call("resp", .GET, "/redirect")
            #expect(redirect.status == 302 && redirect.headers.first(name: "Location") == "https://example.com")
        }
    }

    @Test("bad input: malformed JSON is 400, an oversize body 413, before the handler runs")
    func badInput() async throws {
        try await Harness.run(configure: { $0.maxBodyBytes = 2048 }) { server in
            try await server.deployHandler("in", source: "return function(req) kv.set('ran', true) return 'ran' end")
            let malformed = try await server.request(.POST, "/apps/in/api/x", body: Array("{\"a\":".utf8), contentType: "application/json", token: nil)
            #expect(malformed.status == 400 && malformed.errorMessage.contains("malformed JSON"))
            let oversize = try await server.request(.POST, "/apps/in/api/x", body: Array(repeating: 65, count: 4096), contentType: "text/plain", token: nil)
            #expect(oversize.status == 413 && oversize.errorCode == "payload_too_large")
            let kv = try await server.request(.GET, "/admin/apps/in/kv")
            #expect(kv.json["items"] == [])
        }
    }

    @Test("handlers declared with fewer parameters get what they declare; a malformed body is still refused")
    func declaredParameters() async throws {
        try await Harness.run { server in
            let handlers = [
                "none": "return function() return { json = { ok = true } } end",
                "req": "return function(req) return { json = { method = req.method, q = req.query.q } } end",
                "both": "return function(req, ctx) return { json = { method = req.method, app = ctx.app } } end",
            ]
            let endpoints = handlers.keys.map { "[[endpoints]]\nmethod = \"*\"\npath = \"/\($0)\"\nhandler = \"handlers/\($0).lua\"\nauth = \"public\"\n" }
            let deployed = try await server.deploy(
                "p", manifest: "name = \"p\"\n" + endpoints.joined(), files: Dictionary(uniqueKeysWithValues: handlers.map { ("handlers/\($0.key).lua", $0.value) })
            )
            #expect(deployed.status == 200 || deployed.status == 201, "\(deployed.text)")
            #expect(try await server.call("p", .GET, "/none").json == ["ok": true])
            #expect(try await server.call("p", .GET, "/req?q=1").json == ["method": "GET", "q": "1"])
            #expect(try await server.call("p", .POST, "/both").json == ["method": "POST", "app": "p"])
            let malformed = try await server.request(.POST, "/apps/p/api/none", body: Array("{\"a\":".utf8), contentType: "application/json", token: nil)
            #expect(malformed.status == 400 && malformed.errorMessage.contains("malformed JSON"), "\(malformed.text)")
        }
    }

    @Test("/metrics counts every endpoint call and its duration as its answer leaves, on either loop")
    func endpointMetrics() async throws {
        try await Harness.run { server in
            try await server.deployHandler("m", source: "return function(req) if req.params.rest == 'wait' then time.sleep(0.02) end return { json = { ok = true } } end")
            func value(_ name: String) async throws -> Double {
                let text = try await server.request(.GET, "/metrics", token: nil).text
                return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) } ?? 0
            }
            let requests = try await value("picloud_endpoint_requests_total")
            let durations = try await value("picloud_endpoint_duration_seconds_count")
            // Calls at once, over several connections (so on both event loops), quick and waiting.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<40 {
                    group.addTask {
                        let answer = try await server.call("m", .GET, index % 4 == 0 ? "/wait" : "/go")
                        #expect(answer.status == 200)
                    }
                }
                try await group.waitForAll()
            }
            // Each count is read after its answer arrived, with nothing waited for in between.
            #expect(try await value("picloud_endpoint_requests_total") == requests + 40)
            #expect(try await value("picloud_endpoint_duration_seconds_count") == durations + 40)
            try await server.call("m", .GET, "/go")
            #expect(try await value("picloud_endpoint_requests_total") == requests + 41)
            try await server.call("m", .GET, "/wait")
            #expect(try await value("picloud_endpoint_duration_seconds_count") == durations + 42)
        }
    }

    @Test("a failing handler: 500 with file:line and traceback for admins, a request id only for others, logged")
    func handlerErrors() async throws {
        try await Harness.run { server in
            try await server.deployHandler("boom", source: """
                return function(req)
                  if req.params.rest == "mine" then error({ status = 404, code = "no_such_thing", message = "nothing here", hint = "try /x" }) end
                  local t = nil
                  return t.field
                end
                """)
            let anonymous = try await server.call("boom", .GET, "/crash")
            #expect(anonymous.status == 500 && anonymous.errorCode == "script_error")
            #expect(!anonymous.text.contains("main.lua") && !anonymous.text.contains("traceback"))
            let requestID = try #require(anonymous.json["error"]?["request_id"]?.stringValue)
            #expect(anonymous.errorMessage.contains(requestID))
            let admin = try await server.call("boom", .GET, "/crash", token: Harness.adminToken)
            #expect(admin.status == 500 && admin.errorMessage.hasPrefix("handlers/main.lua:4: attempt to index a nil value"))
            #expect(admin.json["error"]?["traceback"]?.stringValue?.contains("stack traceback") == true)
            let own = try await server.call("boom", .GET, "/mine")
            #expect(own.status == 404 && own.json == ["error": ["code": "no_such_thing", "message": "nothing here", "hint": "try /x"]])
            // App log lines are stored when their buffer is flushed: wait for it.
            try await RealtimeTests.eventually("the error with its request id in the app's log") {
                let logs = try await server.request(.GET, "/admin/apps/boom/logs?level=error").text
                return logs.contains(requestID) && logs.contains("handlers/main.lua:4")
            }
        }
    }

    @Test("a handler over its time limit answers 504; the server keeps serving")
    func timeouts() async throws {
        try await Harness.run { server in
            try await server.deploy("slow", manifest: """
                name = "slow"
                [limits]
                timeout_ms = 100
                [[endpoints]]
                method = "GET"
                path = "/*rest"
                handler = "handlers/main.lua"
                """, files: ["handlers/main.lua": "return function(req) if req.params.rest == 'spin' then while true do end end return 'ok' end"])
            let slow = try await server.call("slow", .GET, "/spin", token: Harness.adminToken)
            #expect(slow.status == 504 && slow.errorCode == "timeout" && slow.errorMessage.contains("time limit"))
            #expect(try await server.call("slow", .GET, "/fine").text == "ok")
        }
    }

    @Test("auth = key: 401 without a key, 403 without invoke on this app, 200 with it")
    func keyEndpoints() async throws {
        try await Harness.run { server in
            try await server.deployHandler("private", auth: "key", source: "return function(req, ctx) return { json = ctx.principal } end")
            try await server.request(.POST, "/admin/apps", json: ["name": "other"])
            #expect(try await server.call("private", .GET, "/x").status == 401)
            let reader = try await server.key("private", ["data:read"])
            #expect(try await server.call("private", .GET, "/x", token: reader).status == 403)
            let foreign = try await server.key("other", ["invoke"])
            #expect(try await server.call("private", .GET, "/x", token: foreign).status == 403)
            let invoker = try await server.key("private", ["invoke"])
            let ok = try await server.call("private", .GET, "/x", token: invoker)
            #expect(ok.status == 200 && ok.json["scopes"] == ["invoke"])
        }
    }
}
