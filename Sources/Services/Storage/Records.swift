/// Milliseconds since the Unix epoch, the one time format in storage.
public typealias Milliseconds = Int64

/// An app: a namespace for handlers, keys and data.
public struct AppRecord: Sendable, Hashable, Codable {
    public var name: String
    public var createdAt: Milliseconds
    /// The deployment version serving now (nil before the first deployment).
    public var currentVersion: Int?

    public init(name: String, createdAt: Milliseconds, currentVersion: Int? = nil) {
        self.name = name
        self.createdAt = createdAt
        self.currentVersion = currentVersion
    }
}

/// An API key as stored: only the SHA-256 of the secret.
public struct KeyRecord: Sendable, Hashable {
    public var id: String
    /// The app the key belongs to; nil for an instance key.
    public var app: String?
    public var name: String
    /// The first characters of the key, to recognise it in lists.
    public var prefix: String
    public var hash: [UInt8]
    public var scopes: Set<Scope>
    public var createdAt: Milliseconds

    public init(id: String, app: String?, name: String, prefix: String, hash: [UInt8], scopes: Set<Scope>, createdAt: Milliseconds) {
        self.id = id
        self.app = app
        self.name = name
        self.prefix = prefix
        self.hash = hash
        self.scopes = scopes
        self.createdAt = createdAt
    }
}

/// One deployment of an app: its manifest and files, as deployed.
public struct DeploymentRecord: Sendable, Hashable {
    public var app: String
    public var version: Int
    public var manifest: String
    public var files: [String: String]
    public var createdAt: Milliseconds
    public var createdBy: String?

    public init(app: String, version: Int, manifest: String, files: [String: String], createdAt: Milliseconds, createdBy: String?) {
        self.app = app
        self.version = version
        self.manifest = manifest
        self.files = files
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
}

/// A kv entry; `value` is JSON text.
public struct KVEntry: Sendable, Hashable {
    public var key: String
    public var value: [UInt8]
    public var expiresAt: Milliseconds?
    public var updatedAt: Milliseconds

    public init(key: String, value: [UInt8], expiresAt: Milliseconds?, updatedAt: Milliseconds) {
        self.key = key
        self.value = value
        self.expiresAt = expiresAt
        self.updatedAt = updatedAt
    }
}

/// A document; `body` is a JSON object's text.
public struct DocRecord: Sendable, Hashable {
    public var collection: String
    public var id: String
    public var body: [UInt8]
    public var createdAt: Milliseconds
    public var updatedAt: Milliseconds

    public init(collection: String, id: String, body: [UInt8], createdAt: Milliseconds, updatedAt: Milliseconds) {
        self.collection = collection
        self.id = id
        self.body = body
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A stored file's metadata; the content is the blob named by its SHA-256.
public struct FileRecord: Sendable, Hashable {
    public var path: String
    public var blob: String
    public var size: Int64
    public var contentType: String
    public var createdAt: Milliseconds
    public var updatedAt: Milliseconds

    public init(path: String, blob: String, size: Int64, contentType: String, createdAt: Milliseconds, updatedAt: Milliseconds) {
        self.path = path
        self.blob = blob
        self.size = size
        self.contentType = contentType
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One line of an app's log.
public struct LogEntry: Sendable, Hashable, Codable {
    public enum Level: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
        case debug, info, warn, error

        var rank: Int { Self.allCases.firstIndex(of: self)! }
        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rank < rhs.rank }
    }

    /// Assigned by storage; increases with time within an app.
    public var id: Int64
    public var app: String
    public var at: Milliseconds
    public var level: Level
    public var message: String
    public var requestID: String?

    public init(id: Int64 = 0, app: String, at: Milliseconds, level: Level, message: String, requestID: String?) {
        self.id = id
        self.app = app
        self.at = at
        self.level = level
        self.message = message
        self.requestID = requestID
    }
}

/// A secret's name and dates (never its value).
public struct SecretSummary: Sendable, Hashable, Codable {
    public var name: String
    public var createdAt: Milliseconds
    public var updatedAt: Milliseconds
}
