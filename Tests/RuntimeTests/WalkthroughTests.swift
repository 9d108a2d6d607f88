import Foundation
import TestSupport
import Testing

/// The README's tour, run as written against a server started the way `make run` starts it.
@Suite("README walk-through")
struct WalkthroughTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The commands of the README's walk-through block, each with the output lines shown under it.
    static func steps() throws -> [(command: String, expected: [String])] {
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        guard let start = readme.range(of: "<!-- walkthrough -->"), let end = readme.range(of: "<!-- /walkthrough -->") else { return [] }
        var steps: [(String, [String])] = []
        for line in readme[start.upperBound..<end.lowerBound].split(separator: "\n") where !line.hasPrefix("```") {
            if line.hasPrefix("# ") {
                steps[steps.count - 1].1.append(String(line.dropFirst(2)))
            } else if !line.trimmingCharacters(in: .whitespaces).isEmpty {
                steps.append((String(line), []))
            }
        }
        return steps
    }

    /// `…` in the README stands for any text.
    static func matches(_ output: String, _ pattern: String) -> Bool {
        let parts = pattern.components(separatedBy: "…").map(NSRegularExpression.escapedPattern(for:))
        return output.range(of: "^" + parts.joined(separator: ".*") + "$", options: .regularExpression) != nil
    }

    @Test("every command of the README tour works and prints what the README shows")
    func walkthrough() async throws {
        let steps = try Self.steps()
        try #require(steps.count >= 8, "the README has no walk-through block")
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-readme-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let data = work.appendingPathComponent("picloud-data").path
        let server = ChildProcess()
        server.executableURL = ServeProcessTests.binary
        server.arguments = ["serve", "--port", "0", "--data-dir", data,
                            "--deploy", Self.root.appendingPathComponent("examples/notes").path,
                            "--deploy", Self.root.appendingPathComponent("examples/shortener").path]
        let log = Pipe()
        server.standardError = log
        server.standardOutput = FileHandle.nullDevice
        try server.run()
        defer { server.terminate() }
        let port = try await ServeProcessTests.listeningPort(in: log.fileHandleForReading)
        let handle = log.fileHandleForReading
        Thread.detachNewThread { while !handle.availableData.isEmpty {} }

        for step in steps {
            try await Task.sleep(for: .milliseconds(250)) // a reader is slower than a script (logs flush every 100 ms)
            var environment = ProcessInfo.processInfo.environment
            environment["PATH"] = ServeProcessTests.binary.deletingLastPathComponent().path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
            environment["PICLOUD_URL"] = "http://127.0.0.1:\(port)"
            environment.removeValue(forKey: "PICLOUD_TOKEN")
            let command = step.command.replacingOccurrences(of: "localhost:8080", with: "localhost:\(port)")
            let (status, text) = try await runProcess(URL(fileURLWithPath: "/bin/bash"), ["-c", command], in: work, environment: environment)
            #expect(status == 0, "\(step.command) failed: \(text)")
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            #expect(lines.count == step.expected.count, "\(step.command) printed:\n\(text)")
            for (line, pattern) in zip(lines, step.expected) {
                #expect(Self.matches(line, pattern), "\(step.command)\n printed: \(line)\n README:  \(pattern)")
            }
        }
    }
}
