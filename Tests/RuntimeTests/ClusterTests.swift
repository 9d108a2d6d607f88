import Foundation
import LuaBridge
import NIOHTTP1
import TestSupport
import Testing

/// Three `picloud serve` processes on one PostgreSQL database, as users run several nodes.
/// Needs the test server of scripts/with-postgres.sh (`make test` starts it); without
/// `PICLOUD_TEST_DATABASE_URL` these tests do nothing (and the CI check in ServicesTests fails).
@Suite("Several nodes on one PostgreSQL database", .serialized)
struct ClusterTests {
    typealias Server = ProcessTests.Server

    static var serverURL: String? {
        ProcessInfo.processInfo.environment["PICLOUD_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A cluster of `count` nodes on a new database, sharing one master key.
    struct Cluster {
        let nodes: [Server]
        let url: String

        init(count: Int = 3, environment: [String: String] = [:]) async throws {
            guard let server = ClusterTests.serverURL else { throw HarnessError(message: "no PostgreSQL test server") }
            let name = "picloud_cluster_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
            let created = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["psql", server, "-qc", "CREATE DATABASE \(name)"])
            guard created.status == 0 else { throw HarnessError(message: "psql: \(created.output)") }
            var components = URLComponents(string: server)!
            components.path = "/" + name
            url = components.string!
            var environment = environment
            environment["PICLOUD_MASTER_KEY"] = String(repeating: "ab", count: 32)
            // The first node migrates; the others start at the same time and wait for it.
            nodes = try await withThrowingTaskGroup(of: (Int, Server).self) { [url, environment] group in
                for index in 0..<count {
                    group.addTask {
                        (index, try await Server(dataDirectory: ProcessTests.freshDirectory(), extraArguments: ["--database-url", url], extraEnvironment: environment))
                    }
                }
                return try await group.reduce(into: [Server?](repeating: nil, count: count)) { $0[$1.0] = $1.1 }.map { $0! }
            }
        }

        /// Deploys on the first node, then waits until every node serves `probe`.
        func deploy(_ app: String, manifest: String, files: [String: String], probe: String) async throws {
            #expect(try await nodes[0].request(.POST, "/admin/apps", json: ["name": .string(app)]).status == 201)
            let answer = try await nodes[0].request(.PUT, "/admin/apps/\(app)/deployment", json: ["manifest": .string(manifest), "files": .object(files.mapValues(LuaValue.string))])
            try #require(answer.status == 201, "deploy: \(answer.json)")
            for node in nodes {
                let deadline = ContinuousClock.now + .seconds(20)
                while try await node.request(.GET, probe).status == 404, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            }
        }

        func stop() async {
            for node in nodes where node.process.isRunning { _ = await node.stop(signal: SIGTERM) }
        }
    }

    static let counting = """
        return function()
          local count, total, after = 0, 0, nil
          repeat
            local items, next = kv.list("seen:", { limit = 1000, after = after })
            for _, item in ipairs(items) do
              count = count + 1
              total = total + item.value
            end
            after = next
          until not next
          return { json = { keys = count, deliveries = total } }
        end
        """

    static let jobs = """
        name = "jobs"
        [[endpoints]]
        method = "POST"
        path = "/enqueue/:from/:count"
        handler = "handlers/enqueue.lua"
        [[endpoints]]
        method = "GET"
        path = "/done"
        handler = "handlers/done.lua"
        [[triggers]]
        kind = "kv"
        prefix = "job:"
        ops = ["set"]
        handler = "handlers/work.lua"
        max_attempts = 20
        """

    /// Deploys the jobs app: `enqueue` writes job keys, whose trigger runs `work` with the event.
    func deployJobs(_ cluster: Cluster, work: String) async throws {
        try await cluster.deploy("jobs", manifest: Self.jobs, files: [
            "handlers/enqueue.lua": """
                return function(req)
                  local from = tonumber(req.params.from)
                  for i = from, from + tonumber(req.params.count) - 1 do kv.set("job:" .. i, i) end
                  return "ok"
                end
                """,
            "handlers/work.lua": "return function(event) \(work) end",
            "handlers/done.lua": Self.counting,
        ], probe: "/apps/jobs/api/done")
    }

    /// Writes `total` trigger events in requests of `batch` writes, through every node at once
    /// (one request at a time per node).
    func enqueue(_ cluster: Cluster, total: Int, batch: Int) async throws {
        let starts = Array(stride(from: 0, to: total, by: batch))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, node) in cluster.nodes.enumerated() {
                group.addTask {
                    for from in starts.enumerated().filter({ $0.offset % cluster.nodes.count == index }).map(\.element) {
                        let answer = try await node.request(.POST, "/apps/jobs/api/enqueue/\(from)/\(min(batch, total - from))")
                        #expect(answer.status == 200, "enqueue: \(answer.json)")
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Polls until `keys` distinct events were handled (or the deadline passes); returns the last count.
    func waitForDeliveries(_ node: Server, keys: Int, seconds: Int) async throws -> (keys: Int64, deliveries: Int64) {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            let answer = try await node.request(.GET, "/apps/jobs/api/done")
            let last = (keys: answer.json["keys"]?.integerValue ?? 0, deliveries: answer.json["deliveries"]?.integerValue ?? 0)
            if last.keys >= keys || ContinuousClock.now >= deadline { return last }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    @Test("10,000 trigger events written through three nodes are each delivered; duplicates are counted")
    func everyEventDelivered() async throws {
        guard Self.serverURL != nil else { return }
        let cluster = try await Cluster(environment: ["PICLOUD_DISPATCHER_CONCURRENCY": "8", "PICLOUD_LUA_POOL_SIZE": "4"])
        defer { Task { await cluster.stop() } }
        try await deployJobs(cluster, work: #"kv.incr("seen:" .. event.key)"#)
        let total = 10_000
        try await enqueue(cluster, total: total, batch: 100)
        let result = try await waitForDeliveries(cluster.nodes[2], keys: total, seconds: 240)
        #expect(result.keys == Int64(total), "\(result.keys) of \(total) events were delivered")
        #expect(result.deliveries >= Int64(total))
        let duplicates = result.deliveries - result.keys
        print("cluster: \(total) events, \(result.keys) delivered, \(duplicates) duplicate deliveries")
        #expect(duplicates == 0, "\(duplicates) events were delivered twice (allowed by at-least-once, but not expected without failures)")
        let outbox = try await cluster.nodes[1].request(.GET, "/admin/apps/jobs/outbox")
        #expect((outbox.json["items"]?.arrayValue ?? []).isEmpty, "outbox not empty: \(outbox.json)")
        await cluster.stop()
    }

    @Test("SIGKILL of one node while it delivers loses nothing: its leases run out and the others deliver")
    func nodeDeathLosesNothing() async throws {
        guard Self.serverURL != nil else { return }
        let cluster = try await Cluster(environment: ["PICLOUD_DISPATCHER_LEASE_MS": "2000", "PICLOUD_DISPATCHER_CONCURRENCY": "4", "PICLOUD_LUA_POOL_SIZE": "4"])
        defer { Task { await cluster.stop() } }
        // 12 deliveries at a time of 0.2 s each: the 600 take about 10 s, longer than writing them
        // takes even on a loaded machine, so the kill comes while they are delivered.
        try await deployJobs(cluster, work: #"time.sleep(0.2) kv.incr("seen:" .. event.key)"#)
        let total = 600
        try await enqueue(cluster, total: total, batch: 100)
        let before = try await waitForDeliveries(cluster.nodes[0], keys: 1, seconds: 30)
        kill(cluster.nodes[1].process.processIdentifier, SIGKILL)
        _ = await ServeProcessTests.waitForExit(cluster.nodes[1].process, seconds: 10)
        #expect(before.keys < Int64(total), "everything was delivered before the kill; the test proves nothing")
        let result = try await waitForDeliveries(cluster.nodes[0], keys: total, seconds: 120)
        #expect(result.keys == Int64(total), "\(result.keys) of \(total) events were delivered after a node died")
        print("cluster: node killed after \(before.keys) of \(total); all delivered, \(result.deliveries - result.keys) duplicate deliveries (in flight on the dead node)")
        await cluster.stop()
    }

    @Test("a cron trigger @every 1s fires once per second across three nodes, not three times")
    func cronOncePerTick() async throws {
        guard Self.serverURL != nil else { return }
        let cluster = try await Cluster(environment: ["PICLOUD_CRON_TICK_INTERVAL_MS": "100"])
        defer { Task { await cluster.stop() } }
        try await cluster.deploy("jobs", manifest: """
            name = "jobs"
            [[endpoints]]
            method = "GET"
            path = "/done"
            handler = "handlers/done.lua"
            [[triggers]]
            kind = "cron"
            schedule = "@every 1s"
            handler = "handlers/tick.lua"
            """, files: [
            "handlers/tick.lua": #"return function(event) kv.incr("seen:" .. event.scheduled_at) end"#,
            "handlers/done.lua": Self.counting,
        ], probe: "/apps/jobs/api/done")
        try await Task.sleep(for: .seconds(6))
        let result = try await waitForDeliveries(cluster.nodes[0], keys: 0, seconds: 0)
        // About one tick per second (the first second may or may not have fired yet).
        #expect((4...7).contains(result.keys), "\(result.keys) scheduled times fired in 6 s")
        #expect(result.deliveries == result.keys, "\(result.deliveries) firings for \(result.keys) scheduled times: some time fired more than once")
        await cluster.stop()
    }

    /// Deploys the feed app: `POST /publish/:n` publishes `{n, pad}` (`?size=` bytes of padding) to the public external topic "news".
    func deployFeed(_ cluster: Cluster) async throws {
        try await cluster.deploy("feed", manifest: """
            name = "feed"
            [[endpoints]]
            method = "POST"
            path = "/publish/:n"
            handler = "handlers/publish.lua"
            [[topics]]
            name = "news"
            external_subscribable = true
            auth_mode = "public"
            """, files: [
            "handlers/publish.lua": """
                return function(req)
                  local size = tonumber(req.query.size or "10")
                  pubsub.publish("news", { n = tonumber(req.params.n), pad = string.rep("x", size) })
                  return "ok"
                end
                """,
        ], probe: "/apps/feed/api/publish/0")
    }

    @Test("an SSE subscriber on node C gets every event published by handlers on A and B, in order; resume works on any node")
    func realtimeAcrossNodes() async throws {
        guard Self.serverURL != nil else { return }
        let cluster = try await Cluster()
        defer { Task { await cluster.stop() } }
        try await deployFeed(cluster)
        let (a, b, c) = (cluster.nodes[0], cluster.nodes[1], cluster.nodes[2])
        let stream = try await SSEConnection.open(port: c.port, path: "/apps/feed/realtime/news")
        #expect(stream.status == 200)
        let count = 100
        for n in 1...count {
            // Every tenth event is larger than a NOTIFY payload may be: it travels by id.
            let size = n % 10 == 0 ? 9000 : 10
            #expect(try await (n % 2 == 0 ? a : b).request(.POST, "/apps/feed/api/publish/\(n)?size=\(size)").status == 200)
        }
        var received: [(id: String, n: Int)] = []
        while received.count < count, let event = await stream.nextEvent(timeout: .seconds(15)) {
            guard event.event == nil else { Issue.record("unexpected \(event)"); break }
            let message = event.json["message"] as? [String: Any]
            received.append((event.id ?? "", (message?["n"] as? Int) ?? -1))
        }
        await stream.close()
        #expect(received.map(\.id) == (1...count).map(String.init))
        #expect(received.map(\.n) == Array(1...count))

        let resumed = try await SSEConnection.open(port: a.port, path: "/apps/feed/realtime/news", headers: [("Last-Event-ID", "90")])
        var replayed: [String] = []
        while replayed.count < 10, let event = await resumed.nextEvent(timeout: .seconds(10)) { replayed.append(event.id ?? "") }
        await resumed.close()
        #expect(replayed == (91...100).map(String.init))
        await cluster.stop()
    }

    @Test("a node that loses its database connection reconnects and hands its subscribers what was published meanwhile")
    func listenerReconnects() async throws {
        guard Self.serverURL != nil else { return }
        let cluster = try await Cluster(count: 2)
        defer { Task { await cluster.stop() } }
        try await deployFeed(cluster)
        let (a, b) = (cluster.nodes[0], cluster.nodes[1])
        let stream = try await SSEConnection.open(port: b.port, path: "/apps/feed/realtime/news")
        #expect(try await a.request(.POST, "/apps/feed/api/publish/1").status == 200)
        #expect(await stream.nextEvent()?.id == "1")
        // Cut every node's listening connection, and publish while they reconnect.
        let cut = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), [
            "psql", cluster.url, "-qAtc", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'picloud-listener' AND datname = current_database()",
        ])
        #expect(cut.output.trimmingCharacters(in: .whitespacesAndNewlines) == "2", "listening connections cut: \(cut.output)")
        for n in 2...6 { #expect(try await a.request(.POST, "/apps/feed/api/publish/\(n)").status == 200) }
        var ids: [String] = []
        while ids.count < 5, let event = await stream.nextEvent(timeout: .seconds(15)) { ids.append(event.id ?? event.event ?? "?") }
        #expect(ids == ["2", "3", "4", "5", "6"])
        for n in 7...8 { #expect(try await a.request(.POST, "/apps/feed/api/publish/\(n)").status == 200) }
        #expect(await stream.nextEvent()?.id == "7")
        #expect(await stream.nextEvent()?.id == "8")
        await stream.close()
        await cluster.stop()
    }
}
