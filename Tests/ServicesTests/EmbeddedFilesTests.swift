import Foundation
import Testing

@testable import Services

@Suite("Embedded migrations")
struct EmbeddedFilesTests {
    @Test("the binary carries exactly the SQL files of migrations/ (run scripts/embed-resources.py after editing)")
    func inSync() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("migrations/sqlite")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
        let onDisk = try names.map { ("migrations/sqlite/" + $0, try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8)) }
        let embedded = EmbeddedMigrations.files.filter { $0.path.hasPrefix("migrations/sqlite/") }
        #expect(embedded.map(\.path) == onDisk.map(\.0))
        #expect(embedded.map(\.contents) == onDisk.map(\.1))
        #expect(SQLiteStorage.migrations.map(\.version) == Array(1...names.count))
    }
}
