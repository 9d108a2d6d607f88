import Foundation
import GRDB
import Testing

@testable import Services

/// The writer's statements bound through SQLite's C API store what GRDB's binding stored, fail
/// as GRDB failed, and can run again after a failure.
@Suite("the writer's hot statements")
struct HotStatementsTests {
    @Test("text, empty text, NULL and integers are stored as GRDB stores them")
    func bindsLikeGRDB() async throws {
        let store = try await TestStore(.sqlite)
        let storage = try #require(store.storage as? SQLiteStorage)
        let values: [(key: String, value: String, expiresAt: Int64?)] = [
            ("plain", "\"x\"", nil), ("empty", "", 7), ("unicode ключ ✓", "{\"a\":\"é\"}", Int64.max), ("", "[]", -1),
        ]
        for entry in values {
            try await storage.kvSet(
                app: "demo", key: entry.key, value: Array(entry.value.utf8), expiresAt: entry.expiresAt, now: 42, enqueue: .none)
        }
        let rows = try await storage.read { db in
            try Row.fetchAll(db, sql: "SELECT key, value, typeof(value) AS type, expires_at, updated_at FROM kv WHERE app = 'demo'").map {
                (key: $0["key"] as String, value: $0["value"] as String, type: $0["type"] as String,
                 expiresAt: $0["expires_at"] as Int64?, updatedAt: $0["updated_at"] as Int64)
            }
        }
        #expect(rows.count == values.count)
        for entry in values {
            let row = try #require(rows.first { $0.key == entry.key }, "\(entry.key)")
            #expect(row.value == entry.value)
            #expect(row.type == "text", "an empty value is text, not NULL")
            #expect(row.expiresAt == entry.expiresAt)
            #expect(row.updatedAt == 42)
        }
    }

    @Test("a failing statement throws SQLite's code and message, binds nothing stale, and runs again")
    func failsAndRecovers() async throws {
        let store = try await TestStore(.sqlite)
        let storage = try #require(store.storage as? SQLiteStorage)
        let error = try await storage.write { db -> DatabaseError? in
            let upsert = try storage.hot.statement(.kvUpsert, on: db)
            try upsert.bind(1, "no-such-app")  // the app's foreign key fails
            try upsert.bind(2, "k")
            try upsert.bind(3, "1")
            try upsert.bind(4, 99 as Int64)
            try upsert.bind(5, 1 as Int64)
            do {
                try upsert.run()
                return nil
            } catch let error as DatabaseError {
                return error
            }
        }
        let failure = try #require(error)
        #expect(failure.resultCode == .SQLITE_CONSTRAINT)
        #expect(failure.extendedResultCode == .SQLITE_CONSTRAINT_FOREIGNKEY)
        #expect(failure.message?.contains("FOREIGN KEY") == true)

        // The same statement, next time, with only some values bound: the rest are NULL, not
        // the failed run's.
        let row = try await storage.write { db -> (value: String, expiresAt: Int64?)? in
            let upsert = try storage.hot.statement(.kvUpsert, on: db)
            // A parameter SQLite does not have is an error, not a silent NULL.
            #expect(throws: DatabaseError.self) { try upsert.bind(6, 1 as Int64) }
            try upsert.bind(1, "demo")
            try upsert.bind(2, "k")
            try upsert.bind(3, "2")
            try upsert.bind(5, 2 as Int64)
            try upsert.run()
            return try Row.fetchOne(db, sql: "SELECT value, expires_at FROM kv WHERE app = 'demo' AND key = 'k'").map {
                (value: $0["value"] as String, expiresAt: $0["expires_at"] as Int64?)
            }
        }
        #expect(row?.value == "2")
        #expect(row != nil && row?.expiresAt == nil)
    }
}
