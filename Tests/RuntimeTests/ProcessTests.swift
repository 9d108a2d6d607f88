import AsyncHTTPClient
import Foundation
import LuaBridge
import NIOCore
import NIOHTTP1
import Services
import TestSupport
import Testing

/// The real binary, started and stopped like a user (or a crash) would.
@Suite("picloud as a process: restarts and crashes")
struct ProcessTests {
    final class Server: @unchecked Sendable {
        let process = ChildProcess()
        let port: Int
        let dataDirectory: String

        init(dataDirectory: String, extraArguments: [String] = [], extraEnvironment: [String: String] = [:]) async throws {
            let binary = ServeProcessTests.binary
            self.dataDirectory = dataDirectory
            process.executableURL = binary
            process.arguments = ["serve", "--port", "0", "--data-dir", dataDirectory] + extraArguments
            var environment = ProcessInfo.processInfo.environment
            environment["PICLOUD_ADMIN_TOKEN"] = Harness.adminToken
            environment.merge(extraEnvironment) { $1 }
            process.environment = environment
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            port = try await ServeProcessTests.listeningPort(in: errors.fileHandleForReading)
            // keep draining the log so the process never blocks on a full pipe
            let handle = errors.fileHandleForReading
            Thread.detachNewThread { while !handle.availableData.isEmpty {} }
        }

        func request(_ method: HTTPMethod, _ path: String, json: LuaValue? = nil) async throws -> (status: Int, json: LuaValue) {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
            request.method = method
            request.headers.add(name: "Authorization", value: "Bearer \(Harness.adminToken)")
            if let json {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: try LuaJSON.encode(json)))
            }
            let response = try await Harness.client.execute(request, timeout: .seconds(20))
            var body = try await response.body.collect(upTo: 16 << 20)
            return (Int(response.status.code), (try? LuaJSON.decode(body.readBytes(length: body.readableBytes) ?? [])) ?? .nil)
        }

        func stop(signal: Int32) async -> Int32 {
            kill(process.processIdentifier, signal)
            _ = await ServeProcessTests.waitForExit(process, seconds: 15)
            return process.terminationStatus
        }
    }

    static let manifest = """
        name = "store"
        [[endpoints]]
        method = "POST"
        path = "/write/:n"
        handler = "handlers/write.lua"
        [[endpoints]]
        method = "GET"
        path = "/read/:n"
        handler = "handlers/read.lua"
        """
    static let files = [
        "handlers/write.lua": """
            return function(req)
              local n = req.params.n
              kv.set("k" .. n, { n = tonumber(n) })
              docs.insert("rows", { id = "r" .. n, n = tonumber(n) })
              files.put("blob/" .. n, string.rep(string.char(65 + tonumber(n) % 26), 2000 + tonumber(n)))
              return { status = 201, json = { n = tonumber(n) } }
            end
            """,
        "handlers/read.lua": """
            return function(req)
              local n = req.params.n
              local content = files.get("blob/" .. n)
              return { json = { kv = kv.get("k" .. n), doc = docs.get("rows", "r" .. n), size = content and #content or -1,
                whole = content == string.rep(string.char(65 + tonumber(n) % 26), 2000 + tonumber(n)) } }
            end
            """,
    ]

    static func freshDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("picloud-process-\(UUID().uuidString)").path
    }

    @Test("data and the deployment survive a SIGTERM restart")
    func restart() async throws {
        let directory = Self.freshDirectory()
        let first = try await Server(dataDirectory: directory)
        #expect(try await first.request(.POST, "/admin/apps", json: ["name": "store"]).status == 201)
        let deployment = try await first.request(.PUT, "/admin/apps/store/deployment", json: ["manifest": .string(Self.manifest), "files": .object(Self.files.mapValues(LuaValue.string))])
        #expect(deployment.status == 201)
        for n in 1...5 { #expect(try await first.request(.POST, "/apps/store/api/write/\(n)").status == 201) }
        #expect(await first.stop(signal: SIGTERM) == 0)

        let second = try await Server(dataDirectory: directory)
        for n in 1...5 {
            let answer = try await second.request(.GET, "/apps/store/api/read/\(n)")
            #expect(answer.status == 200)
            #expect(answer.json["kv"] == ["n": .integer(Int64(n))] && answer.json["whole"] == true)
        }
        #expect(try await second.request(.GET, "/admin/apps/store/deployment").json["version"] == 1)
        #expect(await second.stop(signal: SIGTERM) == 0)
    }

    @Test("SIGKILL during writes loses no acknowledged write and leaves no torn file")
    func crash() async throws {
        let directory = Self.freshDirectory()
        let server = try await Server(dataDirectory: directory)
        _ = try await server.request(.POST, "/admin/apps", json: ["name": "store"])
        _ = try await server.request(.PUT, "/admin/apps/store/deployment", json: ["manifest": .string(Self.manifest), "files": .object(Self.files.mapValues(LuaValue.string))])

        // Four writers go as fast as they can; the server is killed while they run.
        let acknowledged = AcknowledgedWrites()
        let writers = (0..<4).map { writer in
            Task {
                var n = writer
                while !Task.isCancelled {
                    guard let answer = try? await server.request(.POST, "/apps/store/api/write/\(n)"), answer.status == 201 else { break }
                    await acknowledged.add(n)
                    n += 4
                }
            }
        }
        // Killed once a good number of writes were acknowledged (however loaded the machine is).
        let deadline = ContinuousClock.now + .seconds(20)
        while await acknowledged.all.count < 30, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        kill(server.process.processIdentifier, SIGKILL)
        for writer in writers { _ = await writer.value }
        let written = await acknowledged.all
        #expect(written.count > 10, "only \(written.count) writes were acknowledged before the kill")

        let restarted = try await Server(dataDirectory: directory)
        for n in written.sorted() {
            let answer = try await restarted.request(.GET, "/apps/store/api/read/\(n)")
            #expect(answer.json["kv"] == ["n": .integer(Int64(n))], "write \(n) lost")
            #expect(answer.json["doc"]?["n"] == .integer(Int64(n)), "doc \(n) lost")
            #expect(answer.json["whole"] == true, "file \(n) is not whole")
        }
        #expect(await restarted.stop(signal: SIGTERM) == 0)
        let storage = try SQLiteStorage(path: directory + "/picloud.sqlite")
        #expect(try await storage.integrityCheck() == "ok")
    }

    @Test("SIGKILL while trigger deliveries are in flight: after a restart every event is delivered")
    func crashDuringDeliveries() async throws {
        let directory = Self.freshDirectory()
        let environment = ["PICLOUD_DISPATCHER_LEASE_MS": "2000", "PICLOUD_DISPATCHER_CONCURRENCY": "2", "PICLOUD_LUA_POOL_SIZE": "4"]
        let manifest = """
            name = "jobs"
            [[endpoints]]
            method = "POST"
            path = "/enqueue/:count"
            handler = "handlers/enqueue.lua"
            [[endpoints]]
            method = "GET"
            path = "/done"
            handler = "handlers/done.lua"
            [[triggers]]
            kind = "docs"
            collection = "jobs"
            ops = ["insert"]
            handler = "handlers/work.lua"
            """
        let files = [
            "handlers/enqueue.lua": "return function(req) for i = 1, tonumber(req.params.count) do docs.insert('jobs', { id = 'j' .. i, n = i }) end return 'ok' end",
            "handlers/work.lua": """
                return function(event)
                  time.sleep(0.2) -- 200 ms of waiting, as for a slow API (all 60 take 6 s at 2 at once)
                  kv.incr("seen:" .. event.doc.n)
                end
                """,
            "handlers/done.lua": """
                return function()
                  local count, after = 0, nil
                  repeat
                    local items, next = kv.list("seen:", { limit = 1000, after = after })
                    count = count + #items
                    after = next
                  until not next
                  return { json = { done = count } }
                end
                """,
        ]
        let events = 60
        let first = try await Server(dataDirectory: directory, extraEnvironment: environment)
        _ = try await first.request(.POST, "/admin/apps", json: ["name": "jobs"])
        #expect(try await first.request(.PUT, "/admin/apps/jobs/deployment", json: ["manifest": .string(manifest), "files": .object(files.mapValues(LuaValue.string))]).status == 201)
        #expect(try await first.request(.POST, "/apps/jobs/api/enqueue/\(events)").status == 200)
        try await Task.sleep(for: .milliseconds(300))
        let before = try await first.request(.GET, "/apps/jobs/api/done").json["done"]?.integerValue ?? -1
        kill(first.process.processIdentifier, SIGKILL)
        _ = await ServeProcessTests.waitForExit(first.process, seconds: 10)
        #expect(before < Int64(events), "all events were delivered before the kill; the test proves nothing")

        let second = try await Server(dataDirectory: directory, extraEnvironment: environment)
        var done: Int64 = 0
        for _ in 0..<300 {
            done = try await second.request(.GET, "/apps/jobs/api/done").json["done"]?.integerValue ?? 0
            if done == Int64(events) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(done == Int64(events), "\(done) of \(events) events delivered after the restart")
        #expect(try await second.request(.GET, "/admin/apps/jobs/outbox").json["items"] == [])
        #expect(await second.stop(signal: SIGTERM) == 0)
    }

    @Test("cron @every 1s fires each second once, also across a restart")
    func cronAcrossRestart() async throws {
        let directory = Self.freshDirectory()
        let environment = ["PICLOUD_CRON_TICK_INTERVAL_MS": "100"]
        let manifest = """
            name = "clock"
            [[endpoints]]
            method = "GET"
            path = "/fired"
            handler = "handlers/fired.lua"
            [[triggers]]
            kind = "cron"
            schedule = "@every 1s"
            handler = "handlers/tick.lua"
            """
        let files = [
            "handlers/tick.lua": "return function(event) kv.incr('fired:' .. event.scheduled_at) end",
            "handlers/fired.lua": "return function() return { json = kv.list('fired:', { limit = 1000 }) } end",
        ]
        let first = try await Server(dataDirectory: directory, extraEnvironment: environment)
        _ = try await first.request(.POST, "/admin/apps", json: ["name": "clock"])
        #expect(try await first.request(.PUT, "/admin/apps/clock/deployment", json: ["manifest": .string(manifest), "files": .object(files.mapValues(LuaValue.string))]).status == 201)
        try await Task.sleep(for: .milliseconds(2600))
        #expect(await first.stop(signal: SIGTERM) == 0)
        try await Task.sleep(for: .milliseconds(1200)) // down across at least one scheduled time
        let second = try await Server(dataDirectory: directory, extraEnvironment: environment)
        try await Task.sleep(for: .milliseconds(2600))
        // About 2-3 times before the stop, one for the time missed while down, 2-3 after; a loaded
        // machine fires later (and a late tick fires only the latest time due), so wait for 5.
        var fired: [LuaValue] = []
        var times: [Int64] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            guard case .array(let list) = try await second.request(.GET, "/apps/clock/api/fired").json else { Issue.record("no list"); return }
            fired = list
            times = fired.compactMap { $0["key"]?.stringValue.flatMap { Int64($0.dropFirst("fired:".count)) } }.sorted()
            if times.count >= 5 || ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(await second.stop(signal: SIGTERM) == 0)
        #expect(fired.allSatisfy { $0["value"] == 1 }, "a scheduled time fired twice: \(fired)")
        #expect(times.allSatisfy { $0 % 1000 == 0 })
        #expect(times.count >= 5, "only \(times.count) scheduled times fired: \(times)")
    }

    @Test(
        "SIGTERM while endpoint handlers run: each answer goes out whole, with Connection: close, before the process exits",
        arguments: ["1", "0"]
    )
    func gracefulShutdownFinishesRunningHandlers(fastPath: String) async throws {
        let server = try await Server(dataDirectory: Self.freshDirectory(), extraEnvironment: ["PICLOUD_ENDPOINT_FAST_PATH": fastPath])
        _ = try await server.request(.POST, "/admin/apps", json: ["name": "slow"])
        let manifest = """
            name = "slow"
            [[endpoints]]
            method = "GET"
            path = "/slow"
            handler = "handlers/slow.lua"
            """
        let files = ["handlers/slow.lua": "return function() kv.incr('started') time.sleep(5) return { json = { ok = true } } end"]
        let deployed = try await server.request(.PUT, "/admin/apps/slow/deployment", json: ["manifest": .string(manifest), "files": .object(files.mapValues(LuaValue.string))])
        #expect(deployed.status == 201)
        // Two connections, each with a handler sleeping when the signal comes.
        let request = "GET /apps/slow/api/slow HTTP/1.1\r\nHost: x\r\n\r\n"
        async let first = rawExchange(port: server.port, request, timeout: .seconds(20))
        async let second = rawExchange(port: server.port, request, timeout: .seconds(20))
        // The signal comes once both handlers are running.
        for _ in 0..<200 {
            let started = try await server.request(.GET, "/admin/apps/slow/kv?prefix=started").json["items"]?.arrayValue?.first?["value"]
            if started == 2 { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        let status = await server.stop(signal: SIGTERM)
        for answer in [try await first, try await second] {
            #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(answer)")
            #expect(answer.lowercased().contains("\r\nconnection: close\r\n"), "\(answer)")
            #expect(answer.hasSuffix(#"{"ok":true}"#), "\(answer)")
        }
        #expect(status == 0)
    }

    actor AcknowledgedWrites {
        var all: Set<Int> = []
        func add(_ n: Int) { all.insert(n) }
    }
}
