import Foundation
import Services
import Synchronization
import Testing

@Suite("Storage: apps, keys, deployments, migrations (SQLite and PostgreSQL)")
struct ControlStorageTests {
    @Test("migrations are applied once and recorded; the schema is as committed", arguments: Backend.all)
    func migrations(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let versions = Array(1...4)
        #expect(try await store.storage.appliedMigrations() == versions)
        // Opening again applies nothing new.
        let again: any InspectableStorage = switch backend {
        case .sqlite: try SQLiteStorage(path: store.directory + "/picloud.sqlite")
        case .postgres: try await PostgresStorage.open(url: store.url!)
        }
        #expect(try await again.appliedMigrations() == versions)
        #expect(try await again.integrityCheck() == "ok")
        let snapshot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("schema.\(backend.rawValue).sql")
        let schema = try await store.storage.schema() + "\n"
        if let expected = try? String(contentsOf: snapshot, encoding: .utf8) {
            if schema != expected { try? schema.write(to: snapshot.appendingPathExtension("actual"), atomically: true, encoding: .utf8) }
            #expect(schema == expected, "the schema changed (the new one is in \(snapshot.lastPathComponent).actual); if intended, delete Tests/ServicesTests/\(snapshot.lastPathComponent) and rerun to record it")
        } else {
            try schema.write(to: snapshot, atomically: true, encoding: .utf8)
            Issue.record("recorded a new schema snapshot at \(snapshot.path); commit it")
        }
    }

    @Test("nodes starting at once on one PostgreSQL database migrate it exactly once")
    func concurrentMigrations() async throws {
        guard PostgresTestServer.url != nil else { return }
        let url = try await PostgresTestServer.createDatabase()
        let stores = try await withThrowingTaskGroup(of: PostgresStorage.self) { group in
            for _ in 0..<5 { group.addTask { try await PostgresStorage.open(url: url, maximumConnections: 2) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for store in stores { #expect(try await store.appliedMigrations() == Array(1...4)) }
        #expect(try await stores[0].integrityCheck() == "ok")
    }

    @Test("apps are created once, listed, and deleted with everything of theirs", arguments: Backend.all)
    func apps(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        await #expect(throws: ServiceError.self) { try await store.storage.createApp(name: "demo", at: 0) }
        try await store.storage.kvSet(app: "demo", key: "k", value: store.json("1"), expiresAt: nil, now: 0, enqueue: .none)
        _ = try await store.storage.insertDeployment(app: "demo", manifest: "name = 'demo'", files: ["a.lua": "return 1"], at: 1, by: nil)
        #expect(try await store.storage.apps().map(\.name) == ["demo"])
        #expect(try await store.storage.deleteApp(named: "demo"))
        #expect(try await store.storage.kvGet(app: "demo", key: "k", now: 0) == nil)
        #expect(try await store.storage.currentDeployments().isEmpty)
        #expect(try await store.storage.deleteApp(named: "demo") == false)
    }

    @Test("keys are found by hash only, scoped to their app, revoked at once", arguments: Backend.all)
    func keys(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let service = KeyService(storage: store.storage)
        let created = try await service.create(app: "demo", name: "ci", scopes: [.deploy])
        #expect(created.secret.hasPrefix("pc_"))
        #expect(created.record.prefix == String(created.secret.prefix(10)))
        let principal = try #require(try await service.authenticate(created.secret))
        #expect(principal.app == "demo")
        #expect(principal.may(.deploy, app: "demo"))
        #expect(principal.may(.read, app: "demo"))
        #expect(!principal.may(.deploy, app: "other"))
        #expect(!principal.may(.dataRead, app: "demo"))
        #expect(try await service.authenticate(created.secret + "x") == nil)
        #expect(try await service.authenticate("not a key") == nil)
        #expect(try await service.revoke(id: created.record.id, app: "other") == false)
        #expect(try await service.revoke(id: created.record.id, app: "demo"))
        #expect(try await service.authenticate(created.secret) == nil)
        await #expect(throws: ServiceError.self) { try await service.create(app: "demo", name: "x", scopes: [.instanceAdmin]) }
        await #expect(throws: ServiceError.self) { try await service.create(app: "nope", name: "x", scopes: [.read]) }
    }

    @Test("a key wrong in its first character takes as long to refuse as one wrong only in its last")
    func keyTiming() async throws {
        let store = try await TestStore(.sqlite)
        let service = KeyService(storage: store.storage)
        let secret = try await service.create(app: "demo", name: "ci", scopes: [.read]).secret
        func altered(_ index: Int) -> String {
            var characters = Array(secret)
            characters[index] = characters[index] == "A" ? "B" : "A"
            return String(characters)
        }
        let variants = [altered(3), altered(secret.count - 1)]
        for variant in variants { #expect(try await service.authenticate(variant) == nil) }
        var samples: [[Double]] = [[], []]
        let clock = ContinuousClock()
        for round in 0..<200 {
            for variant in (round % 2 == 0 ? [0, 1] : [1, 0]) {
                let started = clock.now
                for _ in 0..<10 { _ = try await service.authenticate(variants[variant]) }
                let elapsed = clock.now - started
                samples[variant].append(Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let ratio = median(samples[0]) / median(samples[1])
        // Keys are found by the SHA-256 of the whole secret: nothing compares secrets byte by byte.
        #expect((0.67...1.5).contains(ratio), "median time (first character wrong) / (last character wrong) = \(ratio)")
    }

    @Test("the bootstrap admin key is generated once into admin-token with mode 0600, or taken from the environment", arguments: Backend.all)
    func bootstrap(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let service = KeyService(storage: store.storage)
        let secret = try #require(try await service.bootstrap(environmentToken: nil, dataDirectory: store.directory))
        let path = store.directory + "/admin-token"
        #expect(try String(contentsOfFile: path, encoding: .utf8) == secret + "\n")
        let permissions = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
        #expect(try await service.bootstrap(environmentToken: nil, dataDirectory: store.directory) == nil)
        #expect(try await service.authenticate(secret)?.scopes == [.instanceAdmin])
        let fixed = "pc_fixed-admin-token-for-tests"
        #expect(try await service.bootstrap(environmentToken: fixed, dataDirectory: store.directory) == nil)
        #expect(try await service.authenticate(fixed)?.may(.instanceAdmin, app: nil) == true)
        await #expect(throws: ServiceError.self) { try await service.ensureBootstrapKey(secret: "short") }
    }

    @Test("deployments get increasing versions and the newest is current", arguments: Backend.all)
    func deployments(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let first = try await store.storage.insertDeployment(app: "demo", manifest: "v1", files: ["h.lua": "-- 1"], at: 1, by: "key_1")
        let second = try await store.storage.insertDeployment(app: "demo", manifest: "v2", files: ["h.lua": "-- 2"], at: 2, by: nil)
        #expect((first.version, second.version) == (1, 2))
        #expect(try await store.storage.deployment(app: "demo", version: nil)?.files == ["h.lua": "-- 2"])
        #expect(try await store.storage.deployment(app: "demo", version: 1)?.manifest == "v1")
        #expect(try await store.storage.deploymentHistory(app: "demo").map(\.version) == [2, 1])
        #expect(try await store.storage.app(named: "demo")?.currentVersion == 2)
        await #expect(throws: ServiceError.self) { try await store.storage.insertDeployment(app: "ghost", manifest: "", files: [:], at: 0, by: nil) }
    }

    @Test("scopes parse, print and imply each other as documented")
    func scopes() throws {
        #expect(try Scope.parse("app:deploy, data:read") == [.deploy, .dataRead])
        #expect(throws: ServiceError.self) { try Scope.parse("root") }
        #expect(Scope.allCases.count == 7)
        #expect(Scope.appAdmin.grants(.invoke) && !Scope.appAdmin.grants(.instanceAdmin))
        #expect(Scope.dataWrite.grants(.dataRead) && !Scope.dataRead.grants(.dataWrite))
        #expect(Set<Scope>([.read, .invoke]).text == "app:read invoke")
    }

    @Test("names and ids follow their rules")
    func names() async throws {
        try Names.validateApp("notes-2")
        for bad in ["", "Notes", "1app", "a b", String(repeating: "a", count: 41)] {
            #expect(throws: ServiceError.self) { try Names.validateApp(bad) }
        }
        let first = Identifiers.ulid(at: 1_000)
        let second = Identifiers.ulid(at: 2_000)
        #expect(first.count == 26 && first < second)
        // 48 bits of milliseconds in 10 Crockford digits (1000 = 31 × 32 + 8), then 80 random bits.
        let alphabet = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        for id in [first, Identifiers.requestID(at: 1_000)] {
            #expect(id.count == 26 && id.hasPrefix("00000000Z8") && id.allSatisfy(alphabet.contains), "\(id)")
        }
        let ids = (0..<1000).map { _ in Identifiers.requestID(at: 5) }
        #expect(Set(ids).count == 1000 && Set(ids.map { $0.dropFirst(10).first! }).count > 1)
        // Made on several threads at once (both event loops make them), in the same millisecond.
        let threads = (0..<4).map { _ in Task.detached { (0..<2000).map { _ in Identifiers.requestID(at: 5) } } }
        var concurrent: Set<String> = []
        for thread in threads { concurrent.formUnion(await thread.value) }
        #expect(concurrent.count == 8000)
        // Threads taking blocks of the same sequence (an event loop's ids), beside single ids.
        let blocks = (0..<4).map { _ in
            Task.detached {
                var ids = Identifiers.RequestIDs(block: 7)
                return (0..<2000).map { index in index % 3 == 0 ? Identifiers.requestID(at: 5) : ids.make(at: 5) }
            }
        }
        var mixed: Set<String> = []
        for thread in blocks { mixed.formUnion(await thread.value) }
        #expect(mixed.count == 8000 && mixed.isDisjoint(with: concurrent) && mixed.allSatisfy { $0.hasPrefix("0000000005") })
    }
}

@Suite("PostgreSQL: what nodes tell each other")
struct ClusterSignalTests {
    /// Collects what a node hears.
    final class Ear: Sendable {
        let heard = Mutex<[ClusterSignal]>([])
        func count(_ match: (ClusterSignal) -> Bool) -> Int { heard.withLock { $0.filter(match).count } }

        func wait(timeout: Duration = .seconds(10), until condition: @escaping (ClusterSignal) -> Bool) async -> Bool {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if count(condition) > 0 { return true }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return false
        }
    }

    @Test("outbox rows, topic events (small and large) and app changes committed through one node are heard by another")
    func signals() async throws {
        guard PostgresTestServer.url != nil else { return }
        let store = try await TestStore(.postgres)
        let other = try await PostgresStorage.open(url: store.url!)
        let ear = Ear()
        let listener = Task { await other.listen { signal in ear.heard.withLock { $0.append(signal) } } }
        defer { listener.cancel() }
        #expect(await ear.wait { if case .listening = $0 { true } else { false } })

        let target = OutboxTarget(triggerID: "t1", kind: .kv, handler: "h.lua", retry: RetryPolicy(maxAttempts: 3, baseMilliseconds: 10, capMilliseconds: 100), timeoutMilliseconds: nil)
        try await store.storage.kvSet(app: "demo", key: "k", value: store.json("1"), expiresAt: nil, now: Clock.now(), enqueue: OutboxEnqueue(targets: [target], depth: 1))
        #expect(await ear.wait { if case .outbox = $0 { true } else { false } }, "an outbox insert wakes the other node's dispatcher")

        let topic = TopicRecord(app: "demo", name: "news", externalSubscribable: true, authMode: .public, historyEvents: nil, historySeconds: nil, source: .api, createdAt: 0, updatedAt: 0)
        try await store.storage.createTopic(topic)
        #expect(await ear.wait { if case .changed(app: "demo") = $0 { true } else { false } }, "a topic change makes the other node reload the app")
        let large = "\"" + String(repeating: "x", count: 20_000) + "\""
        for message in ["{\"n\":1}", large] {
            _ = try await store.storage.publish(
                app: "demo", topic: "news", message: store.json(message), now: Clock.now(), defaults: TopicHistoryDefaults(events: 10, seconds: 60),
                enqueue: .none, event: { _ in [] }, onCommit: { _ in }
            )
        }
        #expect(await ear.wait { if case .published(let event) = $0 { event.seq == 2 } else { false } })
        let events = ear.heard.withLock { $0.compactMap { if case .published(let event) = $0 { event } else { nil } } }
        #expect(events.map(\.seq) == [1, 2])
        #expect(events.map(\.message) == [store.json("{\"n\":1}"), store.json(large)], "a large event travels by id and arrives whole")
    }
}
