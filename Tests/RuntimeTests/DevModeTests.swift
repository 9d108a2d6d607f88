import AsyncHTTPClient
import Foundation
import NIOCore
import TestSupport
import Testing

/// `picloud dev DIR`: serves a folder and redeploys it on every save.
@Suite("picloud dev")
struct DevModeTests {
    /// Lines the process prints, as they come.
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []

        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                var pending = ""
                while case let data = handle.availableData, !data.isEmpty {
                    pending += String(decoding: data, as: UTF8.self)
                    while let newline = pending.firstIndex(of: "\n") {
                        let line = String(pending[..<newline])
                        pending = String(pending[pending.index(after: newline)...])
                        lock.withLock { lines.append(line) }
                    }
                }
            }
        }

        /// Waits (up to 30 s) for a line containing `text` after line `index`; returns it and its index.
        func wait(for text: String, after index: Int = -1) async throws -> (line: String, index: Int) {
            for _ in 0..<600 {
                if let found = lock.withLock({ lines.enumerated().first { $0.offset > index && $0.element.contains(text) } }) {
                    return (found.element, found.offset)
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw HarnessError(message: "no line with '\(text)'; got:\n" + lock.withLock { lines.joined(separator: "\n") })
        }
    }

    func get(_ url: String) async throws -> String {
        let response = try await Harness.client.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        return String(buffer: try await response.body.collect(upTo: 1 << 20))
    }

    @Test("deploys at start, redeploys on save, reports errors with file:line and keeps the last good version")
    func redeployOnSave() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-dev-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("handlers"), withIntermediateDirectories: true)
        try "name = \"devapp\"\n[[endpoints]]\nmethod = \"GET\"\npath = \"/hello\"\nhandler = \"handlers/main.lua\"\n"
            .write(to: folder.appendingPathComponent("picloud.toml"), atomically: true, encoding: .utf8)
        let handler = folder.appendingPathComponent("handlers/main.lua")
        try "return function() return 'v1' end\n".write(to: handler, atomically: true, encoding: .utf8)

        let process = ChildProcess()
        process.executableURL = ServeProcessTests.binary
        process.arguments = ["dev", folder.path, "--port", "0"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let lines = Lines(output.fileHandleForReading)

        let first = try await lines.wait(for: "version 1")
        let base = try #require(first.line.range(of: #"http://127\.0\.0\.1:\d+/apps/devapp/api"#, options: .regularExpression).map { String(first.line[$0]) })
        #expect(try await get(base + "/hello") == "v1")

        let saved = ContinuousClock.now
        try "return function() return 'v2' end\n".write(to: handler, atomically: true, encoding: .utf8)
        let second = try await lines.wait(for: "version 2", after: first.index)
        let elapsed = ContinuousClock.now - saved
        print("picloud dev: save → version 2 serving in \(elapsed)")
        #expect(try await get(base + "/hello") == "v2")

        try "return function( return 'broken' end\n".write(to: handler, atomically: true, encoding: .utf8)
        let failure = try await lines.wait(for: "handlers/main.lua:1:", after: second.index)
        #expect(failure.line.contains("handlers/main.lua:1:"))
        #expect(try await get(base + "/hello") == "v2")

        kill(process.processIdentifier, SIGINT)
        #expect(await ServeProcessTests.waitForExit(process, seconds: 10))
    }
}
