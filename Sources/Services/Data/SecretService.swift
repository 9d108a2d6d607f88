import Crypto
import Foundation

/// Per-app secrets (third-party API keys and the like), sealed with AES-256-GCM under the
/// instance's master key. Values never leave through the admin API once set.
public struct SecretService: Sendable {
    let storage: any StorageBackend
    let keyBytes: [UInt8]
    var key: SymmetricKey { SymmetricKey(data: keyBytes) }
    public static let maxValueBytes = 64 << 10

    /// - Parameter masterKey: 32 bytes.
    public init(storage: any StorageBackend, masterKey: [UInt8]) {
        self.storage = storage
        self.keyBytes = masterKey
    }

    /// The master key: from `PICLOUD_MASTER_KEY` (64 hex characters or base64 of 32 bytes),
    /// else read from `<dataDirectory>/master-key`, generated there (mode 0600) on first use.
    public static func masterKey(environment value: String?, dataDirectory: String) throws -> [UInt8] {
        if let value, !value.isEmpty {
            if let bytes = parseKey(value) { return bytes }
            throw ServiceError(.invalidInput, "PICLOUD_MASTER_KEY must be 32 bytes as 64 hex characters or base64")
        }
        let path = (dataDirectory as NSString).appendingPathComponent("master-key")
        if let data = FileManager.default.contents(atPath: path) {
            guard let bytes = parseKey(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw ServiceError(.internal, "\(path) does not hold a 32-byte key")
            }
            return bytes
        }
        let bytes = Identifiers.randomBytes(32)
        guard FileManager.default.createFile(atPath: path, contents: Data((Identifiers.hex(bytes) + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ServiceError(.internal, "cannot write \(path)")
        }
        return bytes
    }

    /// A known value sealed with `masterKey`, to tell later whether another key is the same.
    public static func sealCheck(masterKey: [UInt8]) throws -> [UInt8] {
        let sealed = try AES.GCM.seal(Array("picloud master key check".utf8), using: SymmetricKey(data: masterKey), authenticating: Array("cluster".utf8))
        guard let combined = sealed.combined else { throw ServiceError(.internal, "cannot seal the key check") }
        return [UInt8](combined)
    }

    /// Whether `check` (from ``sealCheck(masterKey:)``) opens with `masterKey`.
    public static func opensCheck(_ check: [UInt8], masterKey: [UInt8]) -> Bool {
        guard let box = try? AES.GCM.SealedBox(combined: check),
              let opened = try? AES.GCM.open(box, using: SymmetricKey(data: masterKey), authenticating: Array("cluster".utf8))
        else { return false }
        return [UInt8](opened) == Array("picloud master key check".utf8)
    }

    static func parseKey(_ text: String) -> [UInt8]? {
        if text.utf8.count == 64, let bytes = hexBytes(text) { return bytes }
        if let data = Data(base64Encoded: text), data.count == 32 { return [UInt8](data) }
        return nil
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let high = iterator.next() {
            guard let low = iterator.next(), let h = Identifiers.hexDigit(high), let l = Identifiers.hexDigit(low) else { return nil }
            bytes.append(h << 4 | l)
        }
        return bytes
    }

    public func set(app: String, name: String, value: [UInt8]) async throws {
        try Self.validate(name: name)
        guard value.count <= Self.maxValueBytes else { throw ServiceError(.payloadTooLarge, "a secret is limited to \(Self.maxValueBytes) bytes") }
        let sealed = try AES.GCM.seal(value, using: key, authenticating: Self.slot(app: app, name: name))
        guard let combined = sealed.combined else { throw ServiceError(.internal, "cannot seal a secret") }
        try await storage.putSecret(app: app, name: name, sealed: [UInt8](combined), now: Clock.now())
    }

    /// The clear value, or nil when there is no such secret.
    public func get(app: String, name: String) async throws -> [UInt8]? {
        try Self.validate(name: name)
        guard let sealed = try await storage.sealedSecret(app: app, name: name) else { return nil }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return [UInt8](try AES.GCM.open(box, using: key, authenticating: Self.slot(app: app, name: name)))
        } catch {
            throw ServiceError(.internal, "secret '\(name)' cannot be opened with this master key", underlying: error)
        }
    }

    public func list(app: String) async throws -> [SecretSummary] { try await storage.secretSummaries(app: app) }

    public func delete(app: String, name: String) async throws -> Bool {
        try Self.validate(name: name)
        return try await storage.deleteSecret(app: app, name: name)
    }

    /// Binds a sealed value to its app and name: it cannot be copied to another slot.
    static func slot(app: String, name: String) -> [UInt8] { Array("\(app)\u{0}\(name)".utf8) }

    /// A secret name: 1 to 64 letters, digits and '_', not starting with a digit.
    public static func validate(name: String) throws(ServiceError) {
        guard (1...64).contains(name.utf8.count), (try? DocField(name)) != nil, !name.contains(".") else {
            throw ServiceError(.invalidInput, "invalid secret name '\(name)': use 1 to 64 letters, digits and '_', not starting with a digit")
        }
    }
}
