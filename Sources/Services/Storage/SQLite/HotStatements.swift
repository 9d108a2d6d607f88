import GRDB
import GRDBSQLite

/// The statements every write of its kind runs (the kv upsert, the outbox insert, the delete of a
/// delivered row), prepared once on the writer's connection and bound and stepped through SQLite's
/// C API.
///
/// GRDB's `cachedStatement(sql:)` hashes the statement's SQL to find it on every call, and its
/// `execute(arguments:)` boxes each argument in an existential, copies them into an array of
/// `DatabaseValue`, binds them in nested closures and reports the statement to its observation
/// broker; PiCloud registers no observers. On the writer's thread that was more CPU per `kv.set`
/// than SQLite's own work (see docs/performance.md). Used only inside writes, which GRDB runs one
/// at a time on the writer's connection: hence unchecked.
final class HotStatements: @unchecked Sendable {
    enum Name: Int, CaseIterable {
        case kvUpsert, outboxInsert, outboxDelete

        var sql: String {
            switch self {
            case .kvUpsert:
                """
                INSERT INTO kv (app, key, value, expires_at, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (app, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, updated_at = excluded.updated_at
                """
            case .outboxInsert:
                """
                INSERT INTO outbox (event_id, app, trigger_id, kind, handler, event, depth, max_attempts, backoff_base_ms, backoff_cap_ms,
                                    timeout_ms, to_dead_letter, attempts, leased_until, lease_owner, due_at, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
            case .outboxDelete:
                "DELETE FROM outbox WHERE id = ? AND lease_owner = ?"
            }
        }
    }

    private var connection: ObjectIdentifier?
    private var prepared = [Statement?](repeating: nil, count: Name.allCases.count)

    /// `name`'s statement on `db`, prepared on first use (and again should the writer's
    /// connection ever change).
    func statement(_ name: Name, on db: Database) throws -> RawStatement {
        if connection != ObjectIdentifier(db) {
            prepared = [Statement?](repeating: nil, count: Name.allCases.count)
            connection = ObjectIdentifier(db)
        }
        if let statement = prepared[name.rawValue] { return RawStatement(statement) }
        let statement = try db.makeStatement(sql: name.sql)
        prepared[name.rawValue] = statement
        return RawStatement(statement)
    }
}

/// A prepared statement bound by position and run to completion, or read to its first row,
/// without GRDB's argument and row machinery. ``withText(_:_:_:)`` binds text without a copy for
/// the duration of a closure (as GRDB's own `execute(arguments:)` does);
/// ``bind(_:_:)-(Int32,String)`` lets SQLite copy it. Wraps a statement of the connection it is
/// used on (GRDB's `cachedStatement(sql:)` or ``HotStatements``), on that connection's thread.
struct RawStatement {
    private let statement: Statement
    private var handle: OpaquePointer { statement.sqliteStatement }

    init(_ statement: Statement) { self.statement = statement }

    /// Binds `text` without copying it and runs `body`, which must run the statement: SQLite
    /// reads the bytes in place, and ``run()`` lets go of them before this returns.
    func withText<R>(_ index: Int32, _ text: String, _ body: () throws -> R) throws -> R {
        var text = text
        return try text.withUTF8 { utf8 in
            try bindText(index, utf8, RawStatement.static)
            defer { sqlite3_bind_null(handle, index) }
            return try body()
        }
    }

    /// Binds a copy of `text`.
    func bind(_ index: Int32, _ text: String) throws {
        var text = text
        try text.withUTF8 { try bindText(index, $0, RawStatement.transient) }
    }

    private func bindText(_ index: Int32, _ utf8: UnsafeBufferPointer<UInt8>, _ destructor: sqlite3_destructor_type?) throws {
        try check(utf8.withMemoryRebound(to: CChar.self) { bytes in
            // A nil pointer (an empty buffer's) would bind NULL, not "".
            guard let start = bytes.baseAddress else { return sqlite3_bind_text(handle, index, "", 0, RawStatement.transient) }
            return sqlite3_bind_text(handle, index, start, Int32(bytes.count), destructor)
        })
    }

    func bind(_ index: Int32, _ text: String?) throws {
        guard let text else { return try bindNull(index) }
        try bind(index, text)
    }

    func bind<Integer: BinaryInteger>(_ index: Int32, _ integer: Integer?) throws {
        guard let integer else { return try bindNull(index) }
        try check(sqlite3_bind_int64(handle, index, Int64(integer)))
    }

    func bind(_ index: Int32, _ flag: Bool) throws { try bind(index, flag ? 1 : 0) }

    func bindNull(_ index: Int32) throws { try check(sqlite3_bind_null(handle, index)) }

    /// A binding SQLite refused (too big, or no such parameter) fails the write rather than
    /// leaving the parameter NULL.
    private func check(_ code: Int32) throws {
        guard code != SQLITE_OK else { return }
        throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errstr(code)), sql: statement.sql)
    }

    /// Steps the statement to its end, resets it and clears its bindings; a failure throws the
    /// `DatabaseError` GRDB would have thrown (its result code and message).
    func run() throws {
        let code = sqlite3_step(handle)
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        guard code == SQLITE_DONE else { throw failure(code == SQLITE_ROW ? SQLITE_MISUSE : nil) }
    }

    /// Steps the statement to its first row and returns what `body` makes of it, or nil when
    /// there is none; then resets it and clears its bindings. The row's text and blobs are valid
    /// only inside `body`.
    func first<Result>(_ body: (RawRow) throws -> Result) throws -> Result? {
        let code = sqlite3_step(handle)
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        switch code {
        case SQLITE_ROW: return try body(RawRow(handle: handle))
        case SQLITE_DONE: return nil
        default: throw failure(nil)
        }
    }

    /// The error of the step that just failed (or `code`, for a result that is wrong here).
    private func failure(_ code: Int32?) -> DatabaseError {
        let connection = sqlite3_db_handle(handle)
        let message = sqlite3_errmsg(connection).map { String(cString: $0) }
        return DatabaseError(resultCode: ResultCode(rawValue: code ?? sqlite3_extended_errcode(connection)), message: message, sql: statement.sql)
    }

    /// SQLite's `SQLITE_TRANSIENT` and `SQLITE_STATIC` (macros Swift does not import): copy the
    /// bytes now; read them in place until the statement is reset or rebound.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    private static let `static`: sqlite3_destructor_type? = nil
}

/// The current row of a ``RawStatement``, read by column position.
struct RawRow {
    fileprivate let handle: OpaquePointer

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    func integer(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    func optionalInteger(_ column: Int32) -> Int64? { isNull(column) ? nil : integer(column) }

    /// The column as UTF-8 bytes (a NULL as none).
    func bytes(_ column: Int32) -> [UInt8] {
        // Text first, then its length: the order SQLite documents for a stable pointer.
        guard let text = sqlite3_column_text(handle, column) else { return [] }
        return Array(UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(handle, column))))
    }

    func text(_ column: Int32) -> String {
        guard let text = sqlite3_column_text(handle, column) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(handle, column))), as: UTF8.self)
    }
}
