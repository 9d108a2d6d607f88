import Foundation
import GRDB

extension SQLiteStorage {
    // MARK: Apps

    public func createApp(name: String, at: Milliseconds) async throws -> AppRecord {
        try await write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM apps WHERE name = ?", arguments: [name]) == nil else {
                throw ServiceError(.conflict, "an app named '\(name)' already exists")
            }
            try db.execute(sql: "INSERT INTO apps (name, created_at) VALUES (?, ?)", arguments: [name, at])
            return AppRecord(name: name, createdAt: at)
        }
    }

    public func app(named name: String) async throws -> AppRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT name, created_at, current_version FROM apps WHERE name = ?", arguments: [name]).map(Self.app)
        }
    }

    public func apps() async throws -> [AppRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT name, created_at, current_version FROM apps ORDER BY name").map(Self.app)
        }
    }

    public func deleteApp(named name: String) async throws -> Bool {
        // The app's kv entries go with it (ON DELETE CASCADE).
        kvCache.beginWriteEverything()
        defer { kvCache.endWriteEverything() }
        return try await write { db in
            try db.execute(sql: "DELETE FROM apps WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }

    static func app(_ row: Row) -> AppRecord {
        AppRecord(name: row["name"], createdAt: row["created_at"], currentVersion: row["current_version"])
    }

    // MARK: Keys

    public func insertKey(_ key: KeyRecord) async throws {
        try await write { db in
            try db.execute(
                sql: "INSERT INTO api_keys (id, app, name, prefix, hash, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [key.id, key.app, key.name, key.prefix, Data(key.hash), key.scopes.text, key.createdAt]
            )
        }
    }

    public func key(hash: [UInt8]) async throws -> KeyRecord? {
        try await read { db in
            let statement = try db.cachedStatement(sql: "SELECT id, app, name, prefix, hash, scopes, created_at FROM api_keys WHERE hash = ?")
            return try Row.fetchOne(statement, arguments: [Data(hash)]).map(Self.key)
        }
    }

    public func keys(app: String?) async throws -> [KeyRecord] {
        try await read { db in
            let sql = "SELECT id, app, name, prefix, hash, scopes, created_at FROM api_keys WHERE app IS ? ORDER BY created_at, id"
            return try Row.fetchAll(db, sql: sql, arguments: [app]).map(Self.key)
        }
    }

    public func deleteKey(id: String, app: String?) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM api_keys WHERE id = ? AND app IS ?", arguments: [id, app])
            return db.changesCount > 0
        }
    }

    static func key(_ row: Row) -> KeyRecord {
        let scopes = Set((row["scopes"] as String).split(separator: " ").compactMap { Scope(rawValue: String($0)) })
        return KeyRecord(
            id: row["id"], app: row["app"], name: row["name"], prefix: row["prefix"],
            hash: [UInt8](row["hash"] as Data), scopes: scopes, createdAt: row["created_at"]
        )
    }

    // MARK: Deployments

    public func insertDeployment(app: String, manifest: String, files: [String: String], at: Milliseconds, by: String?) async throws -> DeploymentRecord {
        let filesJSON = String(decoding: try JSONEncoder.sorted.encode(files), as: UTF8.self)
        return try await write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM apps WHERE name = ?", arguments: [app]) != nil else {
                throw ServiceError(.notFound, "no app named '\(app)'")
            }
            let version = (try Int.fetchOne(db, sql: "SELECT MAX(version) FROM deployments WHERE app = ?", arguments: [app]) ?? 0) + 1
            try db.execute(
                sql: "INSERT INTO deployments (app, version, manifest, files, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [app, version, manifest, filesJSON, at, by]
            )
            try db.execute(sql: "UPDATE apps SET current_version = ? WHERE name = ?", arguments: [version, app])
            return DeploymentRecord(app: app, version: version, manifest: manifest, files: files, createdAt: at, createdBy: by)
        }
    }

    public func deployment(app: String, version: Int?) async throws -> DeploymentRecord? {
        try await read { db in
            let row: Row?
            if let version {
                row = try Row.fetchOne(db, sql: "SELECT * FROM deployments WHERE app = ? AND version = ?", arguments: [app, version])
            } else {
                row = try Row.fetchOne(
                    db, sql: "SELECT d.* FROM deployments d JOIN apps a ON a.name = d.app AND a.current_version = d.version WHERE a.name = ?",
                    arguments: [app]
                )
            }
            return try row.map { try Self.deployment($0, withFiles: true) }
        }
    }

    public func deploymentHistory(app: String) async throws -> [DeploymentRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT app, version, manifest, created_at, created_by FROM deployments WHERE app = ? ORDER BY version DESC", arguments: [app])
                .map { try Self.deployment($0, withFiles: false) }
        }
    }

    public func currentDeployments() async throws -> [DeploymentRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT d.* FROM deployments d JOIN apps a ON a.name = d.app AND a.current_version = d.version ORDER BY a.name")
                .map { try Self.deployment($0, withFiles: true) }
        }
    }

    static func deployment(_ row: Row, withFiles: Bool) throws -> DeploymentRecord {
        let files = withFiles ? try JSONDecoder().decode([String: String].self, from: Data((row["files"] as String).utf8)) : [:]
        return DeploymentRecord(
            app: row["app"], version: row["version"], manifest: row["manifest"], files: files,
            createdAt: row["created_at"], createdBy: row["created_by"]
        )
    }
}

extension JSONEncoder {
    /// Deterministic output (sorted keys), for anything stored.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
