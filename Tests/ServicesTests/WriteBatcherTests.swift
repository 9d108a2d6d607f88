import Foundation
import GRDB
import Synchronization
import Testing

@testable import Services

@Suite("SQLite write batches")
struct WriteBatcherTests {
    struct Refused: Error {}

    /// A batch runs without savepoints until a write in it fails; then it runs again with one per
    /// write. A write that changed rows before it threw must leave none of them, and take no
    /// other write with it.
    @Test("a write that fails after changing rows leaves nothing, and its batch's other writes commit")
    func failingWriteAmongOthers() async throws {
        let store = try await TestStore(.sqlite)
        let storage = try #require(store.storage as? SQLiteStorage)
        @Sendable func insert(_ db: Database, _ key: String) throws {
            try db.execute(
                sql: "INSERT INTO kv (app, key, value, expires_at, updated_at) VALUES ('demo', ?, '1', NULL, 1)", arguments: [key])
        }
        let outcomes = try await storage.writesSharingABatch(60, first: { db in try insert(db, "first") }) { db, index in
            try insert(db, "k\(index)")
            if index % 3 == 0 { throw Refused() }
        }
        for (index, ok) in outcomes { #expect(ok == (index % 3 != 0), "write \(index)") }
        let keys = try await storage.read { db in try String.fetchAll(db, sql: "SELECT key FROM kv WHERE app = 'demo' ORDER BY key") }
        let expected = ["first"] + (0..<60).filter { $0 % 3 != 0 }.map { "k\($0)" }
        #expect(keys == expected.sorted())
        // The writer goes back to batches without savepoints and still commits.
        try await storage.write { db in try insert(db, "after") }
        #expect(try await storage.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM kv WHERE key = 'after'") } == 1)
    }
}

extension SQLiteStorage {
    /// Runs `count` writes (`body` with each index) queued up behind a first one (`first`) that
    /// holds the writer for 0.2 s, so that they share its next batch. → whether each write
    /// succeeded, by index.
    func writesSharingABatch(
        _ count: Int, first: @escaping @Sendable (Database) throws -> Void = { _ in },
        _ body: @escaping @Sendable (Database, Int) throws -> Void
    ) async throws -> [Int: Bool] {
        let holding = Task { try await write { db in Thread.sleep(forTimeInterval: 0.2); try first(db) } }
        try await Task.sleep(for: .milliseconds(50))
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for index in 0..<count {
                group.addTask { (index, (try? await self.write { db in try body(db, index) }) != nil) }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        try await holding.value
        return outcomes
    }
}
