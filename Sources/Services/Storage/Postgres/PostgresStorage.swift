import Foundation
public import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// The backend for several nodes: one PostgreSQL database shared by every `picloud` process,
/// reached through PostgresNIO's connection pool (no thread blocks on a query). Migrations from
/// `migrations/postgres/` run at open under an advisory lock, so nodes starting together migrate
/// exactly once. Each method is one transaction, as on SQLite; nodes coordinate through row locks
/// (`FOR UPDATE SKIP LOCKED` on the outbox, conditional updates for cron) and `LISTEN/NOTIFY`
/// (see ``listen(_:)``).
public final class PostgresStorage: StorageBackend {
    let client: PostgresClient
    let location: PostgresLocation
    let logger: Logger
    /// Tells this node's own notifications from the others'.
    let nodeID = Identifiers.randomHex(8)
    /// One publish at a time per topic on this node (see ``publish(app:topic:message:now:defaults:enqueue:event:onCommit:)``).
    let publishTurns = KeyedLock<TopicKey>()
    /// Topics whose last publish on this node found them not registered.
    let unregisteredTopics = BoundedSet<TopicKey>(limit: 10_000)
    private let runner: Task<Void, Never>

    /// Connects (lazily: the pool opens connections as queries need them) and migrates.
    public static func open(url: String, maximumConnections: Int = 16, logger: Logger = Logger(label: "picloud.storage")) async throws -> PostgresStorage {
        let storage = try PostgresStorage(location: PostgresLocation(url: url), maximumConnections: maximumConnections, logger: logger)
        do {
            try await storage.migrate()
        } catch {
            storage.close()
            throw error
        }
        return storage
    }

    init(location: PostgresLocation, maximumConnections: Int, logger: Logger) throws {
        var configuration = location.clientConfiguration
        configuration.options.maximumConnections = maximumConnections
        configuration.options.minimumConnections = 0
        configuration.options.connectionIdleTimeout = .seconds(60)
        self.location = location
        self.logger = logger
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.runner = Task { await client.run() }
    }

    deinit { runner.cancel() }

    /// Closes every connection; queries after this fail.
    public func close() { runner.cancel() }

    // MARK: Migrations

    /// The migrations this backend runs, in order.
    static var migrations: [(version: Int, name: String, sql: String)] {
        EmbeddedMigrations.files.compactMap { file in
            guard file.path.hasPrefix("migrations/postgres/") else { return nil }
            let name = String(file.path.dropFirst("migrations/postgres/".count).dropLast(".sql".count))
            guard let version = Int(name.prefix(while: \.isNumber)) else { return nil }
            return (version, name, file.contents)
        }.sorted { $0.version < $1.version }
    }

    /// The advisory lock nodes take to migrate one at a time ("picloud" in ASCII).
    static let migrationLock: Int64 = 0x7069_636C_6F75_64

    /// Migrates on a connection of its own (the pool is still starting), in one transaction.
    private func migrate() async throws {
        let logger = logger
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.any(), configuration: location.connectionConfiguration(name: "picloud-migrate"), id: 0, logger: logger
            )
        } catch {
            throw ServiceError(.unavailable, "cannot connect to PostgreSQL at \(location): \(String(reflecting: error))", underlying: error)
        }
        do {
            try await migrate(on: connection)
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }

    private func migrate(on connection: PostgresConnection) async throws {
        let logger = logger
        try await connection.withTransaction(logger: logger) { connection in
            // Held until this transaction ends: a second node waits here, then finds nothing to do.
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)
                """, logger: logger)
            var applied = Set<Int>()
            for try await version in try await connection.query("SELECT version FROM schema_migrations", logger: logger).decode(Int.self) {
                applied.insert(version)
            }
            for migration in Self.migrations where !applied.contains(migration.version) {
                for statement in Self.statements(migration.sql) {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(migration.version), \(migration.name), \(Clock.now()))",
                    logger: logger
                )
                logger.info("applied migration \(migration.name)")
            }
        }
    }

    /// The statements of a migration file, split at semicolons outside quotes, `$$` bodies and
    /// comments (the extended protocol takes one statement at a time).
    static func statements(_ sql: String) -> [String] {
        var statements: [String] = []
        var current = ""
        var quote: Character?
        var dollar = false
        var comment = false
        var previous: Character = " "
        for character in sql {
            if comment {
                if character == "\n" { comment = false }
                previous = character
                continue
            }
            if quote == nil, !dollar, character == "-", previous == "-" {
                current.removeLast()
                comment = true
                previous = " "
                continue
            }
            if !dollar, character == "'" { quote = quote == nil ? "'" : nil }
            if quote == nil, character == "$", previous == "$" { dollar.toggle() }
            if quote == nil, !dollar, character == ";" {
                let statement = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !statement.isEmpty { statements.append(statement) }
                current = ""
            } else {
                current.append(character)
            }
            previous = character
        }
        let last = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !last.isEmpty { statements.append(last) }
        return statements
    }

    /// Versions recorded as applied.
    public func appliedMigrations() async throws -> [Int] {
        try await read { connection in
            try await connection.all("SELECT version FROM schema_migrations ORDER BY version", self.logger).map { try $0.get("version") }
        }
    }

    /// The schema as the catalog describes it (columns, constraints, indexes, triggers), for
    /// snapshot tests.
    public func schema() async throws -> String {
        try await read { connection in
            let logger = self.logger
            var lines: [String] = []
            for row in try await connection.all("""
                SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, COALESCE(c.column_default, '') AS column_default,
                       COALESCE(c.collation_name, '') AS collation, c.is_identity
                FROM information_schema.columns c JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema
                WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
                ORDER BY c.table_name, c.ordinal_position
                """, logger) {
                let table: String = try row.get("table_name"), column: String = try row.get("column_name")
                let type: String = try row.get("data_type"), nullable: String = try row.get("is_nullable")
                let defaultValue: String = try row.get("column_default"), collation: String = try row.get("collation")
                let identity: String = try row.get("is_identity")
                var line = "column \(table).\(column) \(type)"
                if collation == "C" { line += " collate C" }
                if nullable == "NO" { line += " not null" }
                if !defaultValue.isEmpty { line += " default \(defaultValue)" }
                if identity == "YES" { line += " identity" }
                lines.append(line)
            }
            for row in try await connection.all("""
                SELECT conrelid::regclass::text AS table_name, conname, pg_get_constraintdef(oid) AS definition
                FROM pg_constraint WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2
                """, logger) {
                lines.append("constraint \(try row.get("table_name", as: String.self)).\(try row.get("conname", as: String.self)) \(try row.get("definition", as: String.self))")
            }
            for row in try await connection.all("SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY tablename, indexname", logger) {
                lines.append("index " + (try row.get("indexdef", as: String.self)))
            }
            for row in try await connection.all("""
                SELECT tgname, tgrelid::regclass::text AS table_name FROM pg_trigger
                WHERE NOT tgisinternal AND tgrelid::regclass::text NOT LIKE 'pg_%' ORDER BY 1
                """, logger) {
                lines.append("trigger \(try row.get("table_name", as: String.self)).\(try row.get("tgname", as: String.self))")
            }
            return lines.joined(separator: "\n")
        }
    }

    /// A consistency check: every row's references hold and every table can be read through.
    /// "ok" when sound, else what is wrong.
    public func integrityCheck() async throws -> String {
        try await read { connection in
            var problems: [String] = []
            for (what, sql) in [
                ("outbox rows of missing apps", "SELECT COUNT(*) FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM apps a WHERE a.name = o.app)"),
                ("files without their content", "SELECT COUNT(*) FROM files f WHERE NOT EXISTS (SELECT 1 FROM file_blobs b WHERE b.app = f.app AND b.blob = f.blob)"),
                ("topic events beyond their topic", "SELECT COUNT(*) FROM topic_events e JOIN topics t ON t.app = e.app AND t.name = e.topic WHERE e.seq > t.last_seq"),
                ("apps pointing at a missing deployment", "SELECT COUNT(*) FROM apps a WHERE a.current_version IS NOT NULL AND NOT EXISTS (SELECT 1 FROM deployments d WHERE d.app = a.name AND d.version = a.current_version)"),
            ] {
                let count: Int = try await connection.all(PostgresQuery(unsafeSQL: sql), self.logger).first?.get("count") ?? 0
                if count > 0 { problems.append("\(count) \(what)") }
            }
            return problems.isEmpty ? "ok" : problems.joined(separator: "\n")
        }
    }

    // MARK: Transactions

    /// Runs `body` in a transaction; a deadlock or serialization failure is retried (twice).
    @discardableResult
    func write<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
            } catch {
                let mapped = Self.map(error)
                attempt += 1
                if attempt < 3, Self.isRetryable(error) {
                    try? await Task.sleep(for: .milliseconds(5 * attempt))
                    continue
                }
                throw mapped
            }
        }
    }

    /// Runs `body` on a pooled connection outside a transaction (one statement sees one snapshot).
    func read<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withConnection { connection in try await body(connection) }
        } catch {
            throw Self.map(error)
        }
    }

    /// The error that matters: a transaction's own failure rather than its wrapper.
    static func unwrap(_ error: any Error) -> any Error {
        guard let transaction = error as? PostgresTransactionError else { return error }
        return transaction.closureError ?? transaction.beginError ?? transaction.commitError ?? transaction.rollbackError ?? error
    }

    static func sqlState(_ error: any Error) -> String? {
        guard let error = unwrap(error) as? PSQLError, error.code == .server else { return nil }
        return error.serverInfo?[.sqlState]
    }

    static func isRetryable(_ error: any Error) -> Bool {
        let state = sqlState(error)
        return state == "40001" || state == "40P01"
    }

    static func map(_ error: any Error) -> any Error {
        let error = unwrap(error)
        // Errors of the caller's own code (a document transform) pass through as they are.
        guard let psql = error as? PSQLError else { return error }
        switch psql.code {
        case .server:
            switch sqlState(error) ?? "" {
            case "23505": return ServiceError(.conflict, "it already exists", underlying: error)
            case "23503": return ServiceError(.notFound, "what it refers to no longer exists", underlying: error)
            case "53100": return ServiceError(.unavailable, "the database's disk is full", underlying: error)
            case "53300", "57P01", "57P02", "57P03", "40001", "40P01", "55P03":
                return ServiceError(.unavailable, "the database is busy or restarting; retry", underlying: error)
            default: return ServiceError(.internal, "database error", underlying: error)
            }
        case .queryCancelled: return CancellationError()
        default:
            return ServiceError(.unavailable, "the database cannot be reached; retry", underlying: error)
        }
    }
}

extension PostgresStorage {
    /// Tells the other nodes, at commit, that an app's deployment, triggers or topics changed
    /// (they reload what they keep of it in memory).
    func announce(_ connection: PostgresConnection, app: String) async throws {
        try await connection.run("SELECT pg_notify('picloud_control', \(nodeID + " " + app))", logger)
    }
}
