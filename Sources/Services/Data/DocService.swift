import Foundation

/// An app's document collections: JSON objects with an id, filters, sorting and cursors.
public struct DocService: Sendable {
    let storage: any StorageBackend
    let triggers: any TriggerMatching
    public static let maxBodyBytes = 1 << 20

    public init(storage: any StorageBackend, triggers: any TriggerMatching = NoTriggers()) {
        self.storage = storage
        self.triggers = triggers
    }

    func enqueue(_ app: String, _ op: String, _ collection: String, depth: Int) -> OutboxEnqueue {
        OutboxEnqueue(targets: triggers.targets(app: app, event: .docs(op: op, collection: collection), depth: depth + 1), depth: depth + 1)
    }

    /// A fresh document id: sortable by creation time.
    public static func newID() -> String { Identifiers.ulid() }

    public func insert(app: String, collection: String, id: String, body: [UInt8], depth: Int = 0) async throws -> DocRecord {
        try Self.validate(collection: collection)
        try Self.validate(id: id)
        try Self.validate(body: body)
        let events = enqueue(app, "insert", collection, depth: depth)
        let record = try await storage.docInsert(app: app, collection: collection, id: id, body: body, now: Clock.now(), enqueue: events)
        if !events.targets.isEmpty { triggers.didEnqueue() }
        return record
    }

    public func get(app: String, collection: String, id: String) async throws -> DocRecord? {
        try Self.validate(collection: collection)
        try Self.validate(id: id)
        return try await storage.docGet(app: app, collection: collection, id: id)
    }

    /// The document when the store can read it without waiting (SQLite, on the calling thread):
    /// `.some(record)` (`.some(nil)`: none), or nil when ``get(app:collection:id:)`` must be
    /// asked. Invalid names are left to it.
    public func getNow(app: String, collection: String, id: String) -> DocRecord?? {
        guard (try? Self.validate(collection: collection)) != nil, (try? Self.validate(id: id)) != nil else { return nil }
        return storage.docGetNow(app: app, collection: collection, id: id)
    }

    /// Reads, changes and writes back a document atomically; nil if there is none.
    public func update(app: String, collection: String, id: String, depth: Int = 0, transform: @escaping @Sendable ([UInt8]) throws -> [UInt8]) async throws -> DocRecord? {
        try Self.validate(collection: collection)
        try Self.validate(id: id)
        let events = enqueue(app, "update", collection, depth: depth)
        let record = try await storage.docUpdate(app: app, collection: collection, id: id, now: Clock.now(), enqueue: events) { body in
            let changed = try transform(body)
            try Self.validate(body: changed)
            return changed
        }
        if record != nil, !events.targets.isEmpty { triggers.didEnqueue() }
        return record
    }

    public func delete(app: String, collection: String, id: String, depth: Int = 0) async throws -> Bool {
        try Self.validate(collection: collection)
        try Self.validate(id: id)
        let events = enqueue(app, "delete", collection, depth: depth)
        let deleted = try await storage.docDelete(app: app, collection: collection, id: id, enqueue: events)
        if deleted, !events.targets.isEmpty { triggers.didEnqueue() }
        return deleted
    }

    public func find(app: String, collection: String, query: DocQuery) async throws -> (records: [DocRecord], next: DocCursor?) {
        try Self.validate(collection: collection)
        var query = query
        query.limit = min(max(query.limit, 1), 1000)
        return try await storage.docFind(app: app, collection: collection, query: query)
    }

    public func count(app: String, collection: String, filter: [DocCondition]) async throws -> Int {
        try Self.validate(collection: collection)
        return try await storage.docCount(app: app, collection: collection, filter: filter)
    }

    public func collections(app: String) async throws -> [(name: String, count: Int)] {
        try await storage.docCollections(app: app)
    }

    /// The cursor as an opaque string for callers.
    public static func encode(cursor: DocCursor) -> String {
        Identifiers.base64url(Array((try? JSONEncoder().encode(cursor)) ?? Data()))
    }

    /// Reads a cursor string back; throws `invalid_input` for anything else.
    public static func decode(cursor: String) throws(ServiceError) -> DocCursor {
        var text = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text), let decoded = try? JSONDecoder().decode(DocCursor.self, from: data) else {
            throw ServiceError(.invalidInput, "invalid cursor")
        }
        return decoded
    }

    public static func validate(collection: String) throws(ServiceError) {
        try Names.validateIdentifier(collection, what: "collection name")
    }

    public static func validate(id: String) throws(ServiceError) {
        guard (1...128).contains(id.utf8.count), !id.utf8.contains(0), !id.contains("/") else {
            throw ServiceError(.invalidInput, "invalid document id: use 1 to 128 bytes without '/'")
        }
    }

    static func validate(body: [UInt8]) throws(ServiceError) {
        guard body.count <= maxBodyBytes else {
            throw ServiceError(.payloadTooLarge, "a document is limited to \(maxBodyBytes) bytes of JSON; this one has \(body.count)")
        }
    }
}
