import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
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
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-serve-\(UUID().uuidString)")
        let (process, port) = try await Self.serve(data: data)
        defer { if process.isRunning { process.terminate() } }

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

    @Test("SIGTERM with every kind of connection open (event stream, endpoint, router, idle) still exits 0; each was served")
    func stopWithOpenConnections() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-serve-\(UUID().uuidString)")
        let (process, port) = try await Self.serve(data: data, "--deploy", root.appendingPathComponent("bench/realtime/app").path)
        defer { if process.isRunning { process.terminate() } }

        // An event stream (never reaches the router), a kept-alive connection the router served,
        // one that never sent a byte, and the HTTP client's pooled connection that only an
        // endpoint served (the publish).
        let stream = try await SSEConnection.open(port: port, path: "/apps/rtbench/realtime/bench")
        #expect(stream.status == 200)
        let router = try await SSEConnection.open(port: port, path: "/healthz", reading: false)
        #expect(router.status == 200)
        let idle = try await ClientBootstrap(group: SSEConnection.group).connect(host: "127.0.0.1", port: port).get()
        var publish = HTTPClientRequest(url: "http://127.0.0.1:\(port)/apps/rtbench/api/publish")
        publish.method = .POST
        publish.headers.add(name: "Content-Type", value: "application/json")
        publish.body = .bytes(ByteBuffer(string: #"{"t":1}"#))
        let published = try await HTTPClient.shared.execute(publish, timeout: .seconds(30))
        #expect(published.status == .ok, "\(published.status)")
        // The stream is live: the event reaches it.
        var received: SSEConnection.Event?
        while let event = await stream.next(timeout: .seconds(30)) {
            if !event.data.isEmpty { received = event; break }
        }
        #expect(received?.data.contains(#""t":1"#) == true, "\(String(describing: received))")

        kill(process.processIdentifier, SIGTERM)
        let exited = await Self.waitForExit(process, seconds: 30)
        #expect(exited, "picloud did not stop within 30 s of SIGTERM with connections open")
        #expect(process.terminationStatus == 0)
        try? await idle.close()
        for connection in [stream, router] { await connection.close() }
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
    /// Starts `picloud serve` on a free port with `data` as its data directory; returns it and the port.
    static func serve(data: URL, _ arguments: String...) async throws -> (ChildProcess, Int) {
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the picloud binary first (swift build)")
        let process = ChildProcess()
        process.executableURL = binary
        process.arguments = ["serve", "--port", "0", "--data-dir", data.path] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        do {
            return (process, try await listeningPort(in: errors.fileHandleForReading))
        } catch {
            process.terminate()
            throw error
        }
    }

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
