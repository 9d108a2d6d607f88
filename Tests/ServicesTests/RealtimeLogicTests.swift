import Foundation
import Services
import Synchronization
import Testing

/// The pure parts of realtime: the per-topic ring (the subscriber buffer) and the token codec.
@Suite("Realtime logic: topic ring, subscriber tokens")
struct RealtimeLogicTests {
    // MARK: Ring

    func seqs(_ read: TopicRing<Int>.Read) -> (seqs: [Int64], missed: ClosedRange<Int64>?) {
        switch read {
        case .upToDate: return ([], nil)
        case .entries(let entries, let missed): return (entries.map(\.seq), missed)
        }
    }

    @Test("a ring hands out what is newer than a position, in order")
    func ringReads() {
        var ring = TopicRing<Int>(capacity: 4)
        #expect(seqs(ring.read(after: 0)).seqs.isEmpty)
        #expect(ring.lastSeq == nil && ring.firstSeq == nil)
        for seq in 1...3 {
            let appended = ring.append(seq: Int64(seq), seq * 10)
            #expect(appended)
        }
        #expect(seqs(ring.read(after: 0)).seqs == [1, 2, 3])
        #expect(seqs(ring.read(after: 0)).missed == nil)
        #expect(seqs(ring.read(after: 2)).seqs == [3])
        if case .upToDate = ring.read(after: 3) {} else { Issue.record("a subscriber at the newest id is up to date") }
        if case .upToDate = ring.read(after: 99) {} else { Issue.record("a position past the newest id is up to date") }
        if case .entries(let entries, _) = ring.read(after: 1) { #expect(entries.map(\.payload) == [20, 30]) }
    }

    @Test("a full ring drops the oldest, and a subscriber that fell behind learns exactly which ids it missed")
    func ringDropsOldest() {
        var ring = TopicRing<Int>(capacity: 3)
        for seq in 1...10 { ring.append(seq: Int64(seq), seq) }
        #expect(ring.count == 3)
        #expect(ring.firstSeq == 8 && ring.lastSeq == 10)
        let behind = seqs(ring.read(after: 2))
        #expect(behind.seqs == [8, 9, 10])
        #expect(behind.missed == 3...7)
        #expect(seqs(ring.read(after: 7)).missed == nil)
        #expect(seqs(ring.read(after: 8)).seqs == [9, 10])
    }

    @Test("duplicates and late ids are ignored; a hole in the ids is reported as missed")
    func ringOrdering() {
        var ring = TopicRing<Int>(capacity: 8)
        let first = ring.append(seq: 5, 5)
        let duplicate = ring.append(seq: 5, 0)
        let late = ring.append(seq: 4, 4)
        let next = ring.append(seq: 8, 8)
        #expect(first && next)
        #expect(!duplicate, "a duplicate")
        #expect(!late, "late: read from the history instead")
        let read = seqs(ring.read(after: 5))
        #expect(read.seqs == [8])
        #expect(read.missed == 6...7)
        // A subscriber whose position is before the ring's first entry (a channel that started later).
        #expect(seqs(ring.read(after: 0)).missed == 1...4)
    }

    @Test("the ring agrees with a plain list on random appends and reads")
    func ringMatchesModel() {
        var generator = SystemRandomNumberGenerator()
        for capacity in [1, 2, 5, 64] {
            var ring = TopicRing<Int>(capacity: capacity)
            var model: [Int64] = []
            var seq: Int64 = 0
            for _ in 0..<500 {
                seq += Int64.random(in: 1...3, using: &generator)
                ring.append(seq: seq, Int(seq))
                model.append(seq)
                let kept = Array(model.suffix(capacity))
                let after = Int64.random(in: 0...(seq + 1), using: &generator)
                let expected = kept.filter { $0 > after }
                let read = seqs(ring.read(after: after))
                #expect(read.seqs == expected)
                if let first = expected.first, first > after + 1 {
                    #expect(read.missed == (after + 1)...(first - 1))
                } else {
                    #expect(read.missed == nil)
                }
            }
        }
    }

    // MARK: Tokens

    let key = Array(repeating: UInt8(7), count: 32)
    let now: Int64 = 1_800_000_000

    func claims(app: String = "chat", topics: [String] = ["room:lobby", "news"], issuedAt: Int64? = nil, expiresAt: Int64? = nil) -> SubscriberClaims {
        SubscriberClaims(app: app, topics: topics, subject: "key_123", issuedAt: issuedAt ?? now, expiresAt: expiresAt ?? now + 600)
    }

    func verify(_ token: String, key: [UInt8]? = nil, app: String = "chat", topic: String = "room:lobby", now: Int64? = nil) -> Result<SubscriberClaims, SubscriberToken.Failure> {
        Result { () throws(SubscriberToken.Failure) -> SubscriberClaims in
            try SubscriberToken.verify(token, key: key ?? self.key, app: app, topic: topic, now: now ?? self.now)
        }
    }

    @Test("a token round-trips its claims")
    func tokenRoundTrip() throws {
        let token = SubscriberToken.encode(claims(), key: key)
        #expect(token.hasPrefix("pct_"))
        #expect(token.split(separator: ".").count == 2)
        #expect(try verify(token).get() == claims())
        #expect(try verify(token, topic: "news").get().subject == "key_123")
    }

    @Test("a tampered signature or payload, another key, another app or another topic is refused")
    func tokenTampering() {
        let token = SubscriberToken.encode(claims(), key: key)
        let parts = token.split(separator: ".").map(String.init)
        // Flip one character of the signature, and of the payload.
        func flip(_ text: String, at offset: Int) -> String {
            var characters = Array(text)
            characters[offset] = characters[offset] == "A" ? "B" : "A"
            return String(characters)
        }
        #expect(verify(parts[0] + "." + flip(parts[1], at: 3)) == .failure(.badSignature))
        #expect(verify(flip(parts[0], at: 12) + "." + parts[1]) == .failure(.badSignature))
        // Claims rewritten to another app keep the old signature: refused.
        let otherClaims = SubscriberToken.encode(claims(app: "bank"), key: key).split(separator: ".")[0]
        #expect(verify(otherClaims + "." + parts[1]) == .failure(.badSignature))
        #expect(verify(token, key: Array(repeating: 8, count: 32)) == .failure(.badSignature))
        // Signed with this key but for another app (as if keys were shared): the app check still refuses it.
        #expect(verify(SubscriberToken.encode(claims(app: "bank"), key: key)) == .failure(.wrongApp))
        #expect(verify(token, topic: "secret") == .failure(.topicNotAllowed))
    }

    @Test("a signature wrong in its first byte takes as long to refuse as one wrong only in its last")
    func signatureTiming() throws {
        let parts = SubscriberToken.encode(claims(), key: key).split(separator: ".").map(String.init)
        let signature = try #require(Identifiers.base64urlDecode(parts[1][...]))
        func token(flipping index: Int) -> String {
            var bytes = signature
            bytes[index] ^= 0x01
            return parts[0] + "." + Identifiers.base64url(bytes)
        }
        let variants = [token(flipping: 0), token(flipping: signature.count - 1)]
        for variant in variants { #expect(verify(variant) == .failure(.badSignature)) }
        let ratio = Timing.medianRatio(rounds: 300, batch: 40) { index in _ = verify(variants[index]) }
        // A comparison that stopped at the first differing byte would make the first variant
        // clearly faster; a constant-time one keeps the two within noise.
        #expect((0.67...1.5).contains(ratio), "median time (first byte wrong) / (last byte wrong) = \(ratio)")
    }

    @Test("malformed tokens are refused without reaching the signature check")
    func tokenMalformed() {
        let valid = SubscriberToken.encode(claims(), key: key)
        for text in ["", "pct_", "pct_.", "abc.def", "pct_abc", "pct_a.b.c", "pc_" + valid.dropFirst(4), valid + ".", "pct_!!!.AAAA",
                     valid.split(separator: ".")[0] + ".AAAA", String(repeating: "x", count: 10_000)] {
            #expect(verify(String(text)) == .failure(.malformed), "\(text.prefix(40))")
        }
        // Other claims under a real token's signature fail the signature check before being decoded.
        let payload = "pct_" + Identifiers.base64url(Array("not json".utf8))
        #expect(verify(payload + "." + valid.split(separator: ".")[1]) == .failure(.badSignature))
    }

    @Test("expiry and issue time allow a few seconds of clock difference between nodes, no more")
    func tokenTimes() {
        let skew = SubscriberToken.clockSkewSeconds
        let token = SubscriberToken.encode(claims(issuedAt: now, expiresAt: now + 60), key: key)
        #expect((try? verify(token, now: now + 59).get()) != nil)
        #expect((try? verify(token, now: now + 60 + skew - 1).get()) != nil, "just expired, within the allowance")
        #expect(verify(token, now: now + 60 + skew) == .failure(.expired))
        #expect(verify(token, now: now + 100_000) == .failure(.expired))
        // Issued by a node whose clock runs ahead.
        #expect((try? verify(token, now: now - skew).get()) != nil)
        #expect(verify(token, now: now - skew - 1) == .failure(.notYetValid))
    }

    @Test("token lifetimes are clamped to the configured range")
    func lifetimes() {
        let lifetime = SubscriberTokenLifetime(minimum: 10, maximum: 86400, standard: 3600)
        #expect(lifetime.clamp(nil) == 3600)
        #expect(lifetime.clamp(1) == 10)
        #expect(lifetime.clamp(-5) == 10)
        #expect(lifetime.clamp(600) == 600)
        #expect(lifetime.clamp(1_000_000) == 86400)
    }
}

/// Topics, their history and app secrets in the real SQLite store.
@Suite("Topic storage")
struct TopicStorageTests {
    func topic(_ store: TestStore, _ name: String, events: Int? = nil, seconds: Int? = nil, external: Bool = true, source: TopicRecord.Source = .api) -> TopicRecord {
        TopicRecord(app: store.app, name: name, externalSubscribable: external, authMode: .public, historyEvents: events, historySeconds: seconds,
                    source: source, createdAt: Clock.now(), updatedAt: Clock.now())
    }

    /// Publishes and collects what would be broadcast.
    final class Broadcasts: RealtimeBroadcasting {
        let events = Mutex<[TopicEvent]>([])
        func broadcast(_ event: TopicEvent) { events.withLock { $0.append(event) } }
        var seqs: [Int64] { events.withLock { $0.map(\.seq) } }
    }

    @Test("a registered topic numbers its events from 1 without holes, keeps the newest N, and broadcasts after commit", arguments: Backend.all)
    func publishNumbersAndTrims(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        try await store.storage.createTopic(topic(store, "chat", events: 3))
        let broadcasts = Broadcasts()
        let pubsub = PubSubService(storage: store.storage, broadcaster: broadcasts)
        var ids: [String] = []
        for index in 1...5 { ids.append(try await pubsub.publish(app: store.app, topic: "chat", message: Array("{\"n\":\(index)}".utf8))) }
        #expect(ids == ["1", "2", "3", "4", "5"])
        #expect(broadcasts.seqs == [1, 2, 3, 4, 5])
        let history = try #require(try await store.storage.topicHistory(app: store.app, topic: "chat", after: 0, limit: 100, now: Clock.now(), defaults: .init()))
        #expect(history.lastSeq == 5)
        #expect(history.events.map(\.seq) == [3, 4, 5])
        #expect(history.events.map(\.message.text) == ["{\"n\":3}", "{\"n\":4}", "{\"n\":5}"])
        #expect(try await store.storage.topicHistory(app: store.app, topic: "ghost", after: 0, limit: 1, now: Clock.now(), defaults: .init()) == nil)
        // An unregistered topic: no id sequence, no history, nothing broadcast.
        let other = try await pubsub.publish(app: store.app, topic: "elsewhere", message: Array("1".utf8))
        #expect(other.hasPrefix("evt_"))
        #expect(broadcasts.seqs.count == 5)
    }

    @Test("publishes from many tasks at once get distinct consecutive ids, broadcast in commit order", arguments: Backend.all)
    func concurrentPublishes(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        try await store.storage.createTopic(topic(store, "busy"))
        let broadcasts = Broadcasts()
        let pubsub = PubSubService(storage: store.storage, broadcaster: broadcasts)
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<200 { group.addTask { try await pubsub.publish(app: store.app, topic: "busy", message: Array("{}".utf8)) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(ids).count == 200)
        #expect(ids.compactMap { Int64($0) }.sorted() == Array(1...200))
        #expect(broadcasts.seqs == Array(1...200), "broadcast in commit order, which is id order")
    }

    @Test("history older than its topic keeps it is not served and is trimmed", arguments: Backend.all)
    func historyAge(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        try await store.storage.createTopic(topic(store, "old", seconds: 60))
        try await store.storage.createTopic(topic(store, "default"))
        let now = Clock.now()
        for (name, age) in [("old", 120_000), ("old", 1000), ("default", 120_000)] as [(String, Int64)] {
            _ = try await store.storage.publish(app: store.app, topic: name, message: Array("{}".utf8), now: now - age, defaults: .init(), enqueue: OutboxEnqueue(targets: [], depth: 1),
                                                event: { _ in [] }, onCommit: { _ in })
        }
        let defaults = TopicHistoryDefaults(events: 100, seconds: 3600)
        #expect(try await store.storage.topicHistory(app: store.app, topic: "old", after: 0, limit: 10, now: now, defaults: defaults)?.events.map(\.seq) == [2])
        #expect(try await store.storage.topicHistory(app: store.app, topic: "default", after: 0, limit: 10, now: now, defaults: defaults)?.events.map(\.seq) == [1])
        #expect(try await store.storage.trimTopicHistory(now: now, defaults: defaults) == 1)
        #expect(try await store.storage.trimTopicHistory(now: now, defaults: TopicHistoryDefaults(events: 100, seconds: 10)) == 1)
    }

    @Test("manifest topics: created, updated, removed; the external flag of an existing topic is kept", arguments: Backend.all)
    func manifestSync(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let topics = TopicService(storage: store.storage, masterKey: Array(repeating: 1, count: 32))
        var first = try await topics.replaceManifestTopics(app: store.app, topics: [topic(store, "a", source: .manifest), topic(store, "b", external: false, source: .manifest)])
        #expect(first.created == ["a", "b"])
        _ = try await topics.create(app: store.app, name: "api-made", externalSubscribable: false, authMode: .token, historyEvents: nil, historySeconds: nil)
        _ = try await topics.setExternal(app: store.app, name: "a", external: false)
        var changed = topic(store, "b", events: 10, source: .manifest)
        changed.authMode = .token
        first = try await topics.replaceManifestTopics(app: store.app, topics: [topic(store, "a", source: .manifest), changed])
        #expect(first.created.isEmpty)
        #expect(first.updated == ["b"])
        #expect(first.authChanged == ["b"])
        #expect(Set(first.externalKept) == ["a", "b"])
        #expect(try await topics.get(app: store.app, name: "a").externalSubscribable == false, "kept as stored")
        #expect(try await topics.get(app: store.app, name: "b").externalSubscribable == false)
        #expect(try await topics.get(app: store.app, name: "b").historyEvents == 10)
        let last = try await topics.replaceManifestTopics(app: store.app, topics: [])
        #expect(last.removed == ["a", "b"])
        #expect(try await topics.list(app: store.app).map(\.name) == ["api-made"], "topics made through the API stay")
        await #expect(throws: ServiceError.self) { try await topics.create(app: store.app, name: "api-made", externalSubscribable: false, authMode: .token, historyEvents: nil, historySeconds: nil) }
        await #expect(throws: ServiceError.self) { try await topics.create(app: store.app, name: "bad*", externalSubscribable: false, authMode: .token, historyEvents: nil, historySeconds: nil) }
        await #expect(throws: ServiceError.self) { try await topics.create(app: store.app, name: "x", externalSubscribable: false, authMode: .token, historyEvents: -1, historySeconds: nil) }
    }

    @Test("the signing key is created once even when many ask at once, sealed at rest, and differs per app", arguments: Backend.all)
    func signingKeys(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        _ = try await store.storage.createApp(name: "second", at: Clock.now())
        let master = Array(repeating: UInt8(3), count: 32)
        // Separate services (separate caches), as on separate nodes.
        let keys = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<16 { group.addTask { try await TopicService(storage: store.storage, masterKey: master).signingKey(app: store.app) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(keys).count == 1)
        #expect(keys[0].count == 32)
        #expect(try await TopicService(storage: store.storage, masterKey: master).signingKey(app: "second") != keys[0])
        // Sealed: the stored bytes are not the key, and another master key cannot open them.
        let stored = try await store.storage.appSecret(app: store.app, name: "realtime_signing_key", orInsert: [], now: Clock.now())
        #expect(stored != keys[0] && stored.count > 32)
        await #expect(throws: ServiceError.self) { try await TopicService(storage: store.storage, masterKey: Array(repeating: 4, count: 32)).signingKey(app: store.app) }
    }

    @Test("tokens are issued for registered topics only, with clamped lifetimes, and verify for their topics", arguments: Backend.all)
    func issueAndVerify(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        try await store.storage.createTopic(topic(store, "news"))
        let topics = TopicService(storage: store.storage, masterKey: Array(repeating: 1, count: 32), tokenLifetime: .init(minimum: 10, maximum: 100, standard: 50))
        let issued = try await topics.issueToken(app: store.app, topics: ["news", "news"], subject: "key_1", seconds: 5000)
        #expect(issued.expiresAt - Clock.now() / 1000 <= 100)
        #expect(try await topics.verifyToken(issued.token, app: store.app, topic: "news")?.topics == ["news"])
        #expect(try await topics.verifyToken(issued.token, app: store.app, topic: "other") == nil)
        #expect(try await topics.verifyToken("garbage", app: store.app, topic: "news") == nil)
        await #expect(throws: ServiceError.self) { try await topics.issueToken(app: store.app, topics: ["ghost"], subject: "k", seconds: nil) }
        await #expect(throws: ServiceError.self) { try await topics.issueToken(app: store.app, topics: [], subject: "k", seconds: nil) }
    }
}

/// Interleaved timing of two variants of one operation, for tests of constant-time checks.
enum Timing {
    /// Median duration of `batch` runs of variant 0 over that of variant 1, over `rounds` rounds
    /// that alternate which variant goes first.
    static func medianRatio(rounds: Int, batch: Int, _ body: (Int) -> Void) -> Double {
        var samples: [[Double]] = [[], []]
        let clock = ContinuousClock()
        for round in 0..<rounds {
            for variant in (round % 2 == 0 ? [0, 1] : [1, 0]) {
                let elapsed = clock.measure { for _ in 0..<batch { body(variant) } }
                samples[variant].append(Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        return median(samples[0]) / median(samples[1])
    }
}
