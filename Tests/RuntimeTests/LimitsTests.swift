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
}
