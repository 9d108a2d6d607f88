import Foundation
import GRDB
import Synchronization
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
    let writes: WriteBatcher
    let kvCache: KVReadCache
    /// Connections of the threads that read a key without waiting (``LocalReaders``).
    let localReaders: LocalReaders
    /// The writer's statements of every kv set and outbox insert (``HotStatements``).
    let hot = HotStatements()
    /// kv entries the read cache holds by default.
    public static let defaultKVCacheEntries = 4096

    /// Most threads that get a connection of their own for point reads (``LocalReaders``): the
    /// event loops, where handlers run, with room to spare.
    static let localReaderThreads = 32

    /// Opens (creating if needed) the database at `path` and migrates it.
    /// - Parameters:
    ///   - writeBatch: most writes that share one transaction (group commit); 1 commits each alone.
    ///   - kvCacheEntries: most kv entries kept in the read cache (see ``KVReadCache``); 0 turns it off.
    public init(
        path: String, durability: Durability = .full, writeBatch: Int = WriteBatcher.defaultBatch,
        kvCacheEntries: Int = SQLiteStorage.defaultKVCacheEntries, logger: Logger = Logger(label: "picloud.storage")
    ) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.maximumReaderCount = 4
        self.pool = try DatabasePool(path: path, configuration: configuration)
        // Set on the writer, the only connection that writes, once the pool is open: GRDB sets
        // `synchronous = NORMAL` when it turns WAL on, after `prepareDatabase` ran (set there, as
        // it was until 2026-11-30, commits were not flushed before they were acknowledged).
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = \(durability == .full ? "FULL" : "NORMAL")")
        }
        self.logger = logger
        self.writes = WriteBatcher(pool: pool, maximumBatch: max(1, writeBatch))
        self.kvCache = KVReadCache(capacity: kvCacheEntries)
        self.localReaders = LocalReaders(path: path, capacity: Self.localReaderThreads)
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

    /// The writer connection's `PRAGMA synchronous` (1: NORMAL, 2: FULL), for tests.
    func writerSynchronous() async throws -> Int {
        try await pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    public func integrityCheck() async throws -> String {
        try await pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "\n") }
    }

    /// Runs `body` as one write of its own: it sees its changes and nobody else's half-done
    /// ones, and it commits entirely or not at all. Concurrent writes share one transaction and
    /// one `fsync` (group commit, see ``WriteBatcher``); a failing one takes no other with it, and
    /// all are acknowledged when their batch has committed. `body` may run more than once (its
    /// batch is rerun when another write in it fails), so it must change nothing but the database.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            write(body) { continuation.resume(with: $0) }
        }
    }

    /// ``write(_:)`` with a callback: `done` gets the outcome on the writer's thread, once the
    /// write's batch committed or failed.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T, done: @escaping @Sendable (Result<T, any Error>) -> Void) {
        writes.submit(PendingWrite(
            run: { db in
                let result = try body(db)
                return { done(.success(result)) }
            },
            fail: { error in done(.failure(Self.map(any: error))) }
        ))
    }

    /// One node owns this file, so new due rows can be leased to its dispatcher in the
    /// transaction that writes them (``OutboxLeaseTaker``).
    public func leaseNewRows(to taker: (any OutboxLeaseTaker)?) -> Bool {
        writes.taker.withLock { $0 = taker }
        return taker != nil
    }

    static func map(any error: any Error) -> any Error {
        (error as? DatabaseError).map(map) ?? error
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch let error as DatabaseError {
            throw Self.map(error)
        }
    }

    /// A read of one statement, without `BEGIN` and `COMMIT` around it: SQLite runs a lone
    /// statement in a read transaction of its own, so it sees one snapshot all the same, for two
    /// statements less. A body that runs several statements needs ``read(_:)``, whose one
    /// transaction makes them agree with each other.
    func readStatement<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.unsafeRead(body)
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

/// A write waiting for its batch: `run` executes it inside the batch's transaction and returns
/// what to do once the batch committed (resume its caller), or throws the write's error; `fail`
/// reports that error, or the batch's, to the caller.
struct PendingWrite: Sendable {
    let run: @Sendable (Database) throws -> @Sendable () -> Void
    let fail: @Sendable (any Error) -> Void
}

/// Group commit on SQLite's one writer: writes that arrive while a batch is being written wait
/// and go together into the next one, in arrival order. No write waits for a timer: a lone write
/// is a batch of one. A batch runs without a savepoint per write (two statements less each) until
/// one of its writes fails; that batch is rolled back and run again with a savepoint per write,
/// and so are the batches after it until one has no failure.
public final class WriteBatcher: Sendable {
    /// Most writes in one transaction by default (bounds how long the first of them waits).
    public static let defaultBatch = 256
    let maximumBatch: Int

    private struct State {
        var queue: [PendingWrite] = []
        var draining = false
    }

    private let pool: DatabasePool
    private let state = Mutex(State())
    /// The dispatcher new outbox rows are leased to, if any (``SQLiteStorage/leaseNewRows(to:)``).
    let taker = Mutex<(any OutboxLeaseTaker)?>(nil)
    /// The rows the running batch leased (see ``BatchLeases``).
    let leases = BatchLeases()

    init(pool: DatabasePool, maximumBatch: Int) {
        self.pool = pool
        self.maximumBatch = maximumBatch
    }

    func submit(_ write: PendingWrite) {
        let start = state.withLock { state -> Bool in
            state.queue.append(write)
            guard !state.draining else { return false }
            state.draining = true
            return true
        }
        if start { drain() }
    }

    private func next() -> [PendingWrite] {
        state.withLock { state in
            let batch = Array(state.queue.prefix(maximumBatch))
            state.queue.removeFirst(batch.count)
            if batch.isEmpty { state.draining = false }
            return batch
        }
    }

    private func drain() {
        pool.asyncWriteWithoutTransaction { db in
            // After a batch in which a write failed, the next ones give each write a savepoint.
            var isolating = false
            while true {
                let batch = self.next()
                guard !batch.isEmpty else { return }
                isolating = self.run(batch, db, savepoints: isolating) ?? self.run(batch, db, savepoints: true) ?? true
            }
        }
    }

    /// Runs the batch in one transaction and acknowledges its writes once it committed; returns
    /// whether a write failed (or the batch itself, with savepoints). Without savepoints, the
    /// common case, a failing write rolls the whole batch back and nil says to run it again with
    /// a savepoint per write: the failing write may have changed rows before it threw. With them,
    /// a failing write rolls back alone.
    /// The outbox rows it leased go to the dispatcher once it committed, before its writes are
    /// acknowledged; rows of writes that rolled back give their room back.
    private func run(_ batch: [PendingWrite], _ db: Database, savepoints: Bool) -> Bool? {
        var outcomes: [@Sendable () -> Void] = []
        outcomes.reserveCapacity(batch.count)
        var failed = false
        leases.begin(taker: taker.withLock { $0 })
        do {
            try db.beginBatch()
            for write in batch {
                guard savepoints else {
                    do {
                        outcomes.append(try write.run(db))
                    } catch {
                        try? db.rollback()
                        leases.discard(from: 0)
                        return nil
                    }
                    continue
                }
                let mark = leases.mark
                do {
                    outcomes.append(try db.inBatchSavepoint { try write.run(db) })
                } catch {
                    leases.discard(from: mark)
                    failed = true
                    outcomes.append { write.fail(error) }
                }
            }
            try db.commitBatch()
        } catch {
            try? db.rollback()
            leases.discard(from: 0)
            for write in batch { write.fail(error) }
            return savepoints
        }
        leases.committed()
        for outcome in outcomes { outcome() }
        return failed
    }
}

/// The outbox rows the running batch leased to the local dispatcher as it wrote them, and whether
/// it wrote rows it did not lease. Used only inside a batch, on the writer's connection (GRDB
/// serializes it), hence unchecked.
final class BatchLeases: @unchecked Sendable {
    private(set) var taker: (any OutboxLeaseTaker)?
    private var leased: [OutboxDelivery] = []
    /// Room taken in this batch: one per leased row, and one for an insert that threw after it.
    private var reserved = 0
    private var unleased = false

    /// Where a write begins, to discard what it leased should it fail.
    var mark: Int { reserved }

    func begin(taker: (any OutboxLeaseTaker)?) {
        self.taker = taker
        leased.removeAll(keepingCapacity: true)
        reserved = 0
        unleased = false
    }

    /// Leases a row about to be inserted, if the dispatcher has room: its lease, or nil.
    func reserve() -> (owner: String, milliseconds: Int64)? {
        guard let taker else { return nil }
        guard taker.reserve() else {
            unleased = true
            return nil
        }
        reserved += 1
        return (taker.owner, taker.leaseMilliseconds)
    }

    /// The row a reservation was for, inserted.
    func add(_ delivery: OutboxDelivery) { leased.append(delivery) }

    /// Forgets what was leased since `mark` (its writes rolled back) and gives the room back.
    func discard(from mark: Int) {
        guard reserved > mark else { return }
        taker?.release(reserved - mark)
        reserved = mark
        if leased.count > mark { leased.removeSubrange(mark...) }
    }

    /// The batch committed: its leased rows go to the dispatcher, which learns of unleased ones.
    func committed() {
        guard let taker else { return }
        if reserved > leased.count { taker.release(reserved - leased.count) }
        if !leased.isEmpty { taker.take(leased) }
        if unleased { taker.committedUnleased() }
        leased.removeAll(keepingCapacity: true)
        reserved = 0
    }
}

extension Database {
    /// `BEGIN IMMEDIATE` and `COMMIT` of a batch, prepared once per connection (GRDB's
    /// `beginTransaction` and `commit` parse their SQL on every call).
    func beginBatch() throws {
        try cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
    }

    func commitBatch() throws {
        try cachedStatement(sql: "COMMIT TRANSACTION").execute()
    }

    /// Runs one write of a batch in a savepoint of the batch's transaction: on error the write's
    /// changes roll back alone. GRDB's `inSavepoint` prepares its `SAVEPOINT` and `RELEASE`
    /// statements anew on every call; these are prepared once per connection. A write finding the
    /// batch's transaction gone (SQLite rolls a transaction back by itself on a full disk or an
    /// I/O error) fails instead of running, and committing, outside it.
    func inBatchSavepoint<T>(_ body: () throws -> T) throws -> T {
        guard isInsideTransaction else { throw DatabaseError(resultCode: .SQLITE_ABORT, message: "the batch's transaction was rolled back") }
        try cachedStatement(sql: "SAVEPOINT batch_write").execute()
        do {
            let value = try body()
            try cachedStatement(sql: "RELEASE SAVEPOINT batch_write").execute()
            return value
        } catch {
            if isInsideTransaction {
                try? cachedStatement(sql: "ROLLBACK TRANSACTION TO SAVEPOINT batch_write").execute()
                try? cachedStatement(sql: "RELEASE SAVEPOINT batch_write").execute()
            }
            throw error
        }
    }
}
