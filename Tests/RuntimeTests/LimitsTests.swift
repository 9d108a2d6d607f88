import AsyncHTTPClient
import Foundation
import LuaBridge
import NIOCore
import NIOHTTP1
import Runtime
import Testing

/// Limits that keep one client or one app from taking the server: each is enforced with a 4xx or
/// a 503 and leaves what already runs alone.
@Suite("Limits under pressure")
struct LimitsTests {
    @Test("event streams: 429 past the per-client limit, 503 past the per-app and server limits; open streams keep receiving")
    func streamLimits() async throws {
        try await RealtimeTests.run(configure: {
            RealtimeTests.configure(&$0)
            $0.subscriberLimits = .init(total: 100, perApp: 100, perClient: 3)
        }) { server in
            var open: [SSEConnection] = []
            for _ in 0..<3 { open.append(try await RealtimeTests.live(server, "room:lobby")) }
            let refused = try await RealtimeTests.subscribe(server, "room:lobby")
            #expect(refused.status == 429, "\(refused.body)")
            #expect(refused.body.contains("rate_limited") && refused.headers["retry-after"] == "5")
            _ = try await RealtimeTests.publish(server, "room:lobby")
            for connection in open { #expect(await RealtimeTests.ids(connection, 1) == ["1"]) }
            // A stream that ends frees its place.
            await open.removeLast().close()
            try await RealtimeTests.eventually("the place freed") {
                let again = try await RealtimeTests.subscribe(server, "room:lobby")
                defer { Task { await again.close() } }
                return again.status == 200
            }
        }
        try await RealtimeTests.run(configure: {
            RealtimeTests.configure(&$0)
            $0.subscriberLimits = .init(total: 3, perApp: 2, perClient: 100)
        }) { server in
            let first = try await RealtimeTests.live(server, "room:lobby")
            _ = try await RealtimeTests.live(server, "room:lobby")
            let appFull = try await RealtimeTests.subscribe(server, "room:lobby")
            #expect(appFull.status == 503 && appFull.body.contains("this app has as many event streams"), "\(appFull.body)")
            try await server.deployHandler("other", source: "return function() return 'x' end", extra: [:])
            let manifest = "name = \"other\"\n[[topics]]\nname = \"news\"\nexternal_subscribable = true\nauth_mode = \"public\"\n"
            #expect(try await server.deploy("other", manifest: manifest, files: [:], create: false).status == 201)
            _ = try await RealtimeTests.subscribe(server, "news", app: "other")
            let serverFull = try await RealtimeTests.subscribe(server, "news", app: "other")
            #expect(serverFull.status == 503 && serverFull.body.contains("this server holds as many"), "\(serverFull.body)")
            _ = try await RealtimeTests.publish(server, "room:lobby")
            #expect(await RealtimeTests.ids(first, 1) == ["1"])
        }
    }

    @Test("a flood of slow requests is shed with 503 and Retry-After instead of queueing; the app serves again after")
    func flood() async throws {
        try await Harness.run(configure: { $0.maxConcurrentRequestsPerApp = 8 }) { server in
            try await server.deployHandler("busy", source: """
                return function(req)
                  if req.path == '/quick' then return 'quick' end
                  for i = 1, 20 do kv.set('k' .. (i % 4), i) end
                  return 'slow done'
                end
                """)
            // A client with as many connections as requests: all 120 arrive at once.
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 200
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for _ in 0..<120 {
                    group.addTask {
                        var request = HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/apps/busy/api/slow")
                        request.method = .POST
                        let response = try await client.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        return (Int(response.status.code), response.headers.first(name: "Retry-After"))
                    }
                }
                var all: [(Int, String?)] = []
                for try await answer in group { all.append(answer) }
                return all
            }
            try await client.shutdown()
            let served = statuses.filter { $0.0 == 200 }.count
            let shed = statuses.filter { $0.0 == 503 }
            #expect(served + shed.count == 120, "every request answered: \(Set(statuses.map(\.0)))")
            #expect(served >= 8)
            #expect(!shed.isEmpty, "some requests are shed")
            #expect(shed.allSatisfy { $0.1 == "1" })
            #expect(try await server.call("busy", .GET, "/quick").text == "quick")
        }
    }

    @Test("oversized and malformed requests get a 4xx in the error shape and a closed connection: 414, 431, 400; deep JSON 400, big bodies 413")
    func requestLimits() async throws {
        try await Harness.run(configure: { $0.maxBodyBytes = 4096 }) { server in
            try await server.deployHandler("lim", source: "return function(req) return { json = { depth = req.json and 1 or 0 } } end")
            func exchange(_ request: String) async throws -> (status: Int, code: String?) {
                let text = try await rawExchange(port: server.port, request)
                let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
                let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined()
                return (status, (try? LuaJSON.decode(Array(body.utf8)))?["error"]?["code"]?.stringValue)
            }
            let longTarget = try await exchange("GET /apps/lim/api/" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(longTarget.status == 414 && longTarget.code == "invalid_input")
            let bigHeader = try await exchange("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 90_000) + "\r\n\r\n")
            #expect(bigHeader.status == 431 && bigHeader.code == "invalid_input")
            let manyHeaders = try await exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n" + (0..<1100).map { "X-\($0): a\r\n" }.joined() + "\r\n")
            #expect(manyHeaders.status == 431)
            let garbage = try await exchange("NOT HTTP AT ALL\r\n\r\n")
            #expect(garbage.status == 400 && garbage.code == "invalid_input")
            let badLength = try await exchange("POST /apps/lim/api/x HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
            #expect(badLength.status == 400 && badLength.code == "invalid_input")
            let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
            let deepAnswer = try await server.request(.POST, "/apps/lim/api/x", body: Array(deep.utf8), contentType: "application/json", token: nil)
            #expect(deepAnswer.status == 400 && deepAnswer.errorMessage.contains("malformed JSON body"), "\(deepAnswer.text)")
            let big = try await server.request(.POST, "/apps/lim/api/x", body: Array(repeating: 65, count: 5000), contentType: "text/plain", token: nil)
            #expect(big.status == 413 && big.errorCode == "payload_too_large")
            // The server keeps serving.
            #expect(try await server.call("lim", .GET, "/x").json == ["depth": 0])
        }
    }
}
