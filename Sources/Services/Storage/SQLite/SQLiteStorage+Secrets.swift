import Foundation
import GRDB

extension SQLiteStorage {
    public func putSecret(app: String, name: String, sealed: [UInt8], now: Milliseconds) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO secrets (app, name, sealed, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (app, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at
                    """,
                arguments: [app, name, Data(sealed), now, now]
            )
        }
    }

    public func sealedSecret(app: String, name: String) async throws -> [UInt8]? {
        try await read { db in
            try Data.fetchOne(db, sql: "SELECT sealed FROM secrets WHERE app = ? AND name = ?", arguments: [app, name]).map { [UInt8]($0) }
        }
    }

    public func secretSummaries(app: String) async throws -> [SecretSummary] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT name, created_at, updated_at FROM secrets WHERE app = ? ORDER BY name", arguments: [app])
                .map { SecretSummary(name: $0["name"], createdAt: $0["created_at"], updatedAt: $0["updated_at"]) }
        }
    }

    public func deleteSecret(app: String, name: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM secrets WHERE app = ? AND name = ?", arguments: [app, name])
            return db.changesCount > 0
        }
    }
}
