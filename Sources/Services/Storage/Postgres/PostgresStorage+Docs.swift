import Crypto
import Foundation
import PostgresNIO

/// Documents on PostgreSQL: bodies are kept as written (text) and queried as `body::jsonb`.
/// Filters and sorting give the same answers as on SQLite: JSON types are kept apart, a missing
/// field sorts first ascending, numbers (and booleans, as 0/1) before strings, strings in byte order.
extension PostgresStorage {
    public func docInsert(app: String, collection: String, id: String, body: [UInt8], now: Milliseconds, enqueue: OutboxEnqueue) async throws -> DocRecord {
        let text = String(decoding: body, as: UTF8.self)
        return try await write { connection in
            let inserted = try await connection.run("""
                INSERT INTO docs (app, collection, id, body, created_at, updated_at) VALUES (\(app), \(collection), \(id), \(text), \(now), \(now))
                ON CONFLICT (app, collection, id) DO NOTHING RETURNING 1
                """, logger)
            guard inserted > 0 else { throw ServiceError(.conflict, "a document with id '\(id)' already exists in '\(collection)'") }
            if !enqueue.targets.isEmpty {
                let event = SQLiteStorage.docEvent(op: "insert", collection: collection, id: id, doc: body, old: nil)
                try await Self.insertOutbox(connection, logger, app: app, enqueue: enqueue, event: event, now: now)
            }
            return DocRecord(collection: collection, id: id, body: body, createdAt: now, updatedAt: now)
        }
    }

    public func docGet(app: String, collection: String, id: String) async throws -> DocRecord? {
        try await read { connection in
            try await connection.first(
                "SELECT collection, id, body, created_at, updated_at FROM docs WHERE app = \(app) AND collection = \(collection) AND id = \(id)", logger
            ).map(Self.doc)
        }
    }

    public func docUpdate(app: String, collection: String, id: String, now: Milliseconds, enqueue: OutboxEnqueue, transform: @escaping @Sendable ([UInt8]) throws -> [UInt8]) async throws -> DocRecord? {
        try await write { connection in
            guard let row = try await connection.first("""
                SELECT collection, id, body, created_at, updated_at FROM docs WHERE app = \(app) AND collection = \(collection) AND id = \(id) FOR UPDATE
                """, logger) else { return nil }
            var record = try Self.doc(row)
            let old = record.body
            record.body = try transform(record.body)
            record.updatedAt = now
            try await connection.run("""
                UPDATE docs SET body = \(String(decoding: record.body, as: UTF8.self)), updated_at = \(now) WHERE app = \(app) AND collection = \(collection) AND id = \(id)
                """, logger)
            if !enqueue.targets.isEmpty {
                let event = SQLiteStorage.docEvent(op: "update", collection: collection, id: id, doc: record.body, old: old)
                try await Self.insertOutbox(connection, logger, app: app, enqueue: enqueue, event: event, now: now)
            }
            return record
        }
    }

    public func docDelete(app: String, collection: String, id: String, enqueue: OutboxEnqueue) async throws -> Bool {
        try await write { connection in
            guard let row = try await connection.first("DELETE FROM docs WHERE app = \(app) AND collection = \(collection) AND id = \(id) RETURNING body", logger) else {
                return false
            }
            if !enqueue.targets.isEmpty {
                let event = SQLiteStorage.docEvent(op: "delete", collection: collection, id: id, doc: nil, old: try row.json("body"))
                try await Self.insertOutbox(connection, logger, app: app, enqueue: enqueue, event: event, now: Clock.now())
            }
            return true
        }
    }

    public func docFind(app: String, collection: String, query: DocQuery) async throws -> (records: [DocRecord], next: DocCursor?) {
        var sql = PostgresFragment()
        let byID = query.sort.field?.isID ?? true
        let direction = query.sort.descending ? "DESC" : "ASC"
        let expression = Self.expression(query.sort.field)
        let appParameter = sql.bind(app), collectionParameter = sql.bind(collection)
        if byID {
            sql.append("SELECT collection, id, body, created_at, updated_at FROM docs WHERE app = \(appParameter) AND collection = \(collectionParameter)")
            Self.appendFilter(query.filter, to: &sql)
            if let after = query.after {
                let id = sql.bind(after.id)
                sql.append(" AND id \(query.sort.descending ? "<" : ">") \(id)")
            }
            let limit = sql.bind(query.limit + 1)
            sql.append(" ORDER BY id \(direction) LIMIT \(limit)")
        } else {
            // (rank, number, text, id): a total order matching SQLite's for json_extract values.
            sql.append("""
                SELECT * FROM (SELECT collection, id, body, created_at, updated_at,
                    CASE COALESCE(jsonb_typeof(\(expression)), 'null') WHEN 'number' THEN 1 WHEN 'boolean' THEN 1 WHEN 'null' THEN 0 ELSE 2 END AS sort_rank,
                    CASE jsonb_typeof(\(expression)) WHEN 'number' THEN (\(expression))::float8
                        WHEN 'boolean' THEN CASE WHEN (\(expression))::boolean THEN 1 ELSE 0 END ELSE 0 END AS sort_number,
                    CASE jsonb_typeof(\(expression)) WHEN 'string' THEN (\(expression) #>> '{}') WHEN 'object' THEN (\(expression))::text
                        WHEN 'array' THEN (\(expression))::text ELSE '' END COLLATE "C" AS sort_text
                FROM docs WHERE app = \(appParameter) AND collection = \(collectionParameter)
                """)
            Self.appendFilter(query.filter, to: &sql)
            sql.append(") page")
            if let after = query.after {
                let key = Self.sortKey(after.value)
                let rank = sql.bind(key.rank), number = sql.bind(key.number), text = sql.bind(key.text), id = sql.bind(after.id)
                sql.append(" WHERE (sort_rank, sort_number, sort_text, id) \(query.sort.descending ? "<" : ">") (\(rank), \(number), \(text)::text COLLATE \"C\", \(id))")
            }
            let limit = sql.bind(query.limit + 1)
            sql.append(" ORDER BY sort_rank \(direction), sort_number \(direction), sort_text \(direction), id \(direction) LIMIT \(limit)")
        }
        let limit = query.limit
        return try await read { connection in
            let rows = try await connection.all(sql.query, logger)
            let page = rows.prefix(limit)
            let records = try page.map(Self.doc)
            guard rows.count > limit, let last = page.last else { return (records, nil) }
            let id: String = try last.get("id")
            if byID { return (records, DocCursor(value: .string(id), id: id)) }
            let value: DocFieldValue? = switch try last.get("sort_rank", as: Int.self) {
            case 1:
                try { () throws -> DocFieldValue in
                    let number: Double = try last.get("sort_number")
                    if number.rounded() == number, abs(number) < 9.0e15 { return .integer(Int64(number)) }
                    return .double(number)
                }()
            case 2: .string(try last.get("sort_text"))
            default: nil
            }
            return (records, DocCursor(value: value, id: id))
        }
    }

    public func docCount(app: String, collection: String, filter: [DocCondition]) async throws -> Int {
        var sql = PostgresFragment()
        let appParameter = sql.bind(app), collectionParameter = sql.bind(collection)
        sql.append("SELECT COUNT(*) AS n FROM docs WHERE app = \(appParameter) AND collection = \(collectionParameter)")
        Self.appendFilter(filter, to: &sql)
        return try await read { connection in try await connection.first(sql.query, logger)?.get("n", as: Int.self) ?? 0 }
    }

    public func docCollections(app: String) async throws -> [(name: String, count: Int)] {
        try await read { connection in
            try await connection.all("SELECT collection, COUNT(*) AS n FROM docs WHERE app = \(app) GROUP BY collection ORDER BY collection COLLATE \"C\"", logger)
                .map { (name: try $0.get("collection", as: String.self), count: try $0.get("n", as: Int.self)) }
        }
    }

    public func setDocIndexes(app: String, indexes: [DocIndex]) async throws {
        try await write { connection in
            try await connection.run("DELETE FROM doc_indexes WHERE app = \(app)", logger)
            for index in Set(indexes) {
                try await connection.run("INSERT INTO doc_indexes (app, collection, field) VALUES (\(app), \(index.collection), \(index.field.path))", logger)
                guard !index.field.isID else { continue }
                // One expression index per field path, shared by every app and collection that
                // declares it. The path is a validated identifier chain, safe inside DDL.
                try await connection.run(PostgresQuery(unsafeSQL: """
                    CREATE INDEX IF NOT EXISTS \(Self.indexName(index.field)) ON docs (app, collection, (\(Self.expression(index.field))))
                    """), logger)
            }
            let wanted = Set(try await connection.all("SELECT DISTINCT field FROM doc_indexes", logger).compactMap { try? DocField(try $0.get("field", as: String.self)) }.map(Self.indexName))
            for name in try await Self.docIndexNames(connection, logger) where !wanted.contains(name) {
                try await connection.run(PostgresQuery(unsafeSQL: "DROP INDEX IF EXISTS \(name)"), logger)
            }
        }
    }

    /// Names of the expression indexes on docs now.
    public func docIndexNames() async throws -> [String] {
        try await read { connection in try await Self.docIndexNames(connection, logger) }
    }

    static func docIndexNames(_ connection: PostgresConnection, _ logger: Logger) async throws -> [String] {
        try await connection.all("""
            SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'docs' AND indexname LIKE 'docs\\_field\\_%' ORDER BY indexname
            """, logger).map { try $0.get("indexname", as: String.self) }
    }

    /// PostgreSQL's plan for a find, to check that an index can be used.
    public func docQueryPlan(app: String, collection: String, query: DocQuery) async throws -> String {
        var sql = PostgresFragment()
        let appParameter = sql.bind(app), collectionParameter = sql.bind(collection)
        sql.append("EXPLAIN SELECT id FROM docs WHERE app = \(appParameter) AND collection = \(collectionParameter)")
        Self.appendFilter(query.filter, to: &sql)
        return try await write { connection in
            // Without statistics a tiny table is always scanned; ask for the plan an index allows.
            try await connection.run("SET LOCAL enable_seqscan = off", logger)
            return try await connection.all(sql.query, logger).map { try $0.get("QUERY PLAN", as: String.self) }.joined(separator: "\n")
        }
    }

    // MARK: SQL building

    static func indexName(_ field: DocField) -> String {
        let name = "docs_field_" + field.path.replacingOccurrences(of: ".", with: "__")
        guard name.utf8.count > 63 else { return name }
        // PostgreSQL cuts names at 63 bytes; keep long ones distinct.
        let digest = Identifiers.hex(Array(SHA256.hash(data: Array(field.path.utf8)))).prefix(12)
        return String(name.prefix(50)) + "_" + digest
    }

    /// The JSON value of a field (SQL NULL when missing), as jsonb.
    static func expression(_ field: DocField?) -> String {
        guard let field, !field.isID else { return "to_jsonb(id)" }
        return "(body::jsonb #> '{\(field.path.replacingOccurrences(of: ".", with: ","))}')"
    }

    static func appendFilter(_ filter: [DocCondition], to sql: inout PostgresFragment) {
        for condition in filter {
            let text = Self.condition(condition, &sql)
            sql.append(" AND " + text)
        }
    }

    /// A condition that is never NULL (so NOT works as expected on missing fields). Values are
    /// compared as jsonb, which keeps JSON types apart and never fails a cast.
    static func condition(_ condition: DocCondition, _ sql: inout PostgresFragment) -> String {
        let expression = Self.expression(condition.field)
        switch condition.op {
        case .eq: return equals(condition.values[0], expression, &sql)
        case .ne: return "NOT \(equals(condition.values[0], expression, &sql))"
        case .gt, .gte, .lt, .lte:
            let op = ["gt": ">", "gte": ">=", "lt": "<", "lte": "<="][condition.op.rawValue]!
            switch condition.values[0] {
            case .string(let text):
                let parameter = sql.bind(text)
                return "COALESCE(jsonb_typeof(\(expression)) = 'string' AND (\(expression) #>> '{}') COLLATE \"C\" \(op) \(parameter), false)"
            case let value:
                let parameter = jsonb(value, &sql)
                return "COALESCE(jsonb_typeof(\(expression)) = 'number' AND \(expression) \(op) \(parameter), false)"
            }
        case .in:
            return "(" + condition.values.map { equals($0, expression, &sql) }.joined(separator: " OR ") + ")"
        case .exists:
            guard case .bool(let exists) = condition.values[0] else { return "false" }
            return exists ? "(\(expression) IS NOT NULL)" : "(\(expression) IS NULL)"
        case .prefix:
            guard case .string(let prefix) = condition.values[0] else { return "false" }
            let parameter = sql.bind(prefix)
            return "COALESCE(jsonb_typeof(\(expression)) = 'string' AND starts_with(\(expression) #>> '{}', \(parameter)), false)"
        }
    }

    static func equals(_ value: DocFieldValue, _ expression: String, _ sql: inout PostgresFragment) -> String {
        if case .null = value { return "(\(expression) IS NULL OR \(expression) = 'null'::jsonb)" }
        let parameter = jsonb(value, &sql)
        return "COALESCE(\(expression) = \(parameter), false)"
    }

    /// A bound value as jsonb of its JSON type.
    static func jsonb(_ value: DocFieldValue, _ sql: inout PostgresFragment) -> String {
        switch value {
        case .null: "'null'::jsonb"
        case .bool(let flag): "to_jsonb(" + sql.bind(flag) + "::boolean)"
        case .integer(let number): "to_jsonb(" + sql.bind(number) + "::numeric)"
        case .double(let number): "to_jsonb(" + sql.bind(number) + "::numeric)"
        case .string(let text): "to_jsonb(" + sql.bind(text) + "::text)"
        }
    }

    /// Where a cursor value falls in the (rank, number, text) order.
    static func sortKey(_ value: DocFieldValue?) -> (rank: Int, number: Double, text: String) {
        switch value ?? .null {
        case .null: (0, 0, "")
        case .bool(let flag): (1, flag ? 1 : 0, "")
        case .integer(let number): (1, Double(number), "")
        case .double(let number): (1, number, "")
        case .string(let text): (2, 0, text)
        }
    }

    static func doc(_ row: PostgresRandomAccessRow) throws -> DocRecord {
        DocRecord(
            collection: try row.get("collection"), id: try row.get("id"), body: try row.json("body"),
            createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at")
        )
    }
}
