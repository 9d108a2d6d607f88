import Foundation
import GRDB
import NIOCore
import LuaBridge
import NIOHTTP1
import Runtime
import Services
import Testing

/// Realtime end to end: registered topics, SSE subscriptions over real HTTP read by a raw client,
/// subscriber tokens, resume from the history, slow subscribers, rollbacks.
@Suite("Realtime: topics, SSE, tokens, resume")
struct RealtimeTests {
    static let manifest = """
        name = "rt"
        # Some tests publish hundreds of large events in one request: time enough on a busy machine.
        [limits]
        timeout_ms = 60000
        [[endpoints]]
        method = "POST"
        path = "/publish/:topic"
        handler = "handlers/publish.lua"
        [[endpoints]]
        method = "POST"
        path = "/token"
        handler = "handlers/token.lua"
        auth = "key"
        [[endpoints]]
        method = "POST"
        path = "/anonymous-token"
        handler = "handlers/token.lua"
        [[topics]]
        name = "room:lobby"
        external_subscribable = true
        auth_mode = "public"
        [[topics]]
        name = "private"
        external_subscribable = true
        [[topics]]
        name = "internal"
        [[topics]]
        name = "short"
        external_subscribable = true
        auth_mode = "public"
        history_events = 3
        [[topics]]
        name = "nohistory"
        external_subscribable = true
        auth_mode = "public"
        history_events = 0
        """

    static let files = [
        "handlers/publish.lua": """
            -- POST /publish/<topic>?n=&size=  publishes n messages (the JSON body, or {i=..} padded to size bytes)
            return function(req)
              local n = tonumber(req.query.n) or 1
              local size = tonumber(req.query.size) or 0
              local ids = {}
              for i = 1, n do
                local message = req.json or { i = i }
                if size > 0 then message = { i = i, pad = string.rep("x", size) } end
                ids[#ids + 1] = pubsub.publish(req.params.topic, message)
              end
              return { json = { ids = ids } }
            end
            """,
        "handlers/token.lua": """
            return function(req)
              local body = req.json or {}
              local token, expires_at = pubsub.subscriber_token(body.topics or { "private" }, body.ttl)
              return { json = { token = token, expires_at = expires_at } }
            end
            """,
    ]

    static func configure(_ configuration: inout RuntimeConfiguration) {
        configuration.heartbeatSeconds = 1
        configuration.realtimeCapacity = 16
    }

    /// Starts a server with the app deployed.
    static func run(configure: @escaping (inout RuntimeConfiguration) -> Void = RealtimeTests.configure, _ body: @escaping @Sendable (Harness) async throws -> Void) async throws {
        try await Harness.run(configure: configure) { server in
            let deployed = try await server.deploy("rt", manifest: manifest, files: files)
            #expect(deployed.status == 201, "\(deployed.text)")
            try await body(server)
        }
    }

    /// Publishes `n` messages on `topic` through the app; returns the event ids.
    @discardableResult
    static func publish(_ server: Harness, _ topic: String, n: Int = 1, size: Int = 0, json: LuaValue? = nil) async throws -> [String] {
        let encoded = topic.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? topic
        let answer = try await server.call("rt", .POST, "/publish/\(encoded)?n=\(n)&size=\(size)", json: json)
        #expect(answer.status == 200, "\(answer.text)")
        guard case .array(let ids)? = answer.json["ids"] else { return [] }
        return ids.compactMap(\.stringValue)
    }

    static func subscribe(_ server: Harness, _ topic: String, app: String = "rt", query: String = "", headers: [(String, String)] = [], reading: Bool = true) async throws -> SSEConnection {
        let path = "/apps/\(app)/realtime/\(topic.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? topic)\(query)"
        return try await SSEConnection.open(port: server.port, path: path, headers: headers, reading: reading)
    }

    /// A subscription that is live: the server has written its first bytes (the retry hint).
    static func live(_ server: Harness, _ topic: String, query: String = "", headers: [(String, String)] = []) async throws -> SSEConnection {
        let connection = try await subscribe(server, topic, query: query, headers: headers)
        #expect(connection.status == 200, "\(connection.body)")
        let first = await connection.next(timeout: .seconds(10))
        #expect(first?.retry == 2000, "expected the retry hint first, got \(String(describing: first))")
        if !headers.contains(where: { $0.0 == "Last-Event-ID" }), !query.contains("last_event_id") {
            #expect(first?.id != nil, "a new subscriber is told the id it starts after")
        }
        return connection
    }

    /// The next `count` events' ids.
    static func ids(_ connection: SSEConnection, _ count: Int, timeout: Duration = .seconds(10)) async -> [String] {
        var ids: [String] = []
        while ids.count < count, let event = await connection.nextEvent(timeout: timeout) {
            ids.append(event.id ?? "?")
        }
        return ids
    }

    static func metric(_ server: Harness, _ name: String) async throws -> Double? {
        let text = try await server.request(.GET, "/metrics", token: nil).text
        return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
    }

    /// Waits (up to 20 s) until `check` passes.
    static func eventually(_ what: String, _ check: () async throws -> Bool) async throws {
        for _ in 0..<400 {
            if try await check() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting for \(what)")
    }

    // MARK: Delivery

    @Test("a subscriber gets each event once, in order, with the id pubsub.publish returned and the publish time")
    func delivery() async throws {
        try await Self.run { server in
            let connection = try await Self.live(server, "room:lobby")
            #expect(connection.headers["content-type"] == "text/event-stream")
            #expect(connection.headers["cache-control"] == "no-cache")
            #expect(connection.headers["x-accel-buffering"] == "no")
            let before = Date().timeIntervalSince1970 * 1000
            let ids = try await Self.publish(server, "room:lobby", json: ["text": "hello", "n": 1])
            let more = try await Self.publish(server, "room:lobby", n: 3)
            #expect(ids == ["1"])
            #expect(more == ["2", "3", "4"])
            let first = await connection.nextEvent()
            #expect(first?.id == "1")
            #expect(first?.event == nil)
            let data = first?.json ?? [:]
            #expect(data["id"] as? String == "1")
            #expect(data["topic"] as? String == "room:lobby")
            #expect((data["message"] as? [String: Any])?["text"] as? String == "hello")
            let publishedAt = data["published_at"] as? Double ?? 0
            #expect(publishedAt >= before - 1000 && publishedAt <= Date().timeIntervalSince1970 * 1000 + 1000)
            #expect(await Self.ids(connection, 3) == ["2", "3", "4"])
            // Nothing else: no duplicates.
            #expect(await connection.nextEvent(timeout: .milliseconds(300)) == nil)
            await connection.close()
        }
    }

    @Test("a missing app, a missing topic and a topic that is not external all answer the same 404")
    func notFound() async throws {
        try await Self.run { server in
            let missingApp = try await Self.subscribe(server, "room:lobby", app: "nope")
            let missingTopic = try await Self.subscribe(server, "nothing-here")
            let internalTopic = try await Self.subscribe(server, "internal")
            let badName = try await Self.subscribe(server, "a*b")
            for answer in [missingApp, missingTopic, internalTopic, badName] {
                #expect(answer.status == 404)
                #expect(answer.body == missingApp.body)
            }
            #expect(missingApp.body.contains("not_found"))
            // A registered topic that is not external stays private even to a valid token.
            let key = try await server.key("rt", ["invoke"])
            let token = try await server.call("rt", .POST, "/token", json: ["topics": ["internal"]], token: key).json["token"]?.stringValue ?? ""
            let withToken = try await Self.subscribe(server, "internal", query: "?token=\(token)")
            #expect(withToken.status == 404)
            #expect(withToken.body == missingApp.body)
        }
    }

    // MARK: Tokens

    @Test("token topics: a missing, garbage, tampered, expired, other-app or other-topic token all get the same 401; header and query tokens work")
    func tokens() async throws {
        try await Self.run { server in
            let key = try await server.key("rt", ["invoke"])
            let issued = try await server.call("rt", .POST, "/token", json: ["topics": ["private"]], token: key)
            #expect(issued.status == 200, "\(issued.text)")
            let token = issued.json["token"]?.stringValue ?? ""
            #expect(token.hasPrefix("pct_"))

            // Valid: in the header, and in the query (EventSource cannot set headers).
            let byHeader = try await Self.live(server, "private", headers: [("Authorization", "Bearer \(token)")])
            let byQuery = try await Self.live(server, "private", query: "?token=\(token)")
            try await Self.publish(server, "private", json: ["secret": true])
            #expect(await byHeader.nextEvent()?.id == "1")
            #expect(await byQuery.nextEvent()?.id == "1")
            await byHeader.close()
            await byQuery.close()

            // Another app with the same topic name and its own token.
            try await server.deploy("other", manifest: Self.manifest.replacingOccurrences(of: "name = \"rt\"", with: "name = \"other\""), files: Self.files)
            let otherKey = try await server.key("other", ["invoke"])
            let otherToken = try await server.call("other", .POST, "/token", json: ["topics": ["private"]], token: otherKey).json["token"]?.stringValue ?? ""
            #expect(otherToken.hasPrefix("pct_"))
            // A token for another topic of the same app.
            let shortToken = try await server.call("rt", .POST, "/token", json: ["topics": ["short"]], token: key).json["token"]?.stringValue ?? ""
            // Expired (past the clock-skew allowance) and not yet valid, signed with the app's real key.
            let signingKey = try await Self.signingKey(server, app: "rt")
            let now = Int64(Date().timeIntervalSince1970)
            let expired = SubscriberToken.encode(SubscriberClaims(app: "rt", topics: ["private"], subject: "t", issuedAt: now - 100, expiresAt: now - 30), key: signingKey)
            let future = SubscriberToken.encode(SubscriberClaims(app: "rt", topics: ["private"], subject: "t", issuedAt: now + 600, expiresAt: now + 1200), key: signingKey)
            // Claims for app "rt" signed with the other app's key.
            let forged = SubscriberToken.encode(SubscriberClaims(app: "rt", topics: ["private"], subject: "t", issuedAt: now, expiresAt: now + 600), key: try await Self.signingKey(server, app: "other"))
            var tampered = Array(token.utf8)
            tampered[10] = tampered[10] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")

            let missing = try await Self.subscribe(server, "private")
            #expect(missing.status == 401)
            #expect(missing.body.contains("unauthorized"))
            let attempts: [(String, [(String, String)], String)] = [
                ("garbage", [("Authorization", "Bearer nonsense")], ""),
                ("garbage query", [], "?token=pct_AAAA.BBBB"),
                ("an API key", [("Authorization", "Bearer \(key)")], ""),
                ("tampered", [], "?token=\(String(decoding: tampered, as: UTF8.self))"),
                ("expired", [], "?token=\(expired)"),
                ("not yet valid", [], "?token=\(future)"),
                ("other app", [], "?token=\(otherToken)"),
                ("forged", [], "?token=\(forged)"),
                ("other topic", [], "?token=\(shortToken)"),
            ]
            for (what, headers, query) in attempts {
                let answer = try await Self.subscribe(server, "private", query: query, headers: headers)
                #expect(answer.status == 401, "\(what)")
                #expect(answer.body == missing.body, "\(what): \(answer.body)")
            }
            // The other app's own subscription works with its token.
            let other = try await SSEConnection.open(port: server.port, path: "/apps/other/realtime/private?token=\(otherToken)")
            #expect(other.status == 200)
            await other.close()
        }
    }

    /// The app's signing key, read from the store the way the server reads it.
    static func signingKey(_ server: Harness, app: String) async throws -> [UInt8] {
        let storage = try SQLiteStorage(path: server.dataDirectory + "/picloud.sqlite")
        let master = try SecretService.masterKey(environment: nil, dataDirectory: server.dataDirectory)
        return try await TopicService(storage: storage, masterKey: master).signingKey(app: app)
    }

    @Test("pubsub.subscriber_token: anonymous callers and unregistered topics get a script error; lifetimes are clamped")
    func tokenIssuing() async throws {
        try await Self.run(configure: { configuration in
            configuration.subscriberTokenLifetime = SubscriberTokenLifetime(minimum: 30, maximum: 600, standard: 120)
        }) { server in
            // Callers who are not the app's admins see no script errors: read them in the app's log.
            let anonymous = try await server.call("rt", .POST, "/anonymous-token", json: ["topics": ["private"]])
            #expect(anonymous.status == 500)
            let key = try await server.key("rt", ["invoke"])
            let unregistered = try await server.call("rt", .POST, "/token", json: ["topics": ["private", "ghost"]], token: key)
            #expect(unregistered.status == 500)
            try await Self.eventually("the script errors in the log") {
                let log = try await server.request(.GET, "/admin/apps/rt/logs?level=error").text
                return log.contains("pubsub.subscriber_token: the caller is anonymous") && log.contains("topic 'ghost' is not registered")
            }
            let none = try await server.call("rt", .POST, "/token", json: ["topics": .array([])], token: key)
            #expect(none.status == 500)
            for (asked, expected) in [(nil, 120), (5, 30), (100, 100), (100_000, 600)] as [(Int64?, Int64)] {
                var body: [String: LuaValue] = ["topics": ["private", "room:lobby"]]
                if let asked { body["ttl"] = .integer(asked) }
                let before = Int64(Date().timeIntervalSince1970.rounded(.down))
                let answer = try await server.call("rt", .POST, "/token", json: .object(body), token: key)
                let after = Int64(Date().timeIntervalSince1970.rounded(.up))
                let expiresAt = answer.json["expires_at"]?.integerValue ?? 0
                #expect((before + expected - 1...after + expected + 1).contains(expiresAt), "ttl \(String(describing: asked)) → \(expiresAt - before) s")
            }
        }
    }

    @Test("a stream opened with a token ends with an expired event when the token runs out")
    func tokenExpiry() async throws {
        try await Self.run(configure: { configuration in
            Self.configure(&configuration)
            configuration.subscriberTokenLifetime = SubscriberTokenLifetime(minimum: 1, maximum: 60, standard: 30)
        }) { server in
            let key = try await server.key("rt", ["invoke"])
            // Before the token is issued: its expiry counts from then, however long the stream takes to open on a busy machine.
            var started = ContinuousClock.now
            var connection: SSEConnection?
            // A one-second token can run out before its stream opens on a machine loaded by the
            // other tests (answered 401, as it should be): then again with a fresh one, a few times.
            for _ in 0..<4 {
                started = ContinuousClock.now
                let token = try await server.call("rt", .POST, "/token", json: ["topics": ["private"], "ttl": 1], token: key).json["token"]?.stringValue ?? ""
                let opened = try await Self.subscribe(server, "private", query: "?token=\(token)")
                connection = opened
                if opened.status == 200 || ContinuousClock.now - started < .seconds(1) { break }
                await opened.close()
            }
            let stream = try #require(connection)
            #expect(stream.status == 200, "\(stream.body)")
            let first = await stream.next(timeout: .seconds(10))
            #expect(first?.retry == 2000 && first?.id != nil, "expected the retry hint and the starting id first, got \(String(describing: first))")
            let end = await stream.nextEvent(timeout: .seconds(20))
            #expect(end?.event == "expired")
            #expect(ContinuousClock.now - started >= .seconds(4), "ends after the expiry plus the clock-skew allowance")
            #expect(await stream.next(timeout: .seconds(5)) == nil, "then the stream ends")
        }
    }

    // MARK: Heartbeats

    @Test("heartbeat comments arrive at the configured interval while nothing is published")
    func heartbeats() async throws {
        try await Self.run { server in
            // Timed from before the stream opens: the server cannot have sent three beats a second
            // apart sooner, however late this client gets to read them (on a loaded machine they
            // can arrive together).
            let started = ContinuousClock.now
            let connection = try await Self.live(server, "room:lobby")
            var beats = 0
            // Generous waits: the other tests load the machine and its event loops (the default
            // interval, 30 s, would still fail the bound below).
            while beats < 3, let item = await connection.next(timeout: .seconds(15)) {
                #expect(item.comment == "heartbeat", "\(item)")
                beats += 1
            }
            #expect(beats == 3)
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .milliseconds(1500) && elapsed < .seconds(25), "3 heartbeats 1 s apart took \(elapsed)")
            await connection.close()
        }
    }

    // MARK: Resume

    @Test("Last-Event-ID (header or query) replays exactly the missed events, then continues live with no duplicate and no hole")
    func resume() async throws {
        try await Self.run { server in
            try await Self.publish(server, "room:lobby", n: 10)
            // Header: missed 6...10, then live.
            let byHeader = try await Self.live(server, "room:lobby", headers: [("Last-Event-ID", "5")])
            #expect(await Self.ids(byHeader, 5) == ["6", "7", "8", "9", "10"])
            try await Self.publish(server, "room:lobby", n: 2)
            #expect(await Self.ids(byHeader, 2) == ["11", "12"])
            #expect(await byHeader.nextEvent(timeout: .milliseconds(300)) == nil)
            await byHeader.close()
            // Query, and an up-to-date client gets nothing old.
            let byQuery = try await Self.live(server, "room:lobby", query: "?last_event_id=11")
            #expect(await Self.ids(byQuery, 1) == ["12"])
            let current = try await Self.live(server, "room:lobby", headers: [("Last-Event-ID", "12")])
            #expect(await current.nextEvent(timeout: .milliseconds(300)) == nil)
            try await Self.publish(server, "room:lobby")
            #expect(await Self.ids(byQuery, 1) == ["13"])
            #expect(await Self.ids(current, 1) == ["13"])
            // A malformed id is refused.
            let malformed = try await Self.subscribe(server, "room:lobby", headers: [("Last-Event-ID", "abc")])
            #expect(malformed.status == 400)
        }
    }

    @Test("resuming while events keep coming switches from history to live without a duplicate or a hole")
    func resumeUnderLoad() async throws {
        try await Self.run { server in
            try await Self.publish(server, "room:lobby", n: 50)
            let publisher = Task { try await Self.publish(server, "room:lobby", n: 400) }
            var connections: [SSEConnection] = []
            for resumeAt in [0, 10, 25, 49] {
                connections.append(try await Self.live(server, "room:lobby", headers: [("Last-Event-ID", String(resumeAt))]))
                try await Task.sleep(for: .milliseconds(20))
            }
            _ = try await publisher.value
            for (connection, resumeAt) in zip(connections, [0, 10, 25, 49]) {
                let ids = await Self.ids(connection, 450 - resumeAt)
                #expect(ids == (resumeAt + 1...450).map(String.init), "resumed at \(resumeAt): \(ids.count) events, first \(ids.first ?? "-"), last \(ids.last ?? "-")")
                #expect(await connection.nextEvent(timeout: .milliseconds(200)) == nil)
                await connection.close()
            }
        }
    }

    @Test("a resume from before what the history keeps gets a gap event, then the kept events")
    func resumeBeyondHistory() async throws {
        try await Self.run { server in
            try await Self.publish(server, "short", n: 10) // keeps 8, 9, 10
            let connection = try await Self.live(server, "short", headers: [("Last-Event-ID", "2")])
            let gap = await connection.nextEvent()
            #expect(gap?.event == "gap")
            #expect(gap?.id == "7", "the gap's id moves the client past what it cannot get")
            #expect(gap?.json["from"] as? String == "3")
            #expect(gap?.json["to"] as? String == "7")
            #expect(gap?.json["missed"] as? Int == 5)
            #expect(gap?.json["reason"] as? String == "history_exceeded")
            #expect(await Self.ids(connection, 3) == ["8", "9", "10"])
            // An id the topic never gave (it was registered again since): told so, then live.
            let unknown = try await Self.live(server, "short", headers: [("Last-Event-ID", "500")])
            let reset = await unknown.nextEvent()
            #expect(reset?.event == "gap")
            #expect(reset?.json["reason"] as? String == "unknown_event_id")
            #expect(reset?.id == "10")
            try await Self.publish(server, "short")
            #expect(await Self.ids(unknown, 1) == ["11"])
        }
    }

    // MARK: Slow subscribers

    @Test("a slow subscriber on a topic without history loses its oldest events and is told exactly which")
    func slowSubscriberGap() async throws {
        try await Self.run { server in
            let slow = try await Self.subscribe(server, "nohistory", reading: false)
            #expect(slow.status == 200)
            // 300 events of 64 KiB: far more than the socket buffers and the 16 the channel keeps.
            let total = 300
            try await Self.publish(server, "nohistory", n: total, size: 64 << 10)
            slow.startReading()
            var received: [Int] = []
            var gaps: [ClosedRange<Int>] = []
            while let event = await slow.nextEvent(timeout: .seconds(10)) {
                if event.event == "gap" {
                    let from = Int(event.json["from"] as? String ?? "") ?? 0
                    let to = Int(event.json["to"] as? String ?? "") ?? 0
                    #expect(event.json["reason"] as? String == "history_exceeded")
                    gaps.append(from...to)
                } else if let id = event.id.flatMap(Int.init) {
                    received.append(id)
                }
                if received.last == total { break }
            }
            #expect(!gaps.isEmpty, "the slow subscriber was told it lost events")
            // Every id is either received or inside a gap it was told about, in order, never twice.
            var expected = 1
            var gapIndex = 0
            for id in received {
                while gapIndex < gaps.count, gaps[gapIndex].lowerBound == expected {
                    expected = gaps[gapIndex].upperBound + 1
                    gapIndex += 1
                }
                #expect(id == expected, "got \(id), expected \(expected)")
                expected = id + 1
            }
            #expect(received.last == total)
            #expect(try await Self.metric(server, "picloud_realtime_events_dropped_total") ?? 0 >= Double(gaps.map(\.count).reduce(0, +)))
            await slow.close()
        }
    }

    @Test("a slow subscriber on a topic with history catches up from it and loses nothing")
    func slowSubscriberCatchesUp() async throws {
        try await Self.run { server in
            let slow = try await Self.subscribe(server, "room:lobby", reading: false)
            #expect(slow.status == 200)
            let total = 300
            try await Self.publish(server, "room:lobby", n: total, size: 64 << 10)
            slow.startReading()
            let ids = await Self.ids(slow, total, timeout: .seconds(30))
            #expect(ids == (1...total).map(String.init), "\(ids.count) events")
            #expect(try await Self.metric(server, "picloud_realtime_replayed_events_total") ?? 0 > 0)
            await slow.close()
        }
    }

    // MARK: Rollback

    @Test("a publish whose transaction rolls back reaches no subscriber and uses no id")
    func rollback() async throws {
        try await Self.run { server in
            let connection = try await Self.live(server, "room:lobby")
            // Fault injection in the real store: make the history insert fail for one message.
            let database = try DatabaseQueue(path: server.dataDirectory + "/picloud.sqlite")
            try await database.write { db in
                try db.execute(sql: """
                    CREATE TRIGGER fail_publish BEFORE INSERT ON topic_events WHEN NEW.message LIKE '%"fail":true%'
                    BEGIN SELECT RAISE(ABORT, 'injected failure'); END
                    """)
            }
            try await Self.publish(server, "room:lobby", json: ["n": 1])
            let failed = try await server.call("rt", .POST, "/publish/room%3Alobby", json: ["fail": true])
            #expect(failed.status == 500)
            try await Self.publish(server, "room:lobby", json: ["n": 2])
            let first = await connection.nextEvent()
            let second = await connection.nextEvent()
            #expect(first?.id == "1")
            #expect(second?.id == "2", "the rolled-back publish took no id")
            #expect((second?.json["message"] as? [String: Any])?["n"] as? Int == 2)
            #expect(await connection.nextEvent(timeout: .milliseconds(300)) == nil)
            let history = try await server.request(.GET, "/admin/apps/rt/topics/room%3Alobby/events")
            #expect(history.json["items"]?.arrayValue?.count == 2)
            try await database.write { db in try db.execute(sql: "DROP TRIGGER fail_publish") }
            try database.close()
        }
    }

    // MARK: Many subscribers

    @Test("1,000 concurrent subscribers on one topic all receive every event, in order")
    func thousandSubscribers() async throws {
        try await Self.run { server in
            let count = 1000
            let connections = try await withThrowingTaskGroup(of: SSEConnection.self) { group in
                for index in 0..<count {
                    group.addTask { try await Self.live(server, "room:lobby") }
                    if index % 100 == 99 { try await Task.sleep(for: .milliseconds(10)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(connections.count == count)
            try await Self.eventually("every subscriber counted") { try await Self.metric(server, "picloud_realtime_subscribers") == Double(count) }
            let events = 20
            for _ in 0..<events { try await Self.publish(server, "room:lobby") }
            let results = await withTaskGroup(of: [String].self) { group in
                for connection in connections { group.addTask { await Self.ids(connection, events, timeout: .seconds(30)) } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let expected = (1...events).map(String.init)
            #expect(results.filter { $0 == expected }.count == count, "subscribers with every event in order")
            for connection in connections { await connection.close() }
            // Closed connections are noticed at the next heartbeat; then the channel goes away.
            try await Self.eventually("subscribers gone") { try await Self.metric(server, "picloud_realtime_subscribers") == 0 }
            #expect(try await Self.metric(server, "picloud_realtime_channels") == 0)
        }
    }

    // MARK: Topic administration

    @Test("topics through the admin API: create, list, get, flip external only by PATCH, delete; streams end when a topic closes")
    func adminTopics() async throws {
        try await Self.run { server in
            let created = try await server.request(.POST, "/admin/apps/rt/topics", json: ["name": "news/today", "auth_mode": "public", "history_events": 50])
            #expect(created.status == 201, "\(created.text)")
            #expect(created.json["external_subscribable"] == .boolean(false))
            #expect(created.json["source"] == "api")
            #expect(created.json["history_events"] == .integer(50))
            #expect(created.json["subscribe_path"] == "/apps/rt/realtime/news%2Ftoday")
            #expect(try await server.request(.POST, "/admin/apps/rt/topics", json: ["name": "news/today"]).status == 409)
            for bad in [["name": ""], ["name": "a*"], ["name": .string(String(repeating: "x", count: 129))], ["name": "x", "auth_mode": "open"],
                        ["name": "x", "history_events": -1], ["name": "x", "externl": true]] as [LuaValue] {
                let answer = try await server.request(.POST, "/admin/apps/rt/topics", json: bad)
                #expect(answer.status == 400, "\(bad)")
                #expect(answer.errorCode == "invalid_input")
            }
            let list = try await server.request(.GET, "/admin/apps/rt/topics")
            #expect(list.json["items"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["internal", "news/today", "nohistory", "private", "room:lobby", "short"])
            #expect(try await server.request(.GET, "/admin/apps/rt/topics/news%2Ftoday").json["name"] == "news/today")
            #expect(try await server.request(.GET, "/admin/apps/rt/topics/ghost").status == 404)

            // Not external yet: 404. PATCH flips it; then a subscriber is served.
            #expect(try await Self.subscribe(server, "news/today").status == 404)
            let flipped = try await server.request(.PATCH, "/admin/apps/rt/topics/news%2Ftoday/external", json: ["external_subscribable": true])
            #expect(flipped.json["external_subscribable"] == .boolean(true))
            let reader = try await server.key("rt", ["app:read"])
            #expect(try await server.request(.PATCH, "/admin/apps/rt/topics/news%2Ftoday/external", json: ["external_subscribable": false], token: reader).status == 403)
            let connection = try await Self.live(server, "news/today")
            try await Self.publish(server, "news/today")
            #expect(await Self.ids(connection, 1) == ["1"])
            // Flipping it back ends the stream, with a reason.
            _ = try await server.request(.PATCH, "/admin/apps/rt/topics/news%2Ftoday/external", json: ["external_subscribable": false])
            let closed = await connection.nextEvent()
            #expect(closed?.event == "closed")
            #expect(closed?.json["reason"] as? String == "topic_not_subscribable")
            #expect(await connection.next(timeout: .seconds(3)) == nil)

            // Manifest topics are removed in the manifest, not through the API.
            let manifestDelete = try await server.request(.DELETE, "/admin/apps/rt/topics/room%3Alobby")
            #expect(manifestDelete.status == 409)
            #expect(try await server.request(.DELETE, "/admin/apps/rt/topics/news%2Ftoday").status == 204)
            #expect(try await server.request(.GET, "/admin/apps/rt/topics/news%2Ftoday").status == 404)
        }
    }

    @Test("deployments keep manifest topics in step: the external flag stays as stored, removed topics end their streams")
    func manifestTopics() async throws {
        try await Self.run { server in
            // An admin turns a manifest topic off; a redeploy of the same manifest does not turn it back on.
            _ = try await server.request(.PATCH, "/admin/apps/rt/topics/short/external", json: ["external_subscribable": false])
            let lobby = try await Self.live(server, "room:lobby")
            try await Self.publish(server, "room:lobby", n: 2)
            let redeployed = try await server.deploy("rt", manifest: Self.manifest.replacingOccurrences(of: """
                [[topics]]
                name = "room:lobby"
                external_subscribable = true
                auth_mode = "public"
                """, with: ""), files: Self.files, create: false)
            #expect(redeployed.status == 201, "\(redeployed.text)")
            #expect(try await server.request(.GET, "/admin/apps/rt/topics/short").json["external_subscribable"] == .boolean(false))
            #expect(try await server.request(.GET, "/admin/apps/rt/topics/room%3Alobby").status == 404)
            #expect(await Self.ids(lobby, 2) == ["1", "2"])
            let closed = await lobby.nextEvent()
            #expect(closed?.event == "closed")
            #expect(closed?.json["reason"] as? String == "topic_deleted")
            // App log lines are stored when their buffer is flushed: wait for it.
            try await Self.eventually("the deploy's warning in the app's log") {
                try await server.request(.GET, "/admin/apps/rt/logs?level=warn").text.contains("external_subscribable in picloud.toml differs")
            }
            // A publish on a topic no longer registered still feeds triggers but keeps no history.
            let ids = try await Self.publish(server, "room:lobby")
            #expect(ids.first?.hasPrefix("evt_") == true)
            // Bad [[topics]] entries are refused with the reason.
            let refused = try await server.deploy("rt", manifest: Self.manifest + "\n[[topics]]\nname = \"a*b\"\nauth_mode = \"secret\"\n", files: Self.files, create: false)
            #expect(refused.status == 400)
            #expect(refused.text.contains("topics[6].name"))
            #expect(refused.text.contains("topics[6].auth_mode"))
        }
    }

    @Test("the same connection keeps serving: requests pipelined around a subscription are answered in order")
    func pipelining() async throws {
        try await Self.run { server in
            // A refused subscription, then an ordinary request on the same connection.
            let refused = try await rawExchange(port: server.port, "GET /apps/rt/realtime/ghost HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let notFound = try #require(refused.range(of: "HTTP/1.1 404"))
            let ok = try #require(refused.range(of: "HTTP/1.1 200"), "\(refused)")
            #expect(notFound.lowerBound < ok.lowerBound)
            #expect(refused.contains("\"status\":\"ok\""))
            // An ordinary request, then a subscription behind it: both answered, the stream last.
            let streamed = try await rawExchange(port: server.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /apps/rt/realtime/room%3Alobby HTTP/1.1\r\nHost: x\r\n\r\n", timeout: .seconds(20))
            let health = try #require(streamed.range(of: "\"status\":\"ok\""), "\(streamed)")
            let stream = try #require(streamed.range(of: "text/event-stream"), "\(streamed)")
            #expect(health.lowerBound < stream.lowerBound)
            #expect(streamed.contains("retry: 2000"))
        }
    }

    @Test("a subscriber that sends garbage loses its stream, and the server keeps serving")
    func garbage() async throws {
        try await Self.run { server in
            let connection = try await Self.live(server, "room:lobby")
            try await connection.channel.writeAndFlush(ByteBuffer(string: "\u{1}\u{2} this is not HTTP\r\n\r\n")).get()
            // A heartbeat may still be on its way (one a second here); nothing else comes, and the stream ends.
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline, let item = await connection.next(timeout: .seconds(3)) {
                #expect(item.comment != nil, "only a heartbeat may come before the end: \(item)")
            }
            try await Self.eventually("the connection closed") { !connection.channel.isActive }
            try await Self.eventually("the subscriber forgotten") { try await Self.metric(server, "picloud_realtime_subscribers") == 0 }
            let other = try await Self.live(server, "room:lobby")
            try await Self.publish(server, "room:lobby")
            #expect(await Self.ids(other, 1) == ["1"])
        }
    }

    @Test("a stream keeps reading its connection: a subscriber is forgotten when it leaves or sends garbage, without a heartbeat")
    func reading() async throws {
        // No heartbeat for ten minutes: no failed write can end a stream here.
        try await Self.run(configure: { configuration in
            Self.configure(&configuration)
            configuration.heartbeatSeconds = 600
        }) { server in
            let quiet = try await Self.live(server, "room:lobby")
            let chatty = try await Self.live(server, "room:lobby")
            // A request behind a subscription is not served; the stream goes on.
            try await chatty.channel.writeAndFlush(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")).get()
            try await Self.publish(server, "room:lobby")
            #expect(await Self.ids(chatty, 1) == ["1"])
            #expect(await Self.ids(quiet, 1) == ["1"])
            #expect(try await Self.metric(server, "picloud_realtime_subscribers") == 2)
            // Read after what it read before: the garbage ends the stream.
            try await chatty.channel.writeAndFlush(ByteBuffer(string: "\u{1}\u{2} this is not HTTP\r\n\r\n")).get()
            try await Self.eventually("the garbage's stream closed") { !chatty.channel.isActive }
            try await Self.eventually("its subscriber forgotten") { try await Self.metric(server, "picloud_realtime_subscribers") == 1 }
            await quiet.close()
            try await Self.eventually("the one that left forgotten") { try await Self.metric(server, "picloud_realtime_subscribers") == 0 }
        }
    }

    @Test("the realtime metrics are exported")
    func metrics() async throws {
        try await Self.run { server in
            let connection = try await Self.live(server, "room:lobby", headers: [("Last-Event-ID", "0")])
            try await Self.publish(server, "room:lobby")
            #expect(await Self.ids(connection, 1) == ["1"])
            let names = ["picloud_realtime_subscribers 1", "picloud_realtime_channels 1", "picloud_realtime_events_broadcast_total 1",
                         "picloud_realtime_events_delivered_total 1", "picloud_realtime_replays_total 1", "picloud_realtime_events_dropped_total 0"]
            // The server counts a delivery after writing it: the client can have the event first.
            var text = ""
            try await Self.eventually("the realtime metrics") {
                text = try await server.request(.GET, "/metrics", token: nil).text
                return names.allSatisfy { text.contains($0) }
            }
            for name in names {
                #expect(text.contains(name), "\(name)")
            }
            await connection.close()
        }
    }
}
