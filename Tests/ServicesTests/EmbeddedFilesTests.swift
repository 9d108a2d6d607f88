import Foundation
import Testing

@testable import Services

@Suite("Embedded migrations")
struct EmbeddedFilesTests {
    @Test("the binary carries exactly the SQL files of migrations/ (run scripts/embed-resources.py after editing)", arguments: ["sqlite", "postgres"])
    func inSync(_ backend: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("migrations/\(backend)")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
        let onDisk = try names.map { ("migrations/\(backend)/" + $0, try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8)) }
        let embedded = EmbeddedMigrations.files.filter { $0.path.hasPrefix("migrations/\(backend)/") }
        #expect(embedded.map(\.path) == onDisk.map(\.0))
        #expect(embedded.map(\.contents) == onDisk.map(\.1))
        let versions = backend == "sqlite" ? SQLiteStorage.migrations.map(\.version) : PostgresStorage.migrations.map(\.version)
        #expect(versions == Array(1...names.count))
    }
}
