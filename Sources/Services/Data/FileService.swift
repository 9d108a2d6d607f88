import Foundation

/// An app's files: content in a ``BlobStore`` (on disk, or in PostgreSQL), metadata in storage.
public struct FileService: Sendable {
    let storage: any StorageBackend
    let store: any BlobStore
    let triggers: any TriggerMatching
    /// Largest file accepted, in bytes (default 10 MiB).
    public let maxSize: Int

    public init(storage: any StorageBackend, store: any BlobStore, maxSize: Int = 10 << 20, triggers: any TriggerMatching = NoTriggers()) {
        self.storage = storage
        self.store = store
        self.maxSize = maxSize
        self.triggers = triggers
    }

    func enqueue(_ app: String, _ op: String, _ path: String, depth: Int) -> OutboxEnqueue {
        OutboxEnqueue(targets: triggers.targets(app: app, event: .files(op: op, path: path), depth: depth + 1), depth: depth + 1)
    }

    /// Stores a file (empty is fine) and returns its metadata.
    public func put(app: String, path: String, content: [UInt8], contentType: String?, depth: Int = 0) async throws -> FileRecord {
        try Self.validate(path: path)
        guard content.count <= maxSize else {
            throw ServiceError(.payloadTooLarge, "files.put: '\(path)' is \(content.count) bytes; the limit is \(maxSize)")
        }
        let type = try contentType.map(Self.validate(contentType:)) ?? Self.guessContentType(path)
        let blob = try await store.write(app: app, content: content)
        let now = Clock.now()
        var record = FileRecord(path: path, blob: blob, size: Int64(content.count), contentType: type, createdAt: now, updatedAt: now)
        let events = enqueue(app, "put", path, depth: depth)
        if let previous = try await storage.putFileRecord(app: app, record: record, enqueue: events) { record.createdAt = previous.createdAt }
        if !events.targets.isEmpty { triggers.didEnqueue() }
        return record
    }

    /// A file's metadata and content, or nil.
    public func get(app: String, path: String) async throws -> (record: FileRecord, content: [UInt8])? {
        try Self.validate(path: path)
        guard let record = try await storage.fileRecord(app: app, path: path) else { return nil }
        let content = try await store.read(app: app, blob: record.blob)
        return (record, content)
    }

    public func stat(app: String, path: String) async throws -> FileRecord? {
        try Self.validate(path: path)
        return try await storage.fileRecord(app: app, path: path)
    }

    /// Deletes a file; false if there was none. Its blob goes with the next sweep.
    public func delete(app: String, path: String, depth: Int = 0) async throws -> Bool {
        try Self.validate(path: path)
        let events = enqueue(app, "delete", path, depth: depth)
        let deleted = try await storage.deleteFileRecord(app: app, path: path, enqueue: events) != nil
        if deleted, !events.targets.isEmpty { triggers.didEnqueue() }
        return deleted
    }

    public func list(app: String, prefix: String, after: String? = nil, limit: Int = 100) async throws -> [FileRecord] {
        guard prefix.utf8.count <= 512 else { throw ServiceError(.invalidInput, "files.list: prefix too long") }
        return try await storage.fileRecords(app: app, prefix: prefix, after: after, limit: min(max(limit, 1), 1000))
    }

    /// Removes temp files and unreferenced blobs older than `age` for every app with stored content.
    public func sweep(olderThan age: Duration = .seconds(3600)) async throws -> FileStore.SweepResult {
        let cutoff = Date().addingTimeInterval(-Double(age.components.seconds))
        var total = FileStore.SweepResult()
        for app in try await store.apps() {
            let referenced = try await storage.referencedBlobs(app: app)
            let result = try await store.sweep(app: app, referenced: referenced, olderThan: cutoff)
            total.temporaryFiles += result.temporaryFiles
            total.unreferencedBlobs += result.unreferencedBlobs
        }
        return total
    }

    /// A path like `avatars/42.png`: 1 to 512 bytes, '/'-separated, no empty, '.' or '..' parts.
    public static func validate(path: String) throws(ServiceError) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...512).contains(path.utf8.count), !path.utf8.contains(0), !path.contains("\\"),
              parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." })
        else {
            throw ServiceError(.invalidInput, "invalid file path '\(path)': use 1 to 512 bytes of '/'-separated names, without empty, '.' or '..' parts")
        }
    }

    static func validate(contentType: String) throws(ServiceError) -> String {
        let parts = contentType.split(separator: "/", maxSplits: 1)
        guard contentType.utf8.count <= 127, parts.count == 2,
              contentType.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F || $0 == UInt8(ascii: " ") })
        else { throw ServiceError(.invalidInput, "invalid content type '\(contentType)'") }
        return contentType
    }

    static let contentTypes: [String: String] = [
        "txt": "text/plain; charset=utf-8", "html": "text/html; charset=utf-8", "css": "text/css", "js": "text/javascript",
        "json": "application/json", "xml": "application/xml", "csv": "text/csv", "md": "text/markdown",
        "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp",
        "svg": "image/svg+xml", "ico": "image/x-icon", "pdf": "application/pdf", "zip": "application/zip",
        "mp3": "audio/mpeg", "mp4": "video/mp4", "wasm": "application/wasm",
    ]

    static func guessContentType(_ path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        return contentTypes[name[name.index(after: dot)...].lowercased()] ?? "application/octet-stream"
    }
}

/// Runs blocking file-system work off the cooperative thread pool.
enum BlockingIO {
    static let queue = DispatchQueue(label: "picloud.blocking-io", attributes: .concurrent)

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body()) }
        }
    }
}
