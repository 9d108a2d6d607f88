public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where file contents live: on disk next to SQLite (``FileStore``), or in PostgreSQL
/// (``PostgresBlobStore``) when several nodes share the data. Contents are named by their SHA-256
/// and written whole before any metadata points at them.
public protocol BlobStore: Sendable {
    /// Stores content (refreshing its age if it is already there); returns its name.
    func write(app: String, content: [UInt8]) async throws -> String
    func read(app: String, blob: String) async throws -> [UInt8]
    /// Removes everything stored for an app.
    func removeAll(app: String) async throws
    /// Removes unreferenced blobs (and leftovers of interrupted writes) older than `cutoff`.
    func sweep(app: String, referenced: Set<String>, olderThan cutoff: Date) async throws -> FileStore.SweepResult
    /// Apps that have content stored.
    func apps() async throws -> [String]
}

extension FileStore: BlobStore {
    public func write(app: String, content: [UInt8]) async throws -> String {
        try await BlockingIO.run { try writeNow(app: app, content: content) }
    }

    public func read(app: String, blob: String) async throws -> [UInt8] {
        try await BlockingIO.run { try readNow(app: app, blob: blob) }
    }

    public func removeAll(app: String) async throws {
        try await BlockingIO.run { try removeAllNow(app: app) }
    }

    public func sweep(app: String, referenced: Set<String>, olderThan cutoff: Date) async throws -> SweepResult {
        await BlockingIO.run { sweepNow(app: app, referenced: referenced, olderThan: cutoff) }
    }

    public func apps() async throws -> [String] { appsOnDisk() }
}

/// File contents on disk, named by their SHA-256: `<root>/<app>/blobs/<ab>/<sha256>`.
///
/// A blob is written to `<sha256>.tmp.<random>`, flushed, renamed into place and the directory
/// flushed, before any metadata points at it: a crash leaves either the old state or a whole new
/// blob, never a torn file. Blobs nobody points at and temp files left by a crash are swept after
/// an hour (see ``sweepNow(app:referenced:olderThan:)``).
public struct FileStore: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    func appDirectory(_ app: String) -> String { root + "/" + app }

    func blobPath(app: String, blob: String) -> String {
        appDirectory(app) + "/blobs/" + blob.prefix(2) + "/" + blob
    }

    /// Writes content as a blob (no-op but a fresh mtime if it is already there); returns its name.
    func writeNow(app: String, content: [UInt8]) throws -> String {
        let blob = Identifiers.hex(Identifiers.sha256(content))
        let path = blobPath(app: app, blob: blob)
        let directory = (path as NSString).deletingLastPathComponent
        if FileManager.default.fileExists(atPath: path) {
            // Same content already stored: refresh its age so a concurrent sweep keeps it.
            try? FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: path)
            return blob
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let temporary = path + ".tmp." + Identifiers.randomHex(6)
        try Self.writeDurably(content, to: temporary)
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw Self.error(code, "cannot store a file")
        }
        Self.syncDirectory(directory)
        return blob
    }

    func readNow(app: String, blob: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: blobPath(app: app, blob: blob)) else {
            throw ServiceError(.internal, "the content of a stored file is missing")
        }
        return [UInt8](data)
    }

    /// Removes everything stored for an app.
    func removeAllNow(app: String) throws {
        let directory = appDirectory(app)
        if FileManager.default.fileExists(atPath: directory) { try FileManager.default.removeItem(atPath: directory) }
    }

    /// What a sweep removed.
    public struct SweepResult: Sendable, Hashable {
        public var temporaryFiles = 0
        public var unreferencedBlobs = 0

        public init(temporaryFiles: Int = 0, unreferencedBlobs: Int = 0) {
            self.temporaryFiles = temporaryFiles
            self.unreferencedBlobs = unreferencedBlobs
        }
    }

    /// Removes temp files and unreferenced blobs of `app` last modified before `olderThan`.
    func sweepNow(app: String, referenced: Set<String>, olderThan cutoff: Date) -> SweepResult {
        var result = SweepResult()
        let blobs = appDirectory(app) + "/blobs"
        guard let enumerator = FileManager.default.enumerator(atPath: blobs) else { return result }
        while let relative = enumerator.nextObject() as? String {
            let path = blobs + "/" + relative
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  attributes[.type] as? FileAttributeType == .typeRegular,
                  let modified = attributes[.modificationDate] as? Date, modified < cutoff
            else { continue }
            let name = (relative as NSString).lastPathComponent
            if name.contains(".tmp.") {
                if unlink(path) == 0 { result.temporaryFiles += 1 }
            } else if !referenced.contains(name) {
                if unlink(path) == 0 { result.unreferencedBlobs += 1 }
            }
        }
        return result
    }

    /// Apps that have a directory here.
    func appsOnDisk() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
    }

    static func writeDurably(_ content: [UInt8], to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw error(errno, "cannot create a file") }
        defer { close(descriptor) }
        var offset = 0
        while offset < content.count {
            let written = content.withUnsafeBytes { buffer in
                Glibc.write(descriptor, buffer.baseAddress! + offset, content.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                let code = errno
                unlink(path)
                throw error(code, "cannot write a file")
            }
            offset += written
        }
        guard fsync(descriptor) == 0 else {
            let code = errno
            unlink(path)
            throw error(code, "cannot flush a file to disk")
        }
    }

    static func syncDirectory(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    static func error(_ code: Int32, _ what: String) -> ServiceError {
        if code == ENOSPC || code == EDQUOT {
            return ServiceError(.unavailable, "\(what): the disk is full")
        }
        return ServiceError(.internal, "\(what): \(String(cString: strerror(code)))")
    }
}
