import Foundation
import Services

/// A fresh SQLite store in its own temporary directory, with one app.
struct TestStore {
    let directory: String
    let storage: SQLiteStorage
    let app = "demo"

    init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-services-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        storage = try SQLiteStorage(path: directory + "/picloud.sqlite", durability: .normal)
        _ = try await storage.createApp(name: app, at: Clock.now())
    }

    var files: FileStore { FileStore(root: directory + "/files") }

    func json(_ text: String) -> [UInt8] { Array(text.utf8) }
}

extension Array where Element == UInt8 {
    var text: String { String(decoding: self, as: UTF8.self) }
}
