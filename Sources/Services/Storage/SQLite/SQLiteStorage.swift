import Foundation
import GRDB
public import Logging

/// The embedded backend: one SQLite file in WAL mode, reached through a GRDB pool (one writer,
/// several concurrent readers). Migrations from `migrations/sqlite/` run at open.
public final class SQLiteStorage: StorageBackend {
    /// How hard commits are pushed to disk. `full` survives power loss; `normal` survives process
    /// crashes (the WAL is in the OS cache) and is faster.
    public enum Durability: String, Sendable {
        case full, normal
    }

    let pool: DatabasePool
    let logger: Logger

    /// Opens (creating if needed) the database at `path` and migrates it.
    public init(path: String, durability: Durability = .full, logger: Logger = Logger(label: "picloud.storage")) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.maximumReaderCount = 4
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(durability == .full ? "FULL" : "NORMAL")")
        }
        self.pool = try DatabasePool(path: path, configuration: configuration)
        self.logger = logger
        try migrate()
    }

    /// The migrations this backend runs, in order.
    static var migrations: [(version: Int, name: String, sql: String)] {
        EmbeddedMigrations.files.compactMap { file in
            guard file.path.hasPrefix("migrations/sqlite/") else { return nil }
            let name = String(file.path.dropFirst("migrations/sqlite/".count).dropLast(".sql".count))
            guard let version = Int(name.prefix(while: \.isNumber)) else { return nil }
            return (version, name, file.contents)
        }.sorted { $0.version < $1.version }
    }

    private func migrate() throws {
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)
                """)
            let applied = Set(try Int.fetchAll(db, sql: "SELECT version FROM schema_migrations"))
            for migration in Self.migrations where !applied.contains(migration.version) {
                try db.inTransaction {
                    try db.execute(sql: migration.sql)
                    try db.execute(
                        sql: "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        arguments: [migration.version, migration.name, Clock.now()]
                    )
                    return .commit
                }
                logger.info("applied migration \(migration.name)")
            }
        }
    }

    /// Versions recorded as applied.
    public func appliedMigrations() async throws -> [Int] {
        try await pool.read { db in try Int.fetchAll(db, sql: "SELECT version FROM schema_migrations ORDER BY version") }
    }

    /// The schema as SQLite prints it (tables and indexes), for snapshot tests.
    public func schema() async throws -> String {
        try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type DESC, name")
                .joined(separator: ";\n")
        }
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    public func integrityCheck() async throws -> String {
        try await pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "\n") }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.write(body)
        } catch let error as DatabaseError {
            throw Self.map(error)
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch let error as DatabaseError {
            throw Self.map(error)
        }
    }

    static func map(_ error: DatabaseError) -> any Error {
        switch error.resultCode {
        case .SQLITE_FULL: ServiceError(.unavailable, "the disk is full", underlying: error)
        case .SQLITE_BUSY, .SQLITE_LOCKED: ServiceError(.unavailable, "the database is busy; retry", underlying: error)
        default: ServiceError(.internal, "database error", underlying: error)
        }
    }
}

/// The one clock of storage: milliseconds since the epoch.
public enum Clock {
    public static func now() -> Milliseconds {
        Milliseconds((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }
}
