import Foundation
import LuaBridge
import Runtime
import NIOHTTP1
import Testing

/// Every SDK function, called from a deployed handler over real HTTP.
@Suite("Lua SDK")
struct SDKTests {
    /// Deploys `source` as the body of a handler and runs it once, returning its JSON answer.
    func run(_ source: String, in server: Harness, app: String = "sdk", create: Bool = true) async throws -> Harness.Answer {
        try await server.deployHandler(app, source: "return function(req, ctx)\n\(source)\nend", create: create)
        return try await server.call(app, .POST, "/run", token: Harness.adminToken)
    }

    @Test("kv.list pages of the largest size (1,000) say that more follow")
    func kvFullPages() async throws {
        try await Harness.run { server in
            // 1,001 sequential durable writes: on CI's two busy cores they can take longer than the default
            // 10 s handler limit, so this app allows a minute (the limit is not what is tested here).
            let source = """
                return function(req, ctx)
                for i = 1, 1001 do kv.set(string.format("n:%04d", i), i) end
                local first, after = kv.list("n:", { limit = 1000 })
                local rest, done = kv.list("n:", { limit = 1000, after = after })
                return { json = { first = #first, after = after, rest = #rest, done = done == nil } }
                end
                """
            let manifest = """
                name = "sdk"
                [limits]
                timeout_ms = 60000
                [[endpoints]]
                method = "POST"
                path = "/run"
                handler = "handlers/main.lua"
                auth = "public"
                """
            try await server.deploy("sdk", manifest: manifest, files: ["handlers/main.lua": source])
            let answer = try await server.call("sdk", .POST, "/run", token: Harness.adminToken)
            #expect(answer.json == ["first": 1000, "after": "n:1000", "rest": 1, "done": true], "\(answer.text)")
        }
    }

    @Test("kv: get, set with ttl, delete, incr, list with pages; bad input raises")
    func kv() async throws {
        try await Harness.run { server in
            let answer = try await run("""
                kv.set("user:1", { name = "Ada", tags = json.array() })
                kv.set("user:2", "Bob")
                kv.set("user:3", 3.5, { ttl = 60 })
                local set_at = time.ms()
                kv.set("temp", true, { ttl = 1 })
                local before = kv.get("temp")
                local within = time.ms() - set_at < 900
                local first, after = kv.list("user:", { limit = 2 })
                local rest = kv.list("user:", { after = after })
                local n = kv.incr("hits") + kv.incr("hits", 10)
                local ok, err = pcall(kv.incr, "user:2")
                local bad = select(2, pcall(kv.set, "", 1))
                local missing = select(2, pcall(kv.set, "k"))
                local badttl = select(2, pcall(kv.set, "k", 1, { ttl = -1 }))
                return { json = {
                  user = kv.get("user:1"), second = kv.get("user:2"), float = kv.get("user:3"), before = before,
                  within = within, first = first, after = after, rest = rest, n = n, incr_error = err, bad = bad, missing = missing, badttl = badttl,
                  deleted = kv.delete("user:2"), again = kv.delete("user:2"), gone = kv.get("user:2") == nil,
                } }
                """, in: server)
            let json = answer.json
            #expect(answer.status == 200, "\(answer.text)")
            #expect(json["user"] == ["name": "Ada", "tags": []])
            #expect(json["second"] == "Bob" && json["float"] == 3.5)
            // Read within its second (a loaded CI machine can take longer than that to commit the writes).
            if json["within"] == true { #expect(json["before"] == true) }
            #expect(json["first"] == [["key": "user:1", "value": ["name": "Ada", "tags": []]], ["key": "user:2", "value": "Bob"]])
            #expect(json["after"] == "user:2" && json["rest"] == [["key": "user:3", "value": 3.5]])
            #expect(json["n"] == 12)
            #expect(json["incr_error"]?.stringValue?.contains("not an integer") == true)
            #expect(json["bad"]?.stringValue?.contains("invalid kv key") == true)
            #expect(json["missing"]?.stringValue?.contains("bad argument #2 to 'kv.set'") == true)
            #expect(json["badttl"]?.stringValue?.contains("kv.set: ttl must be between 0 and 10 years") == true, "\(json["badttl"] ?? .null)")
            #expect(json["deleted"] == true && json["again"] == false && json["gone"] == true)
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await server.request(.GET, "/admin/apps/sdk/kv?prefix=temp").json["items"] == [])
        }
    }

    @Test("docs: insert, get, update (merge), replace, delete, find with filters, sort and cursors, count")
    func docs() async throws {
        try await Harness.run { server in
            let answer = try await run("""
                for i = 1, 5 do docs.insert("people", { id = "p" .. i, name = "n" .. i, age = i * 10, team = i % 2 == 0 and "even" or "odd" }) end
                local generated = docs.insert("people", { name = "auto" })
                local dup = select(2, pcall(docs.insert, "people", { id = "p1" }))
                local merged = docs.update("people", "p1", { age = 11, extra = { a = 1 }, team = json.null })
                local replaced = docs.replace("people", "p2", { name = "two" })
                local page1, cursor = docs.find("people", { age = { gte = 20 } }, { sort = "-age", limit = 2 })
                local page2 = docs.find("people", { age = { gte = 20 } }, { sort = "-age", limit = 2, after = cursor })
                return { json = {
                  generated = #generated, dup = dup, merged = merged, replaced = replaced, get = docs.get("people", "p2"),
                  page1 = page1, page2 = page2, odd = docs.count("people", { team = "odd" }),
                  in_list = docs.count("people", { name = { ["in"] = { "n3", "n4", "nobody" } } }),
                  prefix = docs.count("people", { name = { prefix = "n" } }),
                  missing = docs.get("people", "zzz") == nil, deleted = docs.delete("people", "p5"), after_delete = docs.count("people", {}),
                  bad_filter = select(2, pcall(docs.find, "people", { age = { between = 1 } })),
                } }
                """, in: server)
            let json = answer.json
            #expect(answer.status == 200, "\(answer.text)")
            #expect(json["generated"] == 26)
            #expect(json["dup"]?.stringValue?.contains("already exists") == true)
            #expect(json["merged"] == ["id": "p1", "name": "n1", "age": 11, "extra": ["a": 1]])
            #expect(json["replaced"] == ["id": "p2", "name": "two"] && json["get"] == ["id": "p2", "name": "two"])
            #expect(json["page1"] == [["id": "p5", "name": "n5", "age": 50, "team": "odd"], ["id": "p4", "name": "n4", "age": 40, "team": "even"]])
            #expect(json["page2"] == [["id": "p3", "name": "n3", "age": 30, "team": "odd"]])
            #expect(json["odd"] == 2 && json["in_list"] == 2 && json["prefix"] == 4)
            #expect(json["missing"] == true && json["deleted"] == true && json["after_delete"] == 5)
            #expect(json["bad_filter"]?.stringValue?.contains("filter") == true)
        }
    }

    @Test("files: put (empty too), get, stat, list, delete; size limit")
    func files() async throws {
        try await Harness.run(configure: { $0.maxFileBytes = 4096 }) { server in
            let answer = try await run("""
                local info = files.put("docs/a.txt", "hello")
                files.put("docs/empty.bin", "", { content_type = "application/x-empty" })
                files.put("bin.dat", string.char(0, 255, 1))
                local content, stat = files.get("docs/a.txt")
                local big = select(2, pcall(files.put, "big", string.rep("x", 5000)))
                local bad = select(2, pcall(files.put, "../escape", "x"))
                local names = {}
                for _, f in ipairs(files.list("docs/")) do names[#names + 1] = f.path end
                return { json = {
                  size = info.size, type = info.content_type, content = content, stat_size = stat.size,
                  empty = files.get("docs/empty.bin"), empty_type = files.stat("docs/empty.bin").content_type,
                  binary = #files.get("bin.dat"), names = names, big = big, bad = bad,
                  deleted = files.delete("docs/a.txt"), gone = files.get("docs/a.txt") == nil,
                } }
                """, in: server)
            let json = answer.json
            #expect(answer.status == 200, "\(answer.text)")
            #expect(json["size"] == 5 && json["type"] == "text/plain; charset=utf-8" && json["content"] == "hello" && json["stat_size"] == 5)
            #expect(json["empty"] == "" && json["empty_type"] == "application/x-empty" && json["binary"] == 3)
            #expect(json["names"] == ["docs/a.txt", "docs/empty.bin"])
            #expect(json["big"]?.stringValue?.contains("limit is 4096") == true)
            #expect(json["bad"]?.stringValue?.contains("invalid file path") == true)
            #expect(json["deleted"] == true && json["gone"] == true)
            let download = try await server.request(.GET, "/admin/apps/sdk/files/bin.dat")
            #expect(download.body == [0, 255, 1])
        }
    }

    @Test("log, print, time, uuid, crypto, json, require of stdlib")
    func basics() async throws {
        try await Harness.run { server in
            let answer = try await run("""
                print("printed", 1, nil)
                log.warn("careful", { n = 1 })
                local validate = require("picloud.validate")
                local ok, errors = validate.check({ title = 5 }, { title = { type = "string", required = true }, n = { type = "integer", required = true } })
                local id = uuid()
                local before_sleep = time.ms()
                time.sleep(0.05)
                local slept = time.ms() - before_sleep
                return { json = {
                  now = time.now() > 1.7e9, ms = math.type(time.ms()), iso = time.iso(0),
                  uuid = #id == 36 and id:match("^%x+%-%x+%-4") ~= nil,
                  sha = crypto.sha256("abc"), hmac = crypto.hmac_sha256("key", "The quick brown fox jumps over the lazy dog"),
                  random = #crypto.random_hex(8), equal = crypto.equal("a", "a") and not crypto.equal("a", "b"),
                  valid = ok, errors = errors, slept = slept >= 50, bad_sleep = select(2, pcall(time.sleep, -1)),
                } }
                """, in: server)
            let json = answer.json
            #expect(answer.status == 200, "\(answer.text)")
            #expect(json["now"] == true && json["ms"] == "integer" && json["iso"] == "1970-01-01T00:00:00.000Z" && json["uuid"] == true)
            #expect(json["sha"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            #expect(json["hmac"] == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
            #expect(json["random"] == 16 && json["equal"] == true && json["valid"] == false)
            #expect(json["slept"] == true && json["bad_sleep"]?.stringValue?.contains("bad argument #1 to 'time.sleep'") == true)
            #expect(json["errors"] == [["field": "n", "message": "is required"], ["field": "title", "message": "must be a string"]])
            // App log lines are stored when their buffer is flushed: wait for it.
            try await RealtimeTests.eventually("the print and log.warn lines in the app's log") {
                let logs = try await server.request(.GET, "/admin/apps/sdk/logs").text
                return logs.contains("printed\\t1\\tnil") && logs.contains(#"careful {\"n\":1}"#) && logs.contains(#""level":"warn""#)
            }
        }
    }

    @Test("secrets: set through the API, read in Lua, never shown again")
    func secrets() async throws {
        try await Harness.run { server in
            try await server.request(.POST, "/admin/apps", json: ["name": "sdk"])
            #expect(try await server.request(.PUT, "/admin/apps/sdk/secrets/API_KEY", json: ["value": "s3cr3t"]).status == 200)
            let answer = try await run("return { json = { value = secrets.get('API_KEY'), none = secrets.get('NOPE') == nil } }", in: server, create: false)
            #expect(answer.json == ["value": "s3cr3t", "none": true])
            let list = try await server.request(.GET, "/admin/apps/sdk/secrets")
            #expect(list.text.contains("API_KEY") && !list.text.contains("s3cr3t"))
            #expect(try await server.request(.PUT, "/admin/apps/sdk/secrets/bad%20name", json: ["value": "x"]).status == 400)
            for file in ["picloud.sqlite", "picloud.sqlite-wal"] {
                let bytes = (try? Data(contentsOf: URL(fileURLWithPath: server.dataDirectory + "/" + file))) ?? Data()
                #expect(!String(decoding: bytes, as: UTF8.self).contains("s3cr3t"), "\(file) holds the secret in clear")
            }
            #expect(try await server.request(.DELETE, "/admin/apps/sdk/secrets/API_KEY").status == 204)
            let reader = try await server.key("sdk", ["app:read", "data:write"])
            #expect(try await server.request(.GET, "/admin/apps/sdk/secrets", token: reader).status == 403)
        }
    }
}
