import Foundation
import Services
import Testing

@Suite("files")
struct FileTests {
    @Test("put, get, stat, list, delete; empty files are valid; types are guessed or given", arguments: Backend.all)
    func basics(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let files = FileService(storage: store.storage, store: store.blobs, maxSize: 1024)
        let record = try await files.put(app: "demo", path: "docs/readme.txt", content: Array("hello".utf8), contentType: nil)
        #expect(record.size == 5 && record.contentType == "text/plain; charset=utf-8")
        let empty = try await files.put(app: "demo", path: "docs/empty.bin", content: [], contentType: "application/x-thing")
        #expect(empty.size == 0)
        #expect(try await files.get(app: "demo", path: "docs/empty.bin")?.content == [])
        #expect(try await files.get(app: "demo", path: "docs/readme.txt")?.content == Array("hello".utf8))
        #expect(try await files.list(app: "demo", prefix: "docs/").map(\.path) == ["docs/empty.bin", "docs/readme.txt"])
        let replaced = try await files.put(app: "demo", path: "docs/readme.txt", content: Array("bye".utf8), contentType: nil)
        #expect(replaced.createdAt == record.createdAt)
        #expect(try await files.stat(app: "demo", path: "docs/readme.txt")?.size == 3)
        #expect(try await files.delete(app: "demo", path: "docs/readme.txt"))
        #expect(try await files.get(app: "demo", path: "docs/readme.txt") == nil)
        await #expect(throws: ServiceError.self) { try await files.put(app: "demo", path: "big", content: Array(repeating: 1, count: 1025), contentType: nil) }
        for bad in ["", "/abs", "a/../b", "a//b", "./a", "a\\b"] {
            await #expect(throws: ServiceError.self, "\(bad)") { try await files.put(app: "demo", path: bad, content: [], contentType: nil) }
        }
    }

    @Test("the sweep removes old temp files and unreferenced blobs, and keeps the rest", arguments: Backend.all)
    func sweep(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let files = FileService(storage: store.storage, store: store.blobs)
        _ = try await files.put(app: "demo", path: "keep.txt", content: Array("keep".utf8), contentType: nil)
        let dropped = try await files.put(app: "demo", path: "drop.txt", content: Array("drop".utf8), contentType: nil)
        #expect(try await files.delete(app: "demo", path: "drop.txt"))
        guard backend == .sqlite else {
            // In the database: an unreferenced blob goes once old enough, a young one stays.
            #expect(try await files.sweep().unreferencedBlobs == 0)
            try await Task.sleep(for: .milliseconds(20))
            let result = try await files.sweep(olderThan: .zero)
            #expect(result.unreferencedBlobs == 1)
            #expect(try await files.get(app: "demo", path: "keep.txt")?.content == Array("keep".utf8))
            await #expect(throws: ServiceError.self) { try await store.blobs.read(app: "demo", blob: dropped.blob) }
            return
        }
        let blobs = store.files.root + "/demo/blobs/aa"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        let oldTemp = blobs + "/aa11.tmp.dead"
        let youngTemp = blobs + "/aa22.tmp.beef"
        FileManager.default.createFile(atPath: oldTemp, contents: Data("partial".utf8))
        FileManager.default.createFile(atPath: youngTemp, contents: Data("partial".utf8))
        let hourAndMore = Date().addingTimeInterval(-3700)
        try FileManager.default.setAttributes([.modificationDate: hourAndMore], ofItemAtPath: oldTemp)
        let droppedPath = store.files.root + "/demo/blobs/" + dropped.blob.prefix(2) + "/" + dropped.blob
        try FileManager.default.setAttributes([.modificationDate: hourAndMore], ofItemAtPath: droppedPath)

        let result = try await files.sweep()
        #expect(result.temporaryFiles == 1 && result.unreferencedBlobs == 1)
        #expect(!FileManager.default.fileExists(atPath: oldTemp))
        #expect(FileManager.default.fileExists(atPath: youngTemp))
        #expect(!FileManager.default.fileExists(atPath: droppedPath))
        #expect(try await files.get(app: "demo", path: "keep.txt")?.content == Array("keep".utf8))
    }

    @Test("deleting an app removes its stored file contents", arguments: Backend.all)
    func appDeletion(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let files = FileService(storage: store.storage, store: store.blobs)
        let record = try await files.put(app: "demo", path: "a.txt", content: [1, 2, 3], contentType: nil)
        try await AppService(storage: store.storage, files: store.blobs).delete("demo")
        #expect(!FileManager.default.fileExists(atPath: store.files.root + "/demo"))
        await #expect(throws: ServiceError.self) { try await store.blobs.read(app: "demo", blob: record.blob) }
        #expect(try await store.blobs.apps().isEmpty)
    }

    @Test("a file written through one node is read through another (PostgreSQL)")
    func filesAcrossNodes() async throws {
        guard PostgresTestServer.url != nil else { return }
        let store = try await TestStore(.postgres)
        let other = try await PostgresStorage.open(url: store.url!)
        let writer = FileService(storage: store.storage, store: store.blobs)
        let reader = FileService(storage: other, store: PostgresBlobStore(storage: other))
        let content = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        _ = try await writer.put(app: "demo", path: "big.bin", content: content, contentType: nil)
        #expect(try await reader.get(app: "demo", path: "big.bin")?.content == content)
    }
}

@Suite("logs")
struct LogTests {
    @Test("buffered lines are stored on flush, followed live, filtered by level, trimmed", arguments: Backend.all)
    func logs(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let logs = LogService(storage: store.storage)
        let follow = logs.follow(app: "demo", level: .warn)
        logs.append(app: "demo", level: .info, message: "started", requestID: "r1")
        logs.append(app: "demo", level: .error, message: "boom")
        logs.append(app: "demo", level: .info, message: String(repeating: "x", count: LogService.maxMessageBytes + 10))
        #expect(try await logs.flush() == 3)
        #expect(try await logs.flush() == 0)
        let recent = try await logs.recent(app: "demo")
        #expect(recent.map(\.message).prefix(2) == ["started", "boom"])
        #expect(recent[0].requestID == "r1")
        #expect(recent[2].message.hasSuffix("(cut)"))
        #expect(try await logs.recent(app: "demo", level: .error).map(\.message) == ["boom"])
        var iterator = follow.makeAsyncIterator()
        #expect(await iterator.next()?.message == "boom")
        #expect(try await logs.since(app: "demo", after: recent[0].id).count == 2)
        for index in 0..<20 { logs.append(app: "demo", level: .debug, message: "line \(index)") }
        try await logs.flush()
        #expect(try await logs.trim(keep: 5) == 18)
        #expect(try await logs.recent(app: "demo", limit: 100).count == 5)
    }
}

@Suite("secrets")
struct SecretTests {
    @Test("secrets are sealed at rest, bound to their app and name, and readable back", arguments: Backend.all)
    func sealing(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let key = try SecretService.masterKey(environment: nil, dataDirectory: store.directory)
        #expect(try SecretService.masterKey(environment: nil, dataDirectory: store.directory) == key)
        let permissions = try FileManager.default.attributesOfItem(atPath: store.directory + "/master-key")[.posixPermissions] as? Int
        #expect(permissions == 0o600)
        let secrets = SecretService(storage: store.storage, masterKey: key)
        try await secrets.set(app: "demo", name: "STRIPE_KEY", value: Array("sk_live_123".utf8))
        #expect(try await secrets.get(app: "demo", name: "STRIPE_KEY") == Array("sk_live_123".utf8))
        #expect(try await secrets.list(app: "demo").map(\.name) == ["STRIPE_KEY"])
        let sealed = try #require(try await store.storage.sealedSecret(app: "demo", name: "STRIPE_KEY"))
        #expect(!String(decoding: sealed, as: UTF8.self).contains("sk_live"))
        // Copied into another slot, it does not open.
        _ = try await store.storage.createApp(name: "other", at: 0)
        try await store.storage.putSecret(app: "other", name: "STRIPE_KEY", sealed: sealed, now: 0)
        await #expect(throws: ServiceError.self) { try await secrets.get(app: "other", name: "STRIPE_KEY") }
        let wrongKey = SecretService(storage: store.storage, masterKey: Array(repeating: 7, count: 32))
        await #expect(throws: ServiceError.self) { try await wrongKey.get(app: "demo", name: "STRIPE_KEY") }
        #expect(try await secrets.delete(app: "demo", name: "STRIPE_KEY"))
        #expect(try await secrets.get(app: "demo", name: "STRIPE_KEY") == nil)
        await #expect(throws: ServiceError.self) { try await secrets.set(app: "demo", name: "bad name", value: []) }
        #expect(throws: ServiceError.self) { try SecretService.masterKey(environment: "short", dataDirectory: store.directory) }
        #expect(try SecretService.masterKey(environment: String(repeating: "ab", count: 32), dataDirectory: store.directory) == Array(repeating: 0xAB, count: 32))
    }
}
