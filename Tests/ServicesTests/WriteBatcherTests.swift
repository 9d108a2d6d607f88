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
        // The first write holds the writer, so that the others queue up and share the next batch.
        let holding = Task { try await storage.write { db in Thread.sleep(forTimeInterval: 0.2); try insert(db, "first") } }
        try await Task.sleep(for: .milliseconds(50))
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for index in 0..<60 {
                group.addTask {
                    let ok = (try? await storage.write { db -> Bool in
                        try insert(db, "k\(index)")
                        if index % 3 == 0 { throw Refused() }
                        return true
                    }) != nil
                    return (index, ok)
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        try await holding.value
        for (index, ok) in outcomes { #expect(ok == (index % 3 != 0), "write \(index)") }
        let keys = try await storage.read { db in try String.fetchAll(db, sql: "SELECT key FROM kv WHERE app = 'demo' ORDER BY key") }
        let expected = ["first"] + (0..<60).filter { $0 % 3 != 0 }.map { "k\($0)" }
        #expect(keys == expected.sorted())
        // The writer goes back to batches without savepoints and still commits.
        try await storage.write { db in try insert(db, "after") }
        #expect(try await storage.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM kv WHERE key = 'after'") } == 1)
    }
}
