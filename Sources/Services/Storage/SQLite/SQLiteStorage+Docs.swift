import Foundation
import GRDB

extension SQLiteStorage {
    public func docInsert(app: String, collection: String, id: String, body: [UInt8], now: Milliseconds, enqueue: OutboxEnqueue) async throws -> DocRecord {
        let text = String(decoding: body, as: UTF8.self)
        return try await write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM docs WHERE app = ? AND collection = ? AND id = ?", arguments: [app, collection, id]) == nil else {
                throw ServiceError(.conflict, "a document with id '\(id)' already exists in '\(collection)'")
            }
            try db.execute(
                sql: "INSERT INTO docs (app, collection, id, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [app, collection, id, text, now, now]
            )
            if !enqueue.targets.isEmpty {
                try self.insertOutbox(db, app: app, enqueue: enqueue, event: Self.docEvent(op: "insert", collection: collection, id: id, doc: body, old: nil), now: now)
            }
            return DocRecord(collection: collection, id: id, body: body, createdAt: now, updatedAt: now)
        }
    }

    public func docGet(app: String, collection: String, id: String) async throws -> DocRecord? {
        try await readStatement { db in try Self.doc(db, app: app, collection: collection, id: id) }
    }

    public func docGetNow(app: String, collection: String, id: String) -> DocRecord?? {
        localReaders.read { db in try Self.doc(db, app: app, collection: collection, id: id) }
    }

    /// A document, read with one statement through SQLite's C API (as ``kvEntry(_:app:key:now:)``).
    static func doc(_ db: Database, app: String, collection: String, id: String) throws -> DocRecord? {
        let statement = RawStatement(try db.cachedStatement(sql: "SELECT body, created_at, updated_at FROM docs WHERE app = ? AND collection = ? AND id = ?"))
        return try statement.withText(1, app) {
            try statement.withText(2, collection) {
                try statement.withText(3, id) {
                    try statement.first { row in
                        DocRecord(collection: collection, id: id, body: row.bytes(0), createdAt: row.integer(1), updatedAt: row.integer(2))
                    }
                }
            }
        }
    }

    public func docUpdate(app: String, collection: String, id: String, now: Milliseconds, enqueue: OutboxEnqueue, transform: @escaping @Sendable ([UInt8]) throws -> [UInt8]) async throws -> DocRecord? {
        try await write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT collection, id, body, created_at, updated_at FROM docs WHERE app = ? AND collection = ? AND id = ?", arguments: [app, collection, id]) else {
                return nil
            }
            var record = Self.doc(row)
            let old = record.body
            record.body = try transform(record.body)
            record.updatedAt = now
            try db.execute(
                sql: "UPDATE docs SET body = ?, updated_at = ? WHERE app = ? AND collection = ? AND id = ?",
                arguments: [String(decoding: record.body, as: UTF8.self), now, app, collection, id]
            )
            if !enqueue.targets.isEmpty {
                try self.insertOutbox(db, app: app, enqueue: enqueue, event: Self.docEvent(op: "update", collection: collection, id: id, doc: record.body, old: old), now: now)
            }
            return record
        }
    }

    public func docDelete(app: String, collection: String, id: String, enqueue: OutboxEnqueue) async throws -> Bool {
        try await write { db in
            guard let old = try String.fetchOne(db, sql: "DELETE FROM docs WHERE app = ? AND collection = ? AND id = ? RETURNING body", arguments: [app, collection, id]) else {
                return false
            }
            if !enqueue.targets.isEmpty {
                try self.insertOutbox(db, app: app, enqueue: enqueue, event: Self.docEvent(op: "delete", collection: collection, id: id, doc: nil, old: Array(old.utf8)), now: Clock.now())
            }
            return true
        }
    }

    static func docEvent(op: String, collection: String, id: String, doc: [UInt8]?, old: [UInt8]?) -> [UInt8] {
        var fields: [(String, [UInt8])] = [
            ("kind", EventJSON.string("docs")), ("op", EventJSON.string(op)), ("collection", EventJSON.string(collection)), ("id", EventJSON.string(id)),
        ]
        if let doc { fields.append(("doc", doc)) }
        if let old { fields.append(("old", old)) }
        return EventJSON.object(fields)
    }

    public func docFind(app: String, collection: String, query: DocQuery) async throws -> (records: [DocRecord], next: DocCursor?) {
        var sql = SQLFragment("SELECT collection, id, body, created_at, updated_at, ")
        let sortExpression = Self.expression(query.sort.field)
        sql.append("\(sortExpression) AS sort_key FROM docs WHERE app = ? AND collection = ?", [app, collection])
        for condition in query.filter { sql.append(" AND "); sql.append(Self.condition(condition)) }
        if let after = query.after { sql.append(" AND "); sql.append(Self.after(after, expression: sortExpression, descending: query.sort.descending)) }
        let direction = query.sort.descending ? "DESC" : "ASC"
        sql.append(" ORDER BY sort_key \(direction), id \(direction) LIMIT ?", [query.limit + 1])
        let limit = query.limit
        return try await read { [sql] db in
            let rows = try Row.fetchAll(db, sql: sql.text, arguments: sql.arguments)
            let page = rows.prefix(limit)
            let records = page.map(Self.doc)
            guard rows.count > limit, let last = page.last else { return (records, nil) }
            return (records, DocCursor(value: Self.fieldValue(last["sort_key"]), id: last["id"]))
        }
    }

    public func docCount(app: String, collection: String, filter: [DocCondition]) async throws -> Int {
        var sql = SQLFragment("SELECT COUNT(*) FROM docs WHERE app = ? AND collection = ?", [app, collection])
        for condition in filter { sql.append(" AND "); sql.append(Self.condition(condition)) }
        return try await read { [sql] db in try Int.fetchOne(db, sql: sql.text, arguments: sql.arguments) ?? 0 }
    }

    public func docCollections(app: String) async throws -> [(name: String, count: Int)] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT collection, COUNT(*) AS n FROM docs WHERE app = ? GROUP BY collection ORDER BY collection", arguments: [app])
                .map { (name: $0["collection"] as String, count: $0["n"] as Int) }
        }
    }

    public func setDocIndexes(app: String, indexes: [DocIndex]) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM doc_indexes WHERE app = ?", arguments: [app])
            for index in Set(indexes) {
                try db.execute(sql: "INSERT INTO doc_indexes (app, collection, field) VALUES (?, ?, ?)", arguments: [app, index.collection, index.field.path])
                guard !index.field.isID else { continue }
                // One expression index per field path, shared by every app and collection that
                // declares it. The path is a validated identifier chain, safe inside DDL.
                try db.execute(sql: "CREATE INDEX IF NOT EXISTS \(Self.indexName(index.field)) ON docs(app, collection, \(Self.expression(index.field)))")
            }
            // Drop expression indexes no app declares any more.
            let wanted = Set(try String.fetchAll(db, sql: "SELECT DISTINCT field FROM doc_indexes").compactMap { try? DocField($0) }.map(Self.indexName))
            for name in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'docs_field_%'") where !wanted.contains(name) {
                try db.execute(sql: "DROP INDEX IF EXISTS \(name)")
            }
        }
    }

    /// Names of the expression indexes on docs now (for tests and the query plan).
    public func docIndexNames() async throws -> [String] {
        try await read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'docs_field_%' ORDER BY name") }
    }

    /// SQLite's plan for a find, to check that an index is used.
    public func docQueryPlan(app: String, collection: String, query: DocQuery) async throws -> String {
        var sql = SQLFragment("EXPLAIN QUERY PLAN SELECT id FROM docs WHERE app = ? AND collection = ?", [app, collection])
        for condition in query.filter { sql.append(" AND "); sql.append(Self.condition(condition)) }
        return try await read { [sql] db in
            try Row.fetchAll(db, sql: sql.text, arguments: sql.arguments).map { $0["detail"] as String }.joined(separator: "\n")
        }
    }

    // MARK: SQL building

    static func indexName(_ field: DocField) -> String {
        "docs_field_" + field.path.replacingOccurrences(of: ".", with: "__")
    }

    static func expression(_ field: DocField?) -> String {
        guard let field, !field.isID else { return "id" }
        return "json_extract(body, '$.\(field.path)')"
    }

    static func typeExpression(_ field: DocField) -> String {
        field.isID ? "'text'" : "IFNULL(json_type(body, '$.\(field.path)'), '')"
    }

    /// A condition that is never NULL (so NOT works as expected on missing fields).
    static func condition(_ condition: DocCondition) -> SQLFragment {
        let expression = Self.expression(condition.field)
        let type = typeExpression(condition.field)
        switch condition.op {
        case .eq: return equals(condition.values[0], expression: expression, type: type)
        case .ne:
            var fragment = SQLFragment("NOT ")
            fragment.append(equals(condition.values[0], expression: expression, type: type))
            return fragment
        case .gt, .gte, .lt, .lte:
            let op = ["gt": ">", "gte": ">=", "lt": "<", "lte": "<="][condition.op.rawValue]!
            return SQLFragment("(\(expression) \(op) ? AND \(type) IN \(typesOf(condition.values[0])))", [condition.values[0].databaseValue])
        case .in:
            let simple = condition.values.allSatisfy(\.isOrderable)
            guard simple else {
                var fragment = SQLFragment("(")
                for (index, value) in condition.values.enumerated() {
                    if index > 0 { fragment.append(" OR ") }
                    fragment.append(equals(value, expression: expression, type: type))
                }
                fragment.append(")")
                return fragment
            }
            let marks = Array(repeating: "?", count: condition.values.count).joined(separator: ", ")
            return SQLFragment("(\(expression) IN (\(marks)) AND \(type) IN ('integer', 'real', 'text'))", condition.values.map(\.databaseValue))
        case .exists:
            guard case .bool(let exists) = condition.values[0] else { return SQLFragment("0") }
            return SQLFragment(exists ? "(\(type) <> '')" : "(\(type) = '')")
        case .prefix:
            guard case .string(let prefix) = condition.values[0] else { return SQLFragment("0") }
            return SQLFragment("(\(expression) >= ? AND \(expression) < ? AND \(type) = 'text')", [prefix, prefix + "\u{10FFFF}"])
        }
    }

    static func equals(_ value: DocFieldValue, expression: String, type: String) -> SQLFragment {
        switch value {
        case .null: SQLFragment("(\(type) IN ('', 'null'))")
        case .bool(let flag): SQLFragment("(\(type) = '\(flag ? "true" : "false")')")
        case .integer, .double: SQLFragment("(\(expression) = ? AND \(type) IN ('integer', 'real'))", [value.databaseValue])
        case .string: SQLFragment("(\(expression) = ? AND \(type) = 'text')", [value.databaseValue])
        }
    }

    static func typesOf(_ value: DocFieldValue) -> String {
        if case .string = value { return "('text')" }
        return "('integer', 'real')"
    }

    /// Rows after the cursor in (sort value, id) order; NULLs sort first ascending, last descending.
    static func after(_ cursor: DocCursor, expression: String, descending: Bool) -> SQLFragment {
        let value = cursor.value ?? .null
        switch (value, descending) {
        case (.null, false):
            return SQLFragment("((\(expression) IS NULL AND id > ?) OR \(expression) IS NOT NULL)", [cursor.id])
        case (.null, true):
            return SQLFragment("(\(expression) IS NULL AND id < ?)", [cursor.id])
        case (_, false):
            return SQLFragment("(\(expression) > ? OR (\(expression) = ? AND id > ?))", [value.databaseValue, value.databaseValue, cursor.id])
        case (_, true):
            return SQLFragment("(\(expression) < ? OR (\(expression) = ? AND id < ?) OR \(expression) IS NULL)", [value.databaseValue, value.databaseValue, cursor.id])
        }
    }

    static func fieldValue(_ value: DatabaseValue) -> DocFieldValue? {
        switch value.storage {
        case .null: nil
        case .int64(let number): .integer(number)
        case .double(let number): .double(number)
        case .string(let text): .string(text)
        case .blob: nil
        }
    }

    static func doc(_ row: Row) -> DocRecord {
        DocRecord(collection: row["collection"], id: row["id"], body: Array((row["body"] as String).utf8), createdAt: row["created_at"], updatedAt: row["updated_at"])
    }
}

extension DocFieldValue {
    var databaseValue: DatabaseValue {
        switch self {
        case .null: .null
        case .bool(let flag): (flag ? 1 : 0).databaseValue
        case .integer(let number): number.databaseValue
        case .double(let number): number.databaseValue
        case .string(let text): text.databaseValue
        }
    }
}

/// SQL text with its bound values, built piece by piece; values are only ever bound.
struct SQLFragment: Sendable {
    var text: String
    var values: [DatabaseValue]

    init(_ text: String, _ values: [any DatabaseValueConvertible] = []) {
        self.text = text
        self.values = values.map(\.databaseValue)
    }

    mutating func append(_ text: String, _ values: [any DatabaseValueConvertible] = []) {
        self.text += text
        self.values += values.map(\.databaseValue)
    }

    mutating func append(_ other: SQLFragment) {
        text += other.text
        values += other.values
    }

    var arguments: StatementArguments { StatementArguments(values) }
}
