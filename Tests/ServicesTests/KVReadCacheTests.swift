import Foundation
import Services
import Synchronization
import Testing

/// SQLite's kv read cache: hits without a database read, and never an answer older than an
/// acknowledged write.
@Suite("kv read cache")
struct KVReadCacheTests {
    func store(cacheEntries: Int = SQLiteStorage.defaultKVCacheEntries) throws -> (SQLiteStorage, KVService) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-kvcache-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let storage = try SQLiteStorage(path: directory + "/picloud.sqlite", durability: .normal, kvCacheEntries: cacheEntries)
        return (storage, KVService(storage: storage))
    }

    @Test("a read fills the cache; every kind of write empties it for its key")
    func fillAndInvalidate() async throws {
        let (storage, kv) = try store()
        _ = try await storage.createApp(name: "demo", at: Clock.now())
        #expect(storage.kvCached(app: "demo", key: "a", now: Clock.now()) == nil, "nothing read yet")
        #expect(try await kv.get(app: "demo", key: "a") == nil)
        #expect(storage.kvCached(app: "demo", key: "a", now: Clock.now()) == .some(nil), "known to be absent")
        try await kv.set(app: "demo", key: "a", value: Array("1".utf8))
        #expect(storage.kvCached(app: "demo", key: "a", now: Clock.now()) == nil, "a set empties it")
        #expect(try await kv.get(app: "demo", key: "a")?.value == Array("1".utf8))
        #expect(storage.kvCached(app: "demo", key: "a", now: Clock.now())??.value == Array("1".utf8))
        #expect(try await kv.increment(app: "demo", key: "a") == 2)
        #expect(storage.kvCached(app: "demo", key: "a", now: Clock.now()) == nil, "incr empties it")
        #expect(try await kv.get(app: "demo", key: "a")?.value == Array("2".utf8))
        #expect(try await kv.delete(app: "demo", key: "a"))
        #expect(storage.kvCached(app: "demo", key: "a", now: Clock.now()) == nil, "delete empties it")
        #expect(try await kv.get(app: "demo", key: "a") == nil)

        // Entries with a ttl leave the cache's answers when they expire.
        let setAt = Clock.now()
        try await kv.set(app: "demo", key: "t", value: Array("1".utf8), ttl: 3)
        let read = try await kv.get(app: "demo", key: "t")
        let cached = storage.kvCached(app: "demo", key: "t", now: Clock.now())
        // Within its 3 s (a loaded CI machine can take longer than that to commit the write).
        if Clock.now() - setAt < 2900 {
            #expect(read != nil)
            #expect(cached??.value == Array("1".utf8))
        }
        try await Task.sleep(for: .milliseconds(3100))
        #expect(storage.kvCached(app: "demo", key: "t", now: Clock.now()) == .some(nil))
        #expect(try await kv.get(app: "demo", key: "t") == nil)

        // Deleting the app takes its entries, cached or not.
        try await kv.set(app: "demo", key: "b", value: Array("1".utf8))
        #expect(try await kv.get(app: "demo", key: "b") != nil)
        #expect(try await storage.deleteApp(named: "demo"))
        _ = try await storage.createApp(name: "demo", at: Clock.now())
        #expect(try await kv.get(app: "demo", key: "b") == nil)
    }

    @Test("switched off (PICLOUD_KV_CACHE_ENTRIES=0), every read goes to the database")
    func off() async throws {
        let (storage, kv) = try store(cacheEntries: 0)
        _ = try await storage.createApp(name: "demo", at: Clock.now())
        try await kv.set(app: "demo", key: "a", value: Array("1".utf8))
        #expect(try await kv.get(app: "demo", key: "a") != nil)
        #expect(storage.kvCached(app: "demo", key: "a", now: Clock.now()) == nil)
    }

    @Test("without waiting, a key is read on the calling thread when the cache does not know it")
    func readNow() async throws {
        let (storage, kv) = try store(cacheEntries: 0)
        _ = try await storage.createApp(name: "demo", at: Clock.now())
        #expect(kv.getNow(app: "demo", key: "a") == .some(nil), "absent")
        try await kv.set(app: "demo", key: "a", value: Array("1".utf8))
        #expect(kv.getNow(app: "demo", key: "a")??.value == Array("1".utf8))
        let setAt = Clock.now()
        try await kv.set(app: "demo", key: "t", value: Array("2".utf8), ttl: 1)
        let live = kv.getNow(app: "demo", key: "t")
        // Within its second (a loaded CI machine once took longer than that to commit the write).
        if Clock.now() - setAt < 900 { #expect(live??.value == Array("2".utf8)) }
        try await Task.sleep(for: .milliseconds(1100))
        #expect(kv.getNow(app: "demo", key: "t") == .some(nil), "expired")
        #expect(kv.getNow(app: "demo", key: "") == nil, "invalid keys are left to get, which explains")
        // Read by column position through SQLite's C API: the same entry as a listing, which
        // decodes GRDB's rows by name, multi-byte text and the expiry included.
        let text = Array("\"héllo wörld ✓ 𝄞\"".utf8)
        try await kv.set(app: "demo", key: "u", value: text, ttl: 3600)
        let local = try #require(kv.getNow(app: "demo", key: "u") ?? nil)
        let listed = try await storage.kvList(app: "demo", prefix: "u", after: nil, limit: 10, now: Clock.now())
        #expect(local.value == text && local.expiresAt != nil)
        #expect([local] == listed)
        #expect(try await kv.get(app: "demo", key: "u") == local, "the pool's read, the same way")

        // Many threads at once, each on its own connection (or, past the limit, told to wait).
        let threads = 40
        let answers = Mutex<[KVEntry??]>([])
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let left = Atomic<Int>(threads)
            for _ in 0..<threads {
                Thread.detachNewThread {
                    let answer = kv.getNow(app: "demo", key: "a")
                    answers.withLock { $0.append(answer) }
                    if left.subtract(1, ordering: .relaxed).newValue == 0 { done.resume() }
                }
            }
        }
        let all = answers.withLock { $0 }
        #expect(all.count == threads)
        #expect(all.allSatisfy { $0 == nil || $0??.value == Array("1".utf8) })
        #expect(all.filter { $0 != nil }.count >= 1)
    }

    @Test("the cache holds at most its capacity")
    func bounded() async throws {
        let (storage, kv) = try store(cacheEntries: 10)
        _ = try await storage.createApp(name: "demo", at: Clock.now())
        for index in 0..<50 { _ = try await kv.get(app: "demo", key: "k\(index)") }
        let known = (0..<50).filter { storage.kvCached(app: "demo", key: "k\($0)", now: Clock.now()) != nil }.count
        #expect(known == 10)
    }

    @Test("readers racing writers never see a value older than an acknowledged write", arguments: [64, 0])
    func noStaleReads(cacheEntries: Int) async throws {
        let (storage, kv) = try store(cacheEntries: cacheEntries)
        _ = try await storage.createApp(name: "demo", at: Clock.now())
        let keys = (0..<4).map { "counter\($0)" }
        let writes = 300
        let race = Race(keys: keys.count)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, key) in keys.enumerated() {
                group.addTask {
                    for value in 1...writes {
                        try await kv.set(app: "demo", key: key, value: Array(String(value).utf8))
                        race.acknowledged.withLock { $0[index] = value }
                    }
                }
            }
            for reader in 0..<8 {
                group.addTask {
                    var round = 0
                    while race.acknowledged.withLock({ $0.contains { $0 < writes } }) {
                        let index = (reader + round) % keys.count
                        round += 1
                        let floor = race.acknowledged.withLock { $0[index] }
                        // Half the reads take the path handlers take: the cache, else a read on
                        // this thread.
                        let entry: KVEntry?
                        if round % 2 == 0, let known = kv.getNow(app: "demo", key: keys[index]) {
                            entry = known
                        } else {
                            entry = try await kv.get(app: "demo", key: keys[index])
                        }
                        let seen = entry.flatMap { Int(String(decoding: $0.value, as: UTF8.self)) } ?? 0
                        race.reads.add(1, ordering: .relaxed)
                        if seen < floor { race.violations.withLock { $0.append("\(keys[index]): read \(seen) after \(floor) was acknowledged") } }
                        // Reads that answer at once never suspend: let the writers' acknowledgements
                        // have the (two) cooperative threads too.
                        await Task.yield()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(race.violations.withLock { $0 }.isEmpty, "\(race.violations.withLock { $0.prefix(5) })")
        #expect(race.reads.load(ordering: .relaxed) > 100)
        for key in keys { #expect(try await kv.get(app: "demo", key: key)?.value == Array(String(writes).utf8)) }
    }
}

/// What the racing tasks share.
private final class Race: Sendable {
    let acknowledged: Mutex<[Int]>
    let violations = Mutex<[String]>([])
    let reads = Atomic<Int>(0)

    init(keys: Int) { acknowledged = Mutex(Array(repeating: 0, count: keys)) }
}
