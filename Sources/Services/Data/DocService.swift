import Foundation

/// An app's document collections: JSON objects with an id, filters, sorting and cursors.
public struct DocService: Sendable {
    let storage: any StorageBackend
    public static let maxBodyBytes = 1 << 20

    public init(storage: any StorageBackend) { self.storage = storage }

    /// A fresh document id: sortable by creation time.
    public static func newID() -> String { Identifiers.ulid() }

    public func insert(app: String, collection: String, id: String, body: [UInt8]) async throws -> DocRecord {
        try Self.validate(collection: collection)
        try Self.validate(id: id)
        try Self.validate(body: body)
        return try await storage.docInsert(app: app, collection: collection, id: id, body: body, now: Clock.now())
    }

    public func get(app: String, collection: String, id: String) async throws -> DocRecord? {
        try Self.validate(collection: collection)
        try Self.validate(id: id)
        return try await storage.docGet(app: app, collection: collection, id: id)
    }

    /// Reads, changes and writes back a document atomically; nil if there is none.
    public func update(app: String, collection: String, id: String, transform: @escaping @Sendable ([UInt8]) throws -> [UInt8]) async throws -> DocRecord? {
        try Self.validate(collection: collection)
        try Self.validate(id: id)
        return try await storage.docUpdate(app: app, collection: collection, id: id, now: Clock.now()) { body in
            let changed = try transform(body)
            try Self.validate(body: changed)
            return changed
        }
    }

    public func delete(app: String, collection: String, id: String) async throws -> Bool {
        try Self.validate(collection: collection)
        try Self.validate(id: id)
        return try await storage.docDelete(app: app, collection: collection, id: id)
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
