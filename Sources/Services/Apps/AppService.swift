/// Apps: created by name, listed, deleted with all their data.
public struct AppService: Sendable {
    let storage: any StorageBackend
    let files: any BlobStore

    public init(storage: any StorageBackend, files: any BlobStore) {
        self.storage = storage
        self.files = files
    }

    public func create(name: String) async throws -> AppRecord {
        try Names.validateApp(name)
        return try await storage.createApp(name: name, at: Clock.now())
    }

    public func get(_ name: String) async throws -> AppRecord {
        guard let app = try await storage.app(named: name) else { throw ServiceError(.notFound, "no app named '\(name)'") }
        return app
    }

    public func list() async throws -> [AppRecord] { try await storage.apps() }

    /// Deletes the app, its keys, deployments and data, then its stored files.
    public func delete(_ name: String) async throws {
        guard try await storage.deleteApp(named: name) else { throw ServiceError(.notFound, "no app named '\(name)'") }
        try await files.removeAll(app: name)
    }
}
