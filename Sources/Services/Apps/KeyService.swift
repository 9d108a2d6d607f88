import Foundation

/// API keys: created with a secret shown once, stored as a SHA-256, checked on every call.
public struct KeyService: Sendable {
    let storage: any StorageBackend

    public init(storage: any StorageBackend) { self.storage = storage }

    /// A key just created: the only time its secret is visible.
    public struct Created: Sendable, Hashable {
        public let record: KeyRecord
        public let secret: String
    }

    /// Creates a key for an app (or an instance key for nil) with the given scopes.
    public func create(app: String?, name: String, scopes: Set<Scope>) async throws -> Created {
        try Names.validateIdentifier(name, what: "key name")
        guard !scopes.isEmpty else { throw ServiceError(.invalidInput, "a key needs at least one scope") }
        if app != nil, scopes.contains(.instanceAdmin) {
            throw ServiceError(.invalidInput, "an app key cannot have the instance:admin scope")
        }
        if let app, try await storage.app(named: app) == nil { throw ServiceError(.notFound, "no app named '\(app)'") }
        let secret = "pc_" + Identifiers.base64url(Identifiers.randomBytes(32))
        let record = KeyRecord(
            id: "key_" + Identifiers.randomHex(8), app: app, name: name, prefix: String(secret.prefix(10)),
            hash: Identifiers.sha256(secret.utf8), scopes: scopes, createdAt: Clock.now()
        )
        try await storage.insertKey(record)
        return Created(record: record, secret: secret)
    }

    /// The principal a bearer token stands for, or nil when it is no key.
    public func authenticate(_ token: String) async throws -> Principal? {
        guard token.hasPrefix("pc_"), token.utf8.count < 200 else { return nil }
        // Looking up by hash: the time taken does not depend on how much of a secret matched.
        guard let record = try await storage.key(hash: Identifiers.sha256(token.utf8)) else { return nil }
        return Principal(keyID: record.id, app: record.app, scopes: record.scopes)
    }

    /// Makes sure an instance admin key with this secret exists (for `PICLOUD_ADMIN_TOKEN`).
    public func ensureBootstrapKey(secret: String) async throws {
        guard secret.hasPrefix("pc_"), secret.utf8.count >= 24 else {
            throw ServiceError(.invalidInput, "PICLOUD_ADMIN_TOKEN must start with 'pc_' and be at least 24 characters long")
        }
        let hash = Identifiers.sha256(secret.utf8)
        guard try await storage.key(hash: hash) == nil else { return }
        do {
            try await storage.insertKey(KeyRecord(
                id: "key_" + Identifiers.randomHex(8), app: nil, name: "bootstrap", prefix: String(secret.prefix(10)),
                hash: hash, scopes: [.instanceAdmin], createdAt: Clock.now()
            ))
        } catch let error as ServiceError where error.code == .conflict {
            // Another node starting at the same time stored it first.
            guard try await storage.key(hash: hash) != nil else { throw error }
        }
    }

    /// The first admin key: from `PICLOUD_ADMIN_TOKEN`, or, on a store without instance keys,
    /// generated and written to `<dataDirectory>/admin-token` (mode 0600). Returns the secret
    /// when it was generated now (to print once), nil otherwise.
    public func bootstrap(environmentToken: String?, dataDirectory: String) async throws -> String? {
        if let environmentToken, !environmentToken.isEmpty {
            try await ensureBootstrapKey(secret: environmentToken)
            return nil
        }
        guard try await storage.keys(app: nil).isEmpty else { return nil }
        let created = try await create(app: nil, name: "bootstrap", scopes: [.instanceAdmin])
        let path = (dataDirectory as NSString).appendingPathComponent("admin-token")
        guard FileManager.default.createFile(atPath: path, contents: Data((created.secret + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ServiceError(.internal, "cannot write \(path)")
        }
        return created.secret
    }

    public func list(app: String?) async throws -> [KeyRecord] { try await storage.keys(app: app) }

    /// Revokes a key at once; false if there was no such key.
    public func revoke(id: String, app: String?) async throws -> Bool { try await storage.deleteKey(id: id, app: app) }
}
