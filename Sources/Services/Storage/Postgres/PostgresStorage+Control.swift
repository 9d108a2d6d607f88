import Foundation
import NIOCore
import PostgresNIO

extension PostgresStorage {
    // MARK: Apps

    public func createApp(name: String, at: Milliseconds) async throws -> AppRecord {
        try await write { connection in
            let inserted = try await connection.run("INSERT INTO apps (name, created_at) VALUES (\(name), \(at)) ON CONFLICT (name) DO NOTHING RETURNING 1", logger)
            guard inserted > 0 else { throw ServiceError(.conflict, "an app named '\(name)' already exists") }
            return AppRecord(name: name, createdAt: at)
        }
    }

    public func app(named name: String) async throws -> AppRecord? {
        try await read { connection in
            try await connection.first("SELECT name, created_at, current_version FROM apps WHERE name = \(name)", logger).map(Self.app)
        }
    }

    public func apps() async throws -> [AppRecord] {
        try await read { connection in
            try await connection.all("SELECT name, created_at, current_version FROM apps ORDER BY name COLLATE \"C\"", logger).map(Self.app)
        }
    }

    public func deleteApp(named name: String) async throws -> Bool {
        try await write { connection in
            guard try await connection.run("DELETE FROM apps WHERE name = \(name) RETURNING 1", logger) > 0 else { return false }
            try await announce(connection, app: name)
            return true
        }
    }

    static func app(_ row: PostgresRandomAccessRow) throws -> AppRecord {
        AppRecord(name: try row.get("name"), createdAt: try row.get("created_at"), currentVersion: try row.get("current_version"))
    }

    // MARK: Keys

    public func insertKey(_ key: KeyRecord) async throws {
        try await write { connection in
            try await connection.run("""
                INSERT INTO api_keys (id, app, name, prefix, hash, scopes, created_at)
                VALUES (\(key.id), \(key.app), \(key.name), \(key.prefix), \(ByteBuffer(bytes: key.hash)), \(key.scopes.text), \(key.createdAt))
                """, logger)
        }
    }

    public func key(hash: [UInt8]) async throws -> KeyRecord? {
        try await read { connection in
            try await connection.first("SELECT id, app, name, prefix, hash, scopes, created_at FROM api_keys WHERE hash = \(ByteBuffer(bytes: hash))", logger).map(Self.key)
        }
    }

    public func keys(app: String?) async throws -> [KeyRecord] {
        try await read { connection in
            try await connection.all(
                "SELECT id, app, name, prefix, hash, scopes, created_at FROM api_keys WHERE app IS NOT DISTINCT FROM \(app) ORDER BY created_at, id COLLATE \"C\"", logger
            ).map(Self.key)
        }
    }

    public func deleteKey(id: String, app: String?) async throws -> Bool {
        try await write { connection in
            try await connection.run("DELETE FROM api_keys WHERE id = \(id) AND app IS NOT DISTINCT FROM \(app) RETURNING 1", logger) > 0
        }
    }

    static func key(_ row: PostgresRandomAccessRow) throws -> KeyRecord {
        let scopes = Set((try row.get("scopes", as: String.self)).split(separator: " ").compactMap { Scope(rawValue: String($0)) })
        return KeyRecord(
            id: try row.get("id"), app: try row.get("app"), name: try row.get("name"), prefix: try row.get("prefix"),
            hash: try row.bytes("hash"), scopes: scopes, createdAt: try row.get("created_at")
        )
    }

    // MARK: Deployments

    public func insertDeployment(app: String, manifest: String, files: [String: String], at: Milliseconds, by: String?) async throws -> DeploymentRecord {
        let filesJSON = String(decoding: try JSONEncoder.sorted.encode(files), as: UTF8.self)
        return try await write { connection in
            // Locks the app row: two deployments of one app at once get consecutive versions.
            guard try await connection.first("SELECT 1 FROM apps WHERE name = \(app) FOR UPDATE", logger) != nil else {
                throw ServiceError(.notFound, "no app named '\(app)'")
            }
            let version = (try await connection.first("SELECT MAX(version) AS v FROM deployments WHERE app = \(app)", logger)?.get("v", as: Int?.self) ?? 0) + 1
            try await connection.run("""
                INSERT INTO deployments (app, version, manifest, files, created_at, created_by) VALUES (\(app), \(version), \(manifest), \(filesJSON), \(at), \(by))
                """, logger)
            try await connection.run("UPDATE apps SET current_version = \(version) WHERE name = \(app)", logger)
            try await announce(connection, app: app)
            return DeploymentRecord(app: app, version: version, manifest: manifest, files: files, createdAt: at, createdBy: by)
        }
    }

    public func deployment(app: String, version: Int?) async throws -> DeploymentRecord? {
        try await read { connection in
            let row: PostgresRandomAccessRow?
            if let version {
                row = try await connection.first("SELECT * FROM deployments WHERE app = \(app) AND version = \(version)", logger)
            } else {
                row = try await connection.first(
                    "SELECT d.* FROM deployments d JOIN apps a ON a.name = d.app AND a.current_version = d.version WHERE a.name = \(app)", logger
                )
            }
            return try row.map { try Self.deployment($0, withFiles: true) }
        }
    }

    public func deploymentHistory(app: String) async throws -> [DeploymentRecord] {
        try await read { connection in
            try await connection.all("SELECT app, version, manifest, created_at, created_by FROM deployments WHERE app = \(app) ORDER BY version DESC", logger)
                .map { try Self.deployment($0, withFiles: false) }
        }
    }

    public func currentDeployments() async throws -> [DeploymentRecord] {
        try await read { connection in
            try await connection.all("SELECT d.* FROM deployments d JOIN apps a ON a.name = d.app AND a.current_version = d.version ORDER BY a.name COLLATE \"C\"", logger)
                .map { try Self.deployment($0, withFiles: true) }
        }
    }

    static func deployment(_ row: PostgresRandomAccessRow, withFiles: Bool) throws -> DeploymentRecord {
        let files = withFiles ? try JSONDecoder().decode([String: String].self, from: Data((try row.get("files", as: String.self)).utf8)) : [:]
        return DeploymentRecord(
            app: try row.get("app"), version: try row.get("version"), manifest: try row.get("manifest"), files: files,
            createdAt: try row.get("created_at"), createdBy: try row.get("created_by")
        )
    }

    // MARK: Values every node must agree on

    /// The stored value of a cluster setting, or `value` stored now if there is none (the first
    /// node to start decides).
    public func clusterSetting(_ name: String, orInsert value: [UInt8]) async throws -> [UInt8] {
        try await write { connection in
            try await connection.run(
                "INSERT INTO cluster_settings (name, value, created_at) VALUES (\(name), \(ByteBuffer(bytes: value)), \(Clock.now())) ON CONFLICT (name) DO NOTHING", logger
            )
            guard let row = try await connection.first("SELECT value FROM cluster_settings WHERE name = \(name)", logger) else {
                throw ServiceError(.internal, "cluster setting '\(name)' vanished")
            }
            return try row.bytes("value")
        }
    }

    // MARK: Secrets

    public func putSecret(app: String, name: String, sealed: [UInt8], now: Milliseconds) async throws {
        try await write { connection in
            try await connection.run("""
                INSERT INTO secrets (app, name, sealed, created_at, updated_at) VALUES (\(app), \(name), \(ByteBuffer(bytes: sealed)), \(now), \(now))
                ON CONFLICT (app, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at
                """, logger)
        }
    }

    public func sealedSecret(app: String, name: String) async throws -> [UInt8]? {
        try await read { connection in
            try await connection.first("SELECT sealed FROM secrets WHERE app = \(app) AND name = \(name)", logger).map { try $0.bytes("sealed") }
        }
    }

    public func secretSummaries(app: String) async throws -> [SecretSummary] {
        try await read { connection in
            try await connection.all("SELECT name, created_at, updated_at FROM secrets WHERE app = \(app) ORDER BY name COLLATE \"C\"", logger).map {
                SecretSummary(name: try $0.get("name"), createdAt: try $0.get("created_at"), updatedAt: try $0.get("updated_at"))
            }
        }
    }

    public func deleteSecret(app: String, name: String) async throws -> Bool {
        try await write { connection in
            try await connection.run("DELETE FROM secrets WHERE app = \(app) AND name = \(name) RETURNING 1", logger) > 0
        }
    }

    // MARK: Logs

    public func appendLogs(_ entries: [LogEntry]) async throws -> [LogEntry] {
        guard !entries.isEmpty else { return [] }
        return try await write { connection in
            var stored: [LogEntry] = []
            for var entry in entries {
                // Skipped when the app was deleted meanwhile.
                guard let row = try await connection.first("""
                    INSERT INTO logs (app, at, level, message, request_id)
                    SELECT \(entry.app), \(entry.at), \(entry.level.rawValue), \(entry.message), \(entry.requestID) WHERE EXISTS (SELECT 1 FROM apps WHERE name = \(entry.app))
                    RETURNING id
                    """, logger) else { continue }
                entry.id = try row.get("id")
                stored.append(entry)
            }
            return stored
        }
    }

    public func logs(app: String, after: Int64?, minimumLevel: LogEntry.Level, limit: Int) async throws -> [LogEntry] {
        try await read { connection in
            try await connection.all("""
                SELECT * FROM logs WHERE app = \(app) AND id > \(after ?? 0) AND level = ANY(\(Self.levels(from: minimumLevel))) ORDER BY id LIMIT \(limit)
                """, logger).map(Self.log)
        }
    }

    public func recentLogs(app: String, minimumLevel: LogEntry.Level, limit: Int) async throws -> [LogEntry] {
        try await read { connection in
            try await connection.all("""
                SELECT * FROM logs WHERE app = \(app) AND level = ANY(\(Self.levels(from: minimumLevel))) ORDER BY id DESC LIMIT \(limit)
                """, logger).map(Self.log).reversed()
        }
    }

    public func trimLogs(keep: Int) async throws -> Int {
        try await write { connection in
            var removed = 0
            for app in try await connection.all("SELECT name FROM apps", logger).map({ try $0.get("name", as: String.self) }) {
                guard let cutoff = try await connection.first("SELECT id FROM logs WHERE app = \(app) ORDER BY id DESC LIMIT 1 OFFSET \(keep)", logger) else { continue }
                removed += try await connection.run("DELETE FROM logs WHERE app = \(app) AND id <= \(try cutoff.get("id", as: Int64.self)) RETURNING 1", logger)
            }
            return removed
        }
    }

    static func levels(from level: LogEntry.Level) -> [String] {
        LogEntry.Level.allCases.filter { $0 >= level }.map(\.rawValue)
    }

    static func log(_ row: PostgresRandomAccessRow) throws -> LogEntry {
        LogEntry(
            id: try row.get("id"), app: try row.get("app"), at: try row.get("at"), level: LogEntry.Level(rawValue: try row.get("level")) ?? .info,
            message: try row.get("message"), requestID: try row.get("request_id")
        )
    }
}
