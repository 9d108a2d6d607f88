import Foundation
import LuaBridge
import NIOHTTP1
import Services
import TestSupport
import Testing

/// A mixed workload (kv writes whose trigger runs, documents, file uploads, topic publishes)
/// against one data directory whose server is SIGKILLed at random moments, twenty times; then
/// every acknowledged write and every committed event must be there, every trigger delivered,
/// every file whole, and SQLite's integrity check must pass.
@Suite("Crash loop", .serialized)
struct CrashLoopTests {
    static let manifest = """
        name = "mixed"
        [[endpoints]]
        method = "POST"
        path = "/write/:n"
        handler = "handlers/write.lua"
        [[endpoints]]
        method = "GET"
        path = "/read/:n"
        handler = "handlers/read.lua"
        [[triggers]]
        kind = "kv"
        prefix = "k"
        ops = ["set"]
        handler = "handlers/seen.lua"
        [[topics]]
        name = "feed"
        history_events = 100000
        """

    static let files = [
        "handlers/write.lua": """
            return function(req)
              local n = tonumber(req.params.n)
              kv.set("k" .. n, { n = n })
              docs.insert("rows", { id = "r" .. n, n = n })
              files.put("blob/" .. n, string.rep(string.char(65 + n % 26), 3000 + n * 7))
              local id = pubsub.publish("feed", { n = n })
              return { status = 201, json = { n = n, event = id } }
            end
            """,
        "handlers/seen.lua": "return function(event) kv.set('seen:' .. event.key, event.value.n) end",
        "handlers/read.lua": """
            return function(req)
              local n = tonumber(req.params.n)
              local content = files.get("blob/" .. n)
              return { json = { kv = kv.get("k" .. n), doc = docs.get("rows", "r" .. n), seen = kv.get("seen:k" .. n),
                whole = content == string.rep(string.char(65 + n % 26), 3000 + n * 7) } }
            end
            """,
    ]

    actor Ledger {
        var writes: [Int: String] = [:] // n → the id of its published event
        func add(_ n: Int, event: String) { writes[n] = event }
    }

    /// The backends to run on: SQLite, and PostgreSQL when the test server is there.
    static var backends: [String] { ClusterTests.serverURL == nil ? ["sqlite"] : ["sqlite", "postgres"] }

    @Test("20 SIGKILLs at random moments lose no acknowledged write, committed event or trigger delivery", arguments: backends)
    func twentyKills(backend: String) async throws {
        let directory = ProcessTests.freshDirectory()
        var environment = ["PICLOUD_DISPATCHER_LEASE_MS": "1000", "PICLOUD_MASTER_KEY": String(repeating: "cd", count: 32)]
        var arguments: [String] = []
        var databaseURL: String?
        if backend == "postgres", let server = ClusterTests.serverURL {
            let name = "picloud_crash_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
            let created = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["psql", server, "-qc", "CREATE DATABASE \(name)"])
            try #require(created.status == 0, "psql: \(created.output)")
            var components = URLComponents(string: server)!
            components.path = "/" + name
            databaseURL = components.string!
            arguments = ["--database-url", components.string!]
            environment["PICLOUD_DATABASE_MAX_CONNECTIONS"] = "8"
        }
        let first = try await ProcessTests.Server(dataDirectory: directory, extraArguments: arguments, extraEnvironment: environment)
        _ = try await first.request(.POST, "/admin/apps", json: ["name": "mixed"])
        let deployed = try await first.request(.PUT, "/admin/apps/mixed/deployment", json: ["manifest": .string(Self.manifest), "files": .object(Self.files.mapValues(LuaValue.string))])
        try #require(deployed.status == 201, "\(deployed.json)")
        let seed = UInt64.random(in: 1...UInt64.max)
        var random = SplitMix64(seed: seed)
        print("crash loop: seed \(seed)")
        let ledger = Ledger()
        var next = 0
        var server = first
        var killedAfter: [Int] = []
        for round in 0..<20 {
            if round > 0 { server = try await ProcessTests.Server(dataDirectory: directory, extraArguments: arguments, extraEnvironment: environment) }
            // Six writers go as fast as they can; the kill comes after a random delay.
            let base = next
            next += 100_000
            let live = server
            let writers = (0..<6).map { writer in
                Task {
                    var n = base + writer
                    while !Task.isCancelled {
                        guard let answer = try? await live.request(.POST, "/apps/mixed/api/write/\(n)"), answer.status == 201,
                              let event = answer.json["event"]?.stringValue
                        else { break }
                        await ledger.add(n, event: event)
                        n += 6
                    }
                }
            }
            // Killed at a random moment after the round's first acknowledged write (however slow
            // this machine or this backend is, every round writes something).
            let before = await ledger.writes.count
            let started = ContinuousClock.now
            while await ledger.writes.count == before, ContinuousClock.now - started < .seconds(10) { try await Task.sleep(for: .milliseconds(5)) }
            let delay = Int.random(in: 0...400, using: &random)
            try await Task.sleep(for: .milliseconds(delay))
            kill(server.process.processIdentifier, SIGKILL)
            _ = await ServeProcessTests.waitForExit(server.process, seconds: 10)
            // Requests to the dead server fail; cancelling makes sure none waits for its timeout.
            for writer in writers { writer.cancel() }
            for writer in writers { _ = await writer.value }
            killedAfter.append(delay)
        }
        let written = await ledger.writes
        #expect(written.count >= 20, "only \(written.count) writes were acknowledged in 20 rounds")

        // Everything acknowledged is there; every trigger runs (after the leases of the killed runs).
        let last = try await ProcessTests.Server(dataDirectory: directory, extraArguments: arguments, extraEnvironment: environment)
        var missingTriggers: [Int] = []
        // One deadline for all deliveries (the killed runs' leases expire after a second).
        let deadline = ContinuousClock.now + .seconds(120)
        for (n, _) in written.sorted(by: { $0.key < $1.key }) {
            var answer = try await last.request(.GET, "/apps/mixed/api/read/\(n)")
            #expect(answer.json["kv"] == ["n": .integer(Int64(n))], "write \(n) lost")
            #expect(answer.json["doc"]?["n"] == .integer(Int64(n)), "document \(n) lost")
            #expect(answer.json["whole"] == true, "file \(n) is not whole")
            while answer.json["seen"] != .integer(Int64(n)), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                answer = try await last.request(.GET, "/apps/mixed/api/read/\(n)")
            }
            if answer.json["seen"] != .integer(Int64(n)) { missingTriggers.append(n) }
        }
        #expect(missingTriggers.isEmpty, "trigger never ran for \(missingTriggers.prefix(10))")

        // Every acknowledged publish is in the topic's history.
        var events = Set<String>()
        var after = "0"
        while true {
            let page = try await last.request(.GET, "/admin/apps/mixed/topics/feed/events?after=\(after)&limit=1000")
            let items = page.json["items"]?.arrayValue ?? []
            for item in items { if let id = item["id"]?.stringValue { events.insert(id) } }
            guard let newest = items.last?["id"]?.stringValue, items.count == 1000 else { break }
            after = newest
        }
        let lostEvents = written.values.filter { !events.contains($0) }
        #expect(lostEvents.isEmpty, "\(lostEvents.count) acknowledged events missing from the history")

        #expect(await last.stop(signal: SIGTERM) == 0)
        // The store is sound: SQLite's integrity check, and on either backend no file without its
        // content and no topic event beyond its topic's newest id.
        let consistency = [
            "SELECT count(*) FROM files f WHERE NOT EXISTS (SELECT 1 FROM file_blobs b WHERE b.app = f.app AND b.blob = f.blob)",
            "SELECT count(*) FROM topic_events e JOIN topics t ON t.app = e.app AND t.name = e.topic WHERE e.seq > t.last_seq",
        ]
        if let databaseURL {
            for query in consistency {
                let answer = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["psql", databaseURL, "-tAc", query])
                #expect(answer.status == 0 && answer.output.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "\(query): \(answer.output)")
            }
        } else {
            let storage = try SQLiteStorage(path: directory + "/picloud.sqlite")
            #expect(try await storage.integrityCheck() == "ok")
            // Files live on disk here: every stored file's content is there.
            let referenced = try await storage.referencedBlobs(app: "mixed")
            let missing = referenced.filter { !FileManager.default.fileExists(atPath: directory + "/files/mixed/blobs/" + $0.prefix(2) + "/" + $0) }
            #expect(!referenced.isEmpty)
            #expect(missing.isEmpty, "\(missing.count) files without their content")
        }
        print("crash loop (\(backend)): 20 kills after \(killedAfter) ms; \(written.count) acknowledged writes, \(events.count) events, all present; store consistent")
    }
}
