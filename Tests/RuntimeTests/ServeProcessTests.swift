import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Foundation
import TestSupport
import Testing

/// The real binary: starts, answers /healthz over loopback, stops cleanly on SIGTERM.
@Suite("picloud serve as a process")
struct ServeProcessTests {
    /// The `picloud` binary built next to the test bundle.
    static var binary: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("picloud")
    }

    @Test("starts, serves /healthz, and exits 0 on SIGTERM")
    func serveAndStop() async throws {
        let binary = Self.binary
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the picloud binary first (swift build)")
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-serve-\(UUID().uuidString)")
        let process = ChildProcess()
        process.executableURL = binary
        process.arguments = ["serve", "--port", "0", "--data-dir", data.path]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        let port = try await Self.listeningPort(in: errors.fileHandleForReading)
        let response = try await HTTPClient.shared.get(url: "http://127.0.0.1:\(port)/healthz").get()
        #expect(response.status == .ok)
        #expect(response.body.map { String(buffer: $0) }?.contains(#""status":"ok""#) == true)
        #expect(FileManager.default.fileExists(atPath: data.path), "serve creates its data directory")

        kill(process.processIdentifier, SIGTERM)
        let exited = await Self.waitForExit(process, seconds: 10)
        #expect(exited, "picloud did not stop within 10 s of SIGTERM")
        #expect(process.terminationStatus == 0)
        #expect(process.terminationReason == .exit)
    }

    @Test("a bad or unreachable database URL stops serve at once with a clear message", arguments: [
        ("mysql://localhost/db", "a database URL looks like postgres://"),
        ("postgres://localhost/db?sslmode=sometimes", "sslmode must be disable, prefer or require"),
        ("postgres://picloud@127.0.0.1:1/none?sslmode=disable", "cannot connect to PostgreSQL at postgres://picloud@127.0.0.1:1/none"),
    ])
    func badDatabaseURL(url: String, message: String) async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-serve-\(UUID().uuidString)")
        let (status, output) = try await runProcess(Self.binary, ["serve", "--port", "0", "--data-dir", data.path, "--database-url", url])
        #expect(status != 0)
        #expect(output.contains(message), "\(output)")
        #expect(!output.contains("listening on"))
    }

    /// Reads the log until the "listening on" line and returns its port (reading on a thread of
    /// its own: a blocking read on the cooperative pool would starve other tests' servers).
    static func listeningPort(in handle: FileHandle) async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                var seen = ""
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    seen += String(decoding: chunk, as: UTF8.self)
                    if let range = seen.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression),
                       let port = Int(seen[range].split(separator: ":").last ?? "") {
                        return continuation.resume(returning: port)
                    }
                }
                continuation.resume(throwing: ServeError(message: "no 'listening on' line; output: \(seen)"))
            }
        }
    }

    static func waitForExit(_ process: ChildProcess, seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { return false }
        process.waitUntilExit()
        return true
    }

    struct ServeError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
