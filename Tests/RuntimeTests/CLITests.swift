import Foundation
import LuaBridge
import NIOHTTP1
import Runtime
import TestSupport
import Testing

/// The client commands against a running server.
@Suite("picloud commands")
struct CLITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs `picloud` with arguments; returns exit status and output.
    func picloud(_ arguments: [String], port: Int, token: String? = Harness.adminToken, input: String? = nil) async throws -> (status: Int32, output: String) {
        try await runProcess(ServeProcessTests.binary, arguments + ["--url", "http://127.0.0.1:\(port)"] + (token.map { ["--token", $0] } ?? []), input: input)
    }

    @Test("deploy, apps, invoke, keys, secrets and logs work against a server; errors exit non-zero with the reason")
    func commands() async throws {
        try await Harness.run { server in
            let port = server.port
            let notes = Self.root.appendingPathComponent("examples/notes").path
            let deployed = try await picloud(["deploy", notes], port: port)
            #expect(deployed.status == 0 && deployed.output.contains("deployed") && deployed.output.contains("version 1"), "\(deployed.output)")
            #expect(deployed.output.contains("DELETE /apps/notes/api/notes/:id (key)"))
            #expect(try await picloud(["apps", "list"], port: port).output.contains("notes\tversion 1"))
            #expect(try await picloud(["apps", "create", "scratch"], port: port).status == 0)
            let refused = try await picloud(["apps", "delete", "scratch"], port: port)
            #expect(refused.status != 0 && refused.output.contains("--yes"))
            #expect(try await picloud(["apps", "delete", "scratch", "--yes"], port: port).status == 0)

            let created = try await picloud(["invoke", "notes", "POST", "/notes", "--data", #"{"title": "from the cli"}"#, "--header", "Content-Type: application/json"], port: port)
            #expect(created.status == 0 && created.output.contains("HTTP 201") && created.output.contains("from the cli"), "\(created.output)")
            let missing = try await picloud(["invoke", "notes", "GET", "/notes/nope"], port: port)
            #expect(missing.status != 0 && missing.output.contains("HTTP 404"))

            let key = try await picloud(["keys", "create", "--app", "notes", "--scopes", "invoke,data:read", "--name", "cli"], port: port)
            let secret = try #require(key.output.split(separator: "\n").first.map(String.init))
            #expect(secret.hasPrefix("pc_"))
            let listed = try await picloud(["keys", "list", "--app", "notes"], port: port)
            #expect(listed.output.contains("cli") && listed.output.contains("data:read,invoke") && !listed.output.contains(secret))
            let id = try #require(listed.output.split(separator: "\t").first.map(String.init))
            #expect(try await picloud(["keys", "revoke", id, "--app", "notes"], port: port).status == 0)
            #expect(try await picloud(["keys", "revoke", id, "--app", "notes"], port: port).status != 0)

            #expect(try await picloud(["secrets", "set", "notes", "API_KEY"], port: port, input: "from-stdin\n").status == 0)
            let secrets = try await picloud(["secrets", "list", "notes"], port: port)
            #expect(secrets.output.contains("API_KEY") && !secrets.output.contains("from-stdin"))
            #expect(try await picloud(["secrets", "delete", "notes", "API_KEY"], port: port).status == 0)

            // App log lines are stored when their buffer is flushed: wait for it.
            var logs = ""
            try await RealtimeTests.eventually("the handler's line in `picloud logs`") {
                let answer = try await picloud(["logs", "notes"], port: port)
                logs = answer.output
                return answer.status == 0 && answer.output.contains("note created")
            }
            #expect(logs.contains("note created"), "\(logs)")

            let noKey = try await picloud(["apps", "list"], port: port, token: "pc_wrong-key-for-the-cli-test")
            #expect(noKey.status != 0 && noKey.output.contains("401"))
        }
    }

    @Test("topics: create, list, flip external, print the history, follow as a browser would, delete")
    func topics() async throws {
        try await Harness.run { server in
            let port = server.port
            #expect(try await picloud(["deploy", Self.root.appendingPathComponent("examples/notes").path], port: port).status == 0)
            let created = try await picloud(["topics", "create", "notes", "alerts", "--auth", "public", "--history-events", "10"], port: port)
            #expect(created.status == 0 && created.output.contains("/apps/notes/realtime/alerts"), "\(created.output)")
            let listed = try await picloud(["topics", "list", "notes"], port: port)
            #expect(listed.output.contains("alerts\tinternal\tlast id 0\tkeeps 10 events"), "\(listed.output)")
            #expect(listed.output.contains("notes\texternal (public)"), "\(listed.output)")
            let flipped = try await picloud(["topics", "external", "notes", "alerts", "on"], port: port)
            #expect(flipped.output.contains("alerts is external (public)"), "\(flipped.output)")
            for title in ["one", "two"] {
                _ = try await server.call("notes", .POST, "/notes", json: ["title": .string(title)])
            }
            let events = try await picloud(["topics", "events", "notes", "notes", "--after", "1"], port: port)
            #expect(events.status == 0 && events.output.hasPrefix("2\t") && events.output.contains("\"title\":\"two\""), "\(events.output)")
            let followed = try await picloud(["topics", "subscribe", "notes", "notes", "--last-event-id", "0", "--count", "2"], port: port)
            let lines = followed.output.split(separator: "\n")
            #expect(followed.status == 0 && lines.count == 2, "\(followed.output)")
            #expect(lines.first?.hasPrefix("1 message {\"id\":\"1\",\"topic\":\"notes\"") == true, "\(followed.output)")
            let refused = try await picloud(["topics", "delete", "notes", "notes"], port: port)
            #expect(refused.status != 0 && refused.output.contains("declared in the manifest"), "\(refused.output)")
            #expect(try await picloud(["topics", "delete", "notes", "alerts"], port: port).status == 0)
            let gone = try await picloud(["topics", "subscribe", "notes", "alerts"], port: port)
            #expect(gone.status != 0 && gone.output.contains("404"), "\(gone.output)")
        }
    }

    @Test("a refused deployment prints every problem as file:line: message")
    func refusedDeploy() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("handlers"), withIntermediateDirectories: true)
        try "name = \"broken\"\n[[endpoints]]\nmethod = \"GET\"\npath = \"/\"\nhandler = \"handlers/a.lua\"\n".write(to: folder.appendingPathComponent("picloud.toml"), atomically: true, encoding: .utf8)
        try "return function()\n  return 1 +\nend\n".write(to: folder.appendingPathComponent("handlers/a.lua"), atomically: true, encoding: .utf8)
        try await Harness.run { server in
            let result = try await picloud(["deploy", folder.path], port: server.port)
            #expect(result.status != 0)
            #expect(result.output.contains("deployment refused, nothing changed"))
            #expect(result.output.contains("handlers/a.lua:3:"), "\(result.output)")
        }
    }

    @Test("triggers, dead-letters and outbox commands")
    func triggerCommands() async throws {
        try await Harness.run(configure: { $0.dispatcherPollMilliseconds = 100 }) { server in
            let manifest = """
                name = "cli"
                [[endpoints]]
                method = "POST"
                path = "/go"
                handler = "handlers/go.lua"
                [[triggers]]
                kind = "topic"
                topic = "work"
                handler = "handlers/fail.lua"
                max_attempts = 1
                """
            try await server.deploy("cli", manifest: manifest, files: [
                "handlers/go.lua": "return function() pubsub.publish('work', { n = 1 }) return 'ok' end",
                "handlers/fail.lua": "return function() error('nope') end",
            ])
            let port = server.port
            #expect(try await picloud(["triggers", "cli"], port: port).output.contains("topic\ttopic=work\t→ handlers/fail.lua\t(manifest)"))
            try await server.call("cli", .POST, "/go")
            var listed = ""
            for _ in 0..<100 {
                listed = try await picloud(["dead-letters", "list", "cli"], port: port).output
                if listed.contains("handlers/fail.lua") { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(listed.contains("handlers/fail.lua") && listed.contains("1 attempts") && listed.contains("nope"), "\(listed)")
            let id = try #require(listed.split(separator: "\t").first.map(String.init))
            #expect(try await picloud(["dead-letters", "replay", "cli", id], port: port).output.contains("replayed \(id)"))
            #expect(try await picloud(["outbox", "cli"], port: port).status == 0)
            for _ in 0..<100 {
                if try await picloud(["dead-letters", "list", "cli"], port: port).output.contains("handlers/fail.lua") { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(try await picloud(["dead-letters", "purge", "cli", "--all"], port: port).output.contains("purged 1 dead letters"))
            #expect(try await picloud(["dead-letters", "list", "cli"], port: port).output.contains("no dead letters"))
            #expect(try await picloud(["outbox", "cli"], port: port).output.contains("is empty"))
        }
    }

    @Test("every command explains itself in --help")
    func help() async throws {
        for command in ["serve", "dev", "deploy", "apps", "keys", "logs", "invoke", "secrets", "triggers", "dead-letters", "outbox"] {
            let (status, text) = try await runProcess(ServeProcessTests.binary, [command, "--help"])
            #expect(status == 0 && text.contains("OVERVIEW:") && text.contains("USAGE:"), "\(command)")
        }
    }
}
