import Foundation
import LuaBridge
import NIOHTTP1
import Runtime
import Testing

/// Triggers end to end: real HTTP, a real store, the dispatcher and the cron scheduler running.
@Suite("Triggers, outbox, dead letters, cron")
struct TriggerTests {
    /// Waits (up to `timeout`) until `check` passes.
    func eventually(_ what: String, timeout: Duration = .seconds(20), _ check: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await check() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting for \(what)")
    }

    /// The value of a kv key of `app`, read through the admin API.
    func kv(_ server: Harness, _ app: String, _ key: String) async throws -> LuaValue? {
        let answer = try await server.request(.GET, "/admin/apps/\(app)/kv?prefix=\(key.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? key)")
        guard case .array(let items)? = answer.json["items"] else { return nil }
        return items.first { $0["key"]?.stringValue == key }?["value"]
    }

    static func configure(_ configuration: inout RuntimeConfiguration) {
        configuration.cronTickMilliseconds = 50
        configuration.dispatcherPollMilliseconds = 200
    }

    @Test("every trigger kind fires its handler with the right event")
    func kinds() async throws {
        try await Harness.run(configure: Self.configure) { server in
            let manifest = """
                name = "t"
                [[endpoints]]
                method = "POST"
                path = "/*rest"
                handler = "handlers/act.lua"
                [[triggers]]
                kind = "kv"
                key = "user:*"
                handler = "handlers/record.lua"
                [[triggers]]
                kind = "kv"
                prefix = "cfg/"
                ops = ["delete"]
                handler = "handlers/record.lua"
                [[triggers]]
                kind = "docs"
                collection = "orders"
                handler = "handlers/record.lua"
                [[triggers]]
                kind = "files"
                prefix = "up/"
                handler = "handlers/record.lua"
                [[triggers]]
                kind = "topic"
                topic = "news"
                handler = "handlers/record.lua"
                [[triggers]]
                kind = "cron"
                schedule = "@every 1s"
                handler = "handlers/tick.lua"
                """
            try await server.deploy("t", manifest: manifest, files: [
                "handlers/act.lua": """
                    return function(req)
                      local what = req.params.rest
                      if what == "kv" then kv.set("user:1", { name = "Ada" }); kv.set("other", 1); kv.set("cfg/a", 1); kv.delete("cfg/a")
                      elseif what == "docs" then docs.insert("orders", { id = "o1", total = 5 }); docs.update("orders", "o1", { total = 7 }); docs.delete("orders", "o1"); docs.insert("skip", {})
                      elseif what == "files" then files.put("up/a.txt", "hi"); files.delete("up/a.txt"); files.put("elsewhere.txt", "x")
                      elseif what == "topic" then return { json = { id = pubsub.publish("news", { headline = "PiCloud" }) } } end
                      return "ok"
                    end
                    """,
                "handlers/record.lua": """
                    return function(event, ctx)
                      local summary = { kind = event.kind, op = event.op, key = event.key, value = event.value, collection = event.collection,
                        doc = event.doc, old = event.old, path = event.path, size = event.size, topic = event.topic, message = event.message,
                        id = event.id, trigger = event.trigger, depth = ctx.depth, attempt = ctx.attempt }
                      docs.insert("seen", summary)
                    end
                    """,
                "handlers/tick.lua": "return function(event) kv.incr('ticks') kv.set('last_tick', event.scheduled_at) end",
            ])
            for what in ["kv", "docs", "files", "topic"] { #expect(try await server.call("t", .POST, "/\(what)").status < 300) }
            var seen: [LuaValue] = []
            try await eventually("8 deliveries") {
                let answer = try await server.request(.GET, "/admin/apps/t/docs/seen?limit=100")
                guard case .array(let items)? = answer.json["items"] else { return false }
                seen = items
                return items.count >= 8
            }
            func find(_ kind: String, _ op: String?) -> [LuaValue] { seen.filter { $0["kind"] == .string(kind) && (op == nil || $0["op"] == .string(op!)) } }
            #expect(find("kv", "set").map { $0["key"] } == ["user:1"])
            #expect(find("kv", "set").first?["value"] == ["name": "Ada"])
            #expect(find("kv", "delete").map { $0["key"] } == ["cfg/a"])
            #expect(find("docs", "insert").first?["doc"] == ["id": "o1", "total": 5])
            #expect(find("docs", "update").first?["old"] == ["id": "o1", "total": 5] && find("docs", "update").first?["doc"] == ["id": "o1", "total": 7])
            #expect(find("docs", "delete").first?["old"] == ["id": "o1", "total": 7])
            #expect(find("files", "put").map { $0["path"] } == ["up/a.txt"] && find("files", "put").first?["size"] == 2)
            #expect(find("files", "delete").count == 1)
            #expect(find("topic", nil).first?["message"] == ["headline": "PiCloud"] && find("topic", nil).first?["topic"] == "news")
            #expect(seen.count == 8)
            #expect(seen.allSatisfy { $0["depth"] == 1 && $0["attempt"] == 1 && $0["id"]?.stringValue?.hasPrefix("evt_") == true && $0["trigger"]?.stringValue?.hasPrefix("trg_") == true })
            try await eventually("two cron ticks") { (try await kv(server, "t", "ticks"))?.integerValue ?? 0 >= 2 }
            let last = try #require(try await kv(server, "t", "last_tick")?.integerValue)
            #expect(last % 1000 == 0)
        }
    }

    @Test("a handler that always fails ends in one dead letter, and the dead_letter handler runs with the original event")
    func deadLetters() async throws {
        try await Harness.run(configure: Self.configure) { server in
            let manifest = """
                name = "dl"
                [[endpoints]]
                method = "POST"
                path = "/go"
                handler = "handlers/go.lua"
                [[triggers]]
                kind = "docs"
                collection = "jobs"
                handler = "handlers/fail.lua"
                max_attempts = 3
                backoff_base_ms = 10
                backoff_cap_ms = 20
                [[triggers]]
                kind = "dead_letter"
                handler = "handlers/on_dead.lua"
                """
            try await server.deploy("dl", manifest: manifest, files: [
                "handlers/go.lua": "return function() docs.insert('jobs', { id = 'j1', task = 'resize' }) return 'queued' end",
                "handlers/fail.lua": "return function(event) kv.incr('attempts') error('cannot process ' .. event.doc.task) end",
                "handlers/on_dead.lua": """
                    return function(event, ctx)
                      kv.set("dead", { original = event.event.doc, handler = event.dead_letter.handler, attempts = event.dead_letter.attempts,
                        error = event.dead_letter.error, depth = ctx.depth })
                    end
                    """,
            ])
            #expect(try await server.call("dl", .POST, "/go").text == "queued")
            try await eventually("the dead_letter handler's effect") { try await kv(server, "dl", "dead") != nil }
            let dead = try #require(try await kv(server, "dl", "dead"))
            #expect(dead["original"] == ["id": "j1", "task": "resize"])
            #expect(dead["handler"] == "handlers/fail.lua" && dead["attempts"] == 3)
            #expect(dead["error"]?.stringValue?.hasPrefix("handlers/fail.lua:1: cannot process resize") == true)
            #expect(try await kv(server, "dl", "attempts") == 3)
            let letters = try await server.request(.GET, "/admin/apps/dl/dead-letters")
            guard case .array(let items)? = letters.json["items"] else { Issue.record("no dead letters"); return }
            #expect(items.count == 1)
            #expect(items[0]["event"]?["doc"] == ["id": "j1", "task": "resize"] && items[0]["attempts"] == 3)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await kv(server, "dl", "attempts") == 3, "no attempt after the dead letter")
        }
    }

    @Test("a failing dead_letter handler retries but creates no further dead letter")
    func failingDeadLetterHandler() async throws {
        try await Harness.run(configure: Self.configure) { server in
            let manifest = """
                name = "dl2"
                [[endpoints]]
                method = "POST"
                path = "/go"
                handler = "handlers/go.lua"
                [[triggers]]
                kind = "topic"
                topic = "jobs"
                handler = "handlers/fail.lua"
                max_attempts = 2
                backoff_base_ms = 10
                [[triggers]]
                kind = "dead_letter"
                handler = "handlers/dead_fails.lua"
                max_attempts = 3
                backoff_base_ms = 10
                """
            try await server.deploy("dl2", manifest: manifest, files: [
                "handlers/go.lua": "return function() pubsub.publish('jobs', { n = 1 }) return 'ok' end",
                "handlers/fail.lua": "return function() error('first failure') end",
                "handlers/dead_fails.lua": "return function() kv.incr('dead_attempts') error('the dead letter handler fails too') end",
            ])
            try await server.call("dl2", .POST, "/go")
            try await eventually("three dead_letter attempts") { (try await kv(server, "dl2", "dead_attempts"))?.integerValue == 3 }
            try await eventually("an empty outbox") {
                guard case .array(let rows)? = try await server.request(.GET, "/admin/apps/dl2/outbox").json["items"] else { return false }
                return rows.isEmpty
            }
            guard case .array(let letters)? = try await server.request(.GET, "/admin/apps/dl2/dead-letters").json["items"] else { Issue.record("no list"); return }
            #expect(letters.count == 1 && letters[0]["handler"] == "handlers/fail.lua")
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await kv(server, "dl2", "dead_attempts") == 3)
            // App log lines are stored when their buffer is flushed: wait for it.
            try await eventually("the give-up line in the app's log") {
                try await server.request(.GET, "/admin/apps/dl2/logs?level=error").text.contains("a dead letter never makes another")
            }
        }
    }

    @Test("replay after a redeploy that fixed the handler delivers the event; purge removes dead letters")
    func replay() async throws {
        try await Harness.run(configure: Self.configure) { server in
            let manifest = """
                name = "rp"
                [[endpoints]]
                method = "POST"
                path = "/go/:n"
                handler = "handlers/go.lua"
                [[triggers]]
                kind = "kv"
                prefix = "job:"
                handler = "handlers/work.lua"
                max_attempts = 1
                """
            let files = ["handlers/go.lua": "return function(req) kv.set('job:' .. req.params.n, tonumber(req.params.n)) return 'ok' end"]
            try await server.deploy("rp", manifest: manifest, files: files.merging(["handlers/work.lua": "return function() error('bug') end"]) { $1 })
            try await server.call("rp", .POST, "/go/1")
            try await server.call("rp", .POST, "/go/2")
            var letters: [LuaValue] = []
            try await eventually("two dead letters") {
                guard case .array(let items)? = try await server.request(.GET, "/admin/apps/rp/dead-letters").json["items"] else { return false }
                letters = items
                return items.count == 2
            }
            try await server.deploy("rp", manifest: manifest, files: files.merging(["handlers/work.lua": "return function(event) kv.set('done:' .. event.value, true) end"]) { $1 }, create: false)
            let first = try #require(letters.first { $0["event"]?["value"] == 1 }?["id"]?.stringValue)
            let replayed = try await server.request(.POST, "/admin/apps/rp/dead-letters/\(first)/replay")
            #expect(replayed.status == 202)
            try await eventually("the replayed event's effect") { try await kv(server, "rp", "done:1") == true }
            #expect(try await server.request(.POST, "/admin/apps/rp/dead-letters/\(first)/replay").status == 404)
            #expect(try await server.request(.DELETE, "/admin/apps/rp/dead-letters").json["purged"] == 1)
            #expect(try await server.request(.GET, "/admin/apps/rp/dead-letters").json["items"] == [])
            #expect(try await kv(server, "rp", "done:2") == nil)
        }
    }

    @Test("a trigger chain that feeds itself stops at the depth limit, and says so in the log")
    func depthLimit() async throws {
        try await Harness.run(configure: { Self.configure(&$0); $0.triggerMaxDepth = 4 }) { server in
            let manifest = """
                name = "loop"
                [[endpoints]]
                method = "POST"
                path = "/start"
                handler = "handlers/start.lua"
                [[triggers]]
                kind = "kv"
                prefix = "n"
                handler = "handlers/next.lua"
                """
            try await server.deploy("loop", manifest: manifest, files: [
                "handlers/start.lua": "return function() kv.set('n', 0) return 'started' end",
                "handlers/next.lua": "return function(event, ctx) kv.incr('runs') kv.set('n', event.value + 1) kv.set('depth', ctx.depth) end",
            ])
            try await server.call("loop", .POST, "/start")
            try await eventually("the chain to stop") {
                try await server.request(.GET, "/admin/apps/loop/logs?level=warn").text.contains("trigger chain stopped")
            }
            // The line is logged when the fourth handler's kv.set('n') is refused its event; that
            // handler's last write comes after it (on a busy machine, more than 300 ms after).
            try await eventually("the fourth handler's last write") { try await kv(server, "loop", "depth") == 4 }
            // And nothing runs after it.
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await kv(server, "loop", "runs") == 4)
            #expect(try await kv(server, "loop", "depth") == 4)
            #expect(try await kv(server, "loop", "n") == 4)
        }
    }

    @Test("triggers can be listed, added and removed through the API; the outbox and metrics are visible")
    func api() async throws {
        try await Harness.run(configure: Self.configure) { server in
            let manifest = """
                name = "api"
                [[endpoints]]
                method = "POST"
                path = "/set/:k"
                handler = "handlers/set.lua"
                [[triggers]]
                kind = "cron"
                schedule = "0 * * * *"
                handler = "handlers/slow.lua"
                """
            try await server.deploy("api", manifest: manifest, files: [
                "handlers/set.lua": "return function(req) kv.set(req.params.k, 1) return 'ok' end",
                "handlers/copy.lua": "return function(event) kv.set('copy:' .. event.key, event.value) end",
                "handlers/slow.lua": "return function() end",
            ])
            let listed = try await server.request(.GET, "/admin/apps/api/triggers")
            guard case .array(let triggers)? = listed.json["items"] else { Issue.record("no triggers"); return }
            #expect(triggers.count == 1 && triggers[0]["source"] == "manifest" && triggers[0]["next_run_at"] != nil)
            let manifestID = try #require(triggers[0]["id"]?.stringValue)
            #expect(try await server.request(.DELETE, "/admin/apps/api/triggers/\(manifestID)").status == 409)

            let created = try await server.request(.POST, "/admin/apps/api/triggers", json: ["kind": "kv", "prefix": "src:", "handler": "handlers/copy.lua", "max_attempts": 2])
            #expect(created.status == 201 && created.json["source"] == "api")
            #expect(try await server.request(.POST, "/admin/apps/api/triggers", json: ["kind": "kv", "handler": "handlers/copy.lua"]).status == 400)
            #expect(try await server.request(.POST, "/admin/apps/api/triggers", json: ["kind": "kv", "prefix": "x", "handler": "handlers/none.lua"]).status == 400)
            #expect(try await server.request(.POST, "/admin/apps/api/triggers", json: ["kind": "smoke", "handler": "handlers/copy.lua"]).status == 400)
            try await server.call("api", .POST, "/set/src:a")
            try await eventually("the API trigger's effect") { try await kv(server, "api", "copy:src:a") == 1 }
            let id = try #require(created.json["id"]?.stringValue)
            #expect(try await server.request(.DELETE, "/admin/apps/api/triggers/\(id)").status == 204)
            try await server.call("api", .POST, "/set/src:b")
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await kv(server, "api", "copy:src:b") == nil)
            // src:a's row leaves the outbox when its delivery is acknowledged, a batch at a time.
            try await eventually("an empty outbox") { try await server.request(.GET, "/admin/apps/api/outbox").json["items"] == [] }
            let reader = try await server.key("api", ["data:read"])
            #expect(try await server.request(.GET, "/admin/apps/api/triggers", token: reader).status == 403)

            let metrics = try await server.request(.GET, "/metrics", token: nil)
            #expect(metrics.status == 200)
            for name in ["picloud_trigger_deliveries_total", "picloud_outbox_depth", "picloud_trigger_handler_duration_seconds", "picloud_dead_letters_total", "picloud_trigger_retries_total"] {
                #expect(metrics.text.contains(name), "\(name)")
            }
        }
    }

    @Test("a node with PICLOUD_DISPATCHER_CONCURRENCY=0 runs no trigger handler: its events wait in the outbox")
    func nodeThatDoesNotDeliver() async throws {
        try await Harness.run(configure: { Self.configure(&$0); $0.dispatcherConcurrency = 0 }) { server in
            try await server.deploy("idle", manifest: """
                name = "idle"
                [[endpoints]]
                method = "POST"
                path = "/set/:k"
                handler = "handlers/set.lua"
                [[triggers]]
                kind = "kv"
                prefix = "src:"
                handler = "handlers/copy.lua"
                """, files: [
                "handlers/set.lua": "return function(req) kv.set(req.params.k, 1) return 'ok' end",
                "handlers/copy.lua": "return function(event) kv.set('copy:' .. event.key, event.value) end",
            ])
            try await server.call("idle", .POST, "/set/src:a")
            // Five of the test configuration's 200 ms fallback polls, besides the commit's doorbell.
            try await Task.sleep(for: .seconds(1))
            #expect(try await kv(server, "idle", "copy:src:a") == nil)
            let outbox = try await server.request(.GET, "/admin/apps/idle/outbox").json["items"]?.arrayValue ?? []
            #expect(outbox.count == 1 && outbox.first?["attempts"] == 0, "\(outbox)")
        }
    }

    @Test("handlers that slow down after a long line was claimed: rows whose lease ran short while waiting are given back, not failed")
    func slowdownGivesRowsBack() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-it-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Every event is written first, by a node that delivers none: the line the next node
        // claims then does not depend on how fast the writes came (a loaded run wrote them slower
        // than the first handlers ran, and the line never grew long).
        try await Harness.run(dataDirectory: directory, configure: { Self.configure(&$0); $0.dispatcherConcurrency = 0 }) { server in
            try await server.deploy("slow", manifest: """
                name = "slow"
                [[endpoints]]
                method = "POST"
                path = "/go/:from/:count"
                handler = "handlers/go.lua"
                [[triggers]]
                kind = "kv"
                prefix = "job:"
                handler = "handlers/work.lua"
                max_attempts = 1
                """, files: [
                "handlers/go.lua": """
                    return function(req)
                      local from = tonumber(req.params.from)
                      for i = from, from + tonumber(req.params.count) - 1 do kv.set("job:" .. i, i) end
                      return "ok"
                    end
                    """,
                "handlers/work.lua": """
                    return function(event, ctx)
                      if event.value == 51 then time.sleep(2) elseif event.value > 51 then time.sleep(0.04) end
                      if ctx.attempt > 1 then kv.incr("retried") end
                      kv.incr("done")
                    end
                    """,
            ])
            try await server.call("slow", .POST, "/go/1/180")
        }
        try await Harness.run(dataDirectory: directory, configure: {
            Self.configure(&$0)
            $0.dispatcherConcurrency = 1
            // A row may wait 3 s of it in line, and a handler then still has at least 1 s.
            $0.dispatcherLeaseMilliseconds = 5000
        }) { server in
            // The 50 fast deliveries teach the dispatcher a pace of about a millisecond, and its
            // line grows to 128. Row 51 takes 2 s and the rows claimed behind it 40 ms each: from
            // about the 25th in line on they would wait over 3 s of their 5 s lease, so they are
            // given back and claimed again later.
            try await eventually("180 deliveries", timeout: .seconds(60)) { try await kv(server, "slow", "done") == 180 }
            #expect(try await kv(server, "slow", "retried") == nil)
            let letters = try await server.request(.GET, "/admin/apps/slow/dead-letters").json["items"]
            #expect(letters == [], "\(letters.map { "\($0)" } ?? "")")
            let metrics = try await server.request(.GET, "/metrics", token: nil).text
            let released = metrics.split(separator: "\n").first { $0.hasPrefix("picloud_trigger_released_total ") }
            #expect((released.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0) > 0, "\(released.map(String.init) ?? "no metric")")
        }
    }
}
