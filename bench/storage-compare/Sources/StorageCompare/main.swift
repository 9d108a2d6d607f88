// Durable single-row upserts, sequential point reads and concurrent point reads, through GRDB
// (a DatabasePool: one writer, four readers) and through sqlite-nio (one connection per reader,
// one writer connection), on the same machine in one run. WAL mode, synchronous=FULL and NORMAL.
import Foundation
import GRDB
import NIOCore
import NIOPosix
import SQLiteNIO

let writes = 2000
let reads = 20_000
let readers = 4
let schema = "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
let upsert = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
let select = "SELECT value FROM kv WHERE key = ?"

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

struct Result {
    var writesPerSecond = 0.0
    var readsPerSecond = 0.0
    var concurrentReadsPerSecond = 0.0
    var unsafeReadsPerSecond = 0.0
    var unsafeConcurrentReadsPerSecond = 0.0
    var syncConcurrentReadsPerSecond = 0.0
}

/// GRDB's synchronous read on a thread of a global queue, bridged to async.
func syncRead(_ pool: DatabasePool, _ key: String) async throws -> String? {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Swift.Result<String?, any Error> { try pool.unsafeRead { db in try String.fetchOne(db.cachedStatement(sql: select), arguments: [key]) } })
        }
    }
}

func grdb(path: String, synchronous: String) async throws -> Result {
    var configuration = Configuration()
    configuration.maximumReaderCount = readers
    let pool = try DatabasePool(path: path, configuration: configuration)
    // Not in prepareDatabase: the pool sets synchronous = NORMAL on its writer when it turns WAL on,
    // after that ran (the first version of this benchmark measured GRDB's "FULL" writes so).
    try await pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = \(synchronous)") }
    try await pool.write { db in try db.execute(sql: schema) }
    var result = Result()
    result.writesPerSecond = Double(writes) / (try await seconds {
        for index in 0..<writes {
            try await pool.write { db in try db.cachedStatement(sql: upsert).execute(arguments: ["key\(index)", "{\"n\":\(index)}"]) }
        }
    })
    result.readsPerSecond = Double(reads) / (try await seconds {
        for index in 0..<reads {
            _ = try await pool.read { db in try String.fetchOne(db.cachedStatement(sql: select), arguments: ["key\(index % writes)"]) }
        }
    })
    result.concurrentReadsPerSecond = Double(reads) / (try await seconds {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for reader in 0..<readers {
                group.addTask {
                    for index in stride(from: reader, to: reads, by: readers) {
                        _ = try await pool.read { db in try String.fetchOne(db.cachedStatement(sql: select), arguments: ["key\(index % writes)"]) }
                    }
                }
            }
            try await group.waitForAll()
        }
    })
    // Without the DEFERRED transaction GRDB wraps around each read (a single SELECT is atomic anyway).
    result.unsafeReadsPerSecond = Double(reads) / (try await seconds {
        for index in 0..<reads {
            _ = try await pool.unsafeRead { db in try String.fetchOne(db.cachedStatement(sql: select), arguments: ["key\(index % writes)"]) }
        }
    })
    result.unsafeConcurrentReadsPerSecond = Double(reads) / (try await seconds {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for reader in 0..<readers {
                group.addTask {
                    for index in stride(from: reader, to: reads, by: readers) {
                        _ = try await pool.unsafeRead { db in try String.fetchOne(db.cachedStatement(sql: select), arguments: ["key\(index % writes)"]) }
                    }
                }
            }
            try await group.waitForAll()
        }
    })
    result.syncConcurrentReadsPerSecond = Double(reads) / (try await seconds {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for reader in 0..<readers {
                group.addTask {
                    for index in stride(from: reader, to: reads, by: readers) {
                        _ = try await syncRead(pool, "key\(index % writes)")
                    }
                }
            }
            try await group.waitForAll()
        }
    })
    try pool.close()
    return result
}

func sqliteNIO(path: String, synchronous: String) async throws -> Result {
    let writer = try await SQLiteNIO.SQLiteConnection.open(storage: .file(path: path))
    for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = \(synchronous)", schema] {
        try await writer.query(pragma, []) { _ in }
    }
    var connections: [SQLiteNIO.SQLiteConnection] = []
    for _ in 0..<readers { connections.append(try await SQLiteNIO.SQLiteConnection.open(storage: .file(path: path))) }
    var result = Result()
    result.writesPerSecond = Double(writes) / (try await seconds {
        for index in 0..<writes {
            try await writer.query(upsert, [SQLiteData.text("key\(index)"), SQLiteData.text("{\"n\":\(index)}")]) { _ in }
        }
    })
    let reader = connections[0]
    result.readsPerSecond = Double(reads) / (try await seconds {
        for index in 0..<reads {
            try await reader.query(select, [SQLiteData.text("key\(index % writes)")]) { _ in }
        }
    })
    result.concurrentReadsPerSecond = Double(reads) / (try await seconds {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (number, connection) in connections.enumerated() {
                group.addTask {
                    for index in stride(from: number, to: reads, by: readers) {
                        try await connection.query(select, [SQLiteData.text("key\(index % writes)")]) { _ in }
                    }
                }
            }
            try await group.waitForAll()
        }
    })
    for connection in connections + [writer] { try await connection.close() }
    return result
}

@concurrent
func run() async throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("storage-compare-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    var table = "| operation | synchronous | GRDB ops/s | sqlite-nio ops/s | sqlite-nio / GRDB |\n|---|---|---|---|---|\n"
    for synchronous in ["FULL", "NORMAL"] {
        let g = try await grdb(path: directory.appendingPathComponent("grdb-\(synchronous).sqlite").path, synchronous: synchronous)
        let n = try await sqliteNIO(path: directory.appendingPathComponent("nio-\(synchronous).sqlite").path, synchronous: synchronous)
        for (name, a, b) in [
            ("upsert (1 row per transaction)", g.writesPerSecond, n.writesPerSecond),
            ("point read, sequential", g.readsPerSecond, n.readsPerSecond),
            ("point read, \(readers) concurrent readers", g.concurrentReadsPerSecond, n.concurrentReadsPerSecond),
            ("point read, sequential (GRDB unsafeRead)", g.unsafeReadsPerSecond, n.readsPerSecond),
            ("point read, \(readers) concurrent (GRDB unsafeRead)", g.unsafeConcurrentReadsPerSecond, n.concurrentReadsPerSecond),
            ("point read, \(readers) concurrent (GRDB sync unsafeRead on a global queue)", g.syncConcurrentReadsPerSecond, n.concurrentReadsPerSecond),
        ] {
            table += "| \(name) | \(synchronous) | \(Int(a)) | \(Int(b)) | \(String(format: "%.2f", b / a)) |\n"
        }
    }
    return table
}

let table = try await Task.detached { try await run() }.value
let date = ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withFullDate])
let report = """
    # GRDB vs sqlite-nio (\(date))

    `cd bench/storage-compare && swift run -c release StorageCompare` on \(ProcessInfo.processInfo.activeProcessorCount) cores. \
    \(writes) upserts, \(reads) reads. GRDB uses the system SQLite, sqlite-nio its own vendored copy.

    \(table)
    """
print(report)
let results = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("results/storage-compare-\(date).md")
try report.write(to: results, atomically: true, encoding: .utf8)
print("wrote \(results.path)")
