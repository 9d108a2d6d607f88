import Foundation
import Testing

@testable import Services

@Suite("SQLite durability")
struct SQLiteDurabilityTests {
    /// GRDB turns WAL on after the connection's own setup and sets `synchronous = NORMAL` as it
    /// does; the setting must be what PiCloud was asked for on the connection that writes.
    @Test("the writer flushes every commit when durability is full, and only at checkpoints when normal", arguments: [
        (SQLiteStorage.Durability.full, 2), (.normal, 1),
    ])
    func writerSynchronous(_ durability: SQLiteStorage.Durability, expected: Int) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-durability-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let storage = try SQLiteStorage(path: directory + "/picloud.sqlite", durability: durability)
        #expect(try await storage.writerSynchronous() == expected)
        // Writes go through the batcher, on the same connection.
        _ = try await storage.createApp(name: "demo", at: Clock.now())
        #expect(try await storage.writerSynchronous() == expected)
    }
}
