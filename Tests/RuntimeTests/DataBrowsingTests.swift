import AsyncHTTPClient
import LuaBridge
import NIOCore
import NIOHTTP1
import Testing

@Suite("Admin data browsing and logs")
struct DataBrowsingTests {
    @Test("kv, docs and files can be browsed with data:read and changed with data:write")
    func browse() async throws {
        try await Harness.run { server in
            try await server.deployHandler("data", source: """
                return function()
                  kv.set("a/b", { x = 1 })
                  for i = 1, 3 do docs.insert("items", { id = "i" .. i, n = i }) end
                  files.put("img/logo.svg", "<svg/>")
                  return "ok"
                end
                """)
            try await server.call("data", .POST, "/seed")
            let reader = try await server.key("data", ["data:read"])
            let writer = try await server.key("data", ["data:write"])
            let kv = try await server.request(.GET, "/admin/apps/data/kv?prefix=a", token: reader)
            guard case .array(let entries)? = kv.json["items"] else { Issue.record("no kv"); return }
            #expect(entries.map { $0["key"] } == ["a/b"] && entries[0]["value"] == ["x": 1])
            #expect(try await server.request(.GET, "/admin/apps/data/docs", token: reader).json["items"] == [["name": "items", "count": 3]])
            let page = try await server.request(.GET, "/admin/apps/data/docs/items?limit=2&sort=-n", token: reader)
            #expect(page.json["items"] == [["id": "i3", "n": 3], ["id": "i2", "n": 2]])
            let cursor = try #require(page.json["next"]?.stringValue)
            #expect(try await server.request(.GET, "/admin/apps/data/docs/items?limit=2&sort=-n&after=\(cursor)", token: reader).json["items"] == [["id": "i1", "n": 1]])
            #expect(try await server.request(.GET, "/admin/apps/data/docs/items/i2", token: reader).json == ["id": "i2", "n": 2])
            let svg = try await server.request(.GET, "/admin/apps/data/files/img/logo.svg", token: reader)
            #expect(svg.text == "<svg/>" && svg.headers.first(name: "Content-Type") == "image/svg+xml")
            #expect(try await server.request(.DELETE, "/admin/apps/data/kv/a%2Fb", token: reader).status == 403)
            #expect(try await server.request(.PUT, "/admin/apps/data/kv/new?ttl=60", json: ["v": true], token: writer).status == 204)
            #expect(try await server.request(.DELETE, "/admin/apps/data/kv/a/b", token: writer).status == 204)
            #expect(try await server.request(.DELETE, "/admin/apps/data/kv/a/b", token: writer).status == 404)
            #expect(try await server.request(.DELETE, "/admin/apps/data/docs/items/i1", token: writer).status == 204)
            #expect(try await server.request(.PUT, "/admin/apps/data/files/up.txt", body: Array("uploaded".utf8), contentType: "text/plain", token: writer).status == 201)
            #expect(try await server.request(.GET, "/admin/apps/data/files/up.txt", token: reader).text == "uploaded")
            #expect(try await server.request(.DELETE, "/admin/apps/data/files/up.txt", token: writer).status == 204)
            #expect(try await server.request(.GET, "/admin/apps/data/docs/items?limit=0", token: reader).status == 400)
            #expect(try await server.request(.GET, "/admin/apps/data/docs/items?after=garbage", token: reader).status == 400)
        }
    }

    @Test("logs: recent lines, filtered by level, and followed live over Server-Sent Events")
    func logs() async throws {
        try await Harness.run { server in
            try await server.deployHandler("logs", source: "return function(req) log.info('hello ' .. req.params.rest) return 'ok' end")
            try await server.call("logs", .GET, "/one")
            // App log lines are stored when their buffer is flushed: wait for it.
            try await RealtimeTests.eventually("the handler's line in the app's log") {
                try await server.request(.GET, "/admin/apps/logs/logs").text.contains("hello one")
            }
            #expect(try await server.request(.GET, "/admin/apps/logs/logs?level=error").json["items"] == [])
            #expect(try await server.request(.GET, "/admin/apps/logs/logs?level=loud").status == 400)

            var request = HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/admin/apps/logs/logs?follow=1")
            request.headers.add(name: "Authorization", value: "Bearer \(Harness.adminToken)")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "Content-Type") == "text/event-stream")
            let caller = Task { try await server.call("logs", .GET, "/two") }
            var seen = ""
            for try await buffer in response.body {
                seen += String(buffer: buffer)
                if seen.contains("hello two") { break }
            }
            _ = try await caller.value
            #expect(seen.contains("hello one") && seen.contains("hello two") && seen.contains("event: log"))
        }
    }
}
