import Foundation
import Logging
import PostgresNIO
import Services
import Testing

/// The storage backends every storage test runs against. PostgreSQL joins when
/// `PICLOUD_TEST_DATABASE_URL` names a server (`make test` starts one: scripts/with-postgres.sh).
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    static var all: [Backend] { PostgresTestServer.url == nil ? [.sqlite] : [.sqlite, .postgres] }

    var testDescription: String { rawValue }
}

/// What storage tests inspect beyond the `StorageBackend` protocol; both backends have it.
protocol InspectableStorage: StorageBackend {
    func appliedMigrations() async throws -> [Int]
    func schema() async throws -> String
    func integrityCheck() async throws -> String
    func docIndexNames() async throws -> [String]
    func docQueryPlan(app: String, collection: String, query: DocQuery) async throws -> String
}

extension SQLiteStorage: InspectableStorage {}
extension PostgresStorage: InspectableStorage {}

/// A private database on the test PostgreSQL server: one per test store, so tests run in
/// parallel without seeing each other.
enum PostgresTestServer {
    static var url: String? {
        ProcessInfo.processInfo.environment["PICLOUD_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Creates a new empty database and returns its URL.
    static func createDatabase() async throws -> String {
        guard let url else { throw TestSetupError("PICLOUD_TEST_DATABASE_URL is not set") }
        let location = try PostgresLocation(url: url)
        let name = "picloud_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.username, password: location.password, database: location.database, tls: .disable
        )
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Logger(label: "test"))
        do {
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Logger(label: "test"))
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
        var components = URLComponents(string: url)!
        components.path = "/" + name
        return components.string!
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A fresh store (a SQLite file in its own temporary directory, or a new PostgreSQL database),
/// with one app.
struct TestStore {
    let backend: Backend
    let directory: String
    let storage: any InspectableStorage
    /// Where file contents go on this backend.
    let blobs: any BlobStore
    /// The PostgreSQL URL of this store's database.
    let url: String?
    let app = "demo"

    init(_ backend: Backend = .sqlite) async throws {
        self.backend = backend
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-services-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        switch backend {
        case .sqlite:
            storage = try SQLiteStorage(path: directory + "/picloud.sqlite", durability: .normal)
            blobs = FileStore(root: directory + "/files")
            url = nil
        case .postgres:
            let url = try await PostgresTestServer.createDatabase()
            let postgres = try await PostgresStorage.open(url: url, maximumConnections: 8)
            storage = postgres
            blobs = PostgresBlobStore(storage: postgres)
            self.url = url
        }
        _ = try await storage.createApp(name: app, at: Clock.now())
    }

    /// The on-disk file store (SQLite backend).
    var files: FileStore { FileStore(root: directory + "/files") }

    func json(_ text: String) -> [UInt8] { Array(text.utf8) }
}

extension Array where Element == UInt8 {
    var text: String { String(decoding: self, as: UTF8.self) }
}

@Suite("Test backends")
struct BackendAvailabilityTests {
    @Test("the PostgreSQL test server is there when the suite runs in CI (make test starts one)")
    func postgresPresent() {
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            #expect(PostgresTestServer.url != nil, "PICLOUD_TEST_DATABASE_URL is not set: the PostgreSQL half of the storage tests did not run")
        }
    }
}
