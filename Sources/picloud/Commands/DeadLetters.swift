import ArgumentParser
import Foundation
import LuaBridge
import NIOHTTP1

/// `picloud dead-letters list | replay | purge`
struct DeadLetters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "See, replay and purge events whose trigger handler failed every attempt.",
        discussion: """
            A trigger delivery that fails max_attempts times becomes a dead letter (and fires the \
            app's dead_letter triggers). Fix the handler, deploy, then replay: the event goes back to \
            the trigger with its attempts reset.
            """,
        subcommands: [List.self, Replay.self, Purge.self],
        defaultSubcommand: List.self
    )

    static func path(_ app: String) -> String { "/admin/apps/\(AdminClient.segment(app))/dead-letters" }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an app's dead letters, newest first.")
        @Argument var app: String
        @Option(help: "Only those of this handler.") var handler: String?
        @Option(help: "How many.") var limit = 50
        @Flag(help: "Print them as JSON, events included.") var json = false
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            var query = "?limit=\(limit)"
            if let handler { query += "&handler=\(AdminClient.segment(handler))" }
            let answer = try await connection.client().json(.GET, DeadLetters.path(app) + query)
            guard case .array(let items)? = answer["items"] else { return }
            if json { return printJSON(.array(items)) }
            if items.isEmpty { return print("no dead letters") }
            for item in items {
                print("\(item["id"]?.stringValue ?? "")\t\(item["failed_at"]?.stringValue ?? "")\t\(item["handler"]?.stringValue ?? "")\t\(item["attempts"]?.integerValue ?? 0) attempts\t\(item["error"]?.stringValue ?? "")")
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a dead letter's event back to its trigger.")
        @Argument var app: String
        @Argument var id: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let answer = try await connection.client().json(.POST, DeadLetters.path(app) + "/" + AdminClient.segment(id) + "/replay")
            print("replayed \(id) to \(answer["handler"]?.stringValue ?? "its handler")")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete one dead letter, or all of an app's (optionally of one handler).")
        @Argument var app: String
        @Argument(help: "The dead letter; omit with --all.") var id: String?
        @Flag(help: "Delete every dead letter of the app (or of --handler).") var all = false
        @Option(help: "With --all: only those of this handler.") var handler: String?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let client = try connection.client()
            if let id {
                let answer = try await client.send(.DELETE, DeadLetters.path(app) + "/" + AdminClient.segment(id))
                guard answer.ok else { throw client.error(answer) }
                return print("purged \(id)")
            }
            guard all else { throw ValidationError("give a dead letter id, or --all") }
            let query = handler.map { "?handler=\(AdminClient.segment($0))" } ?? ""
            let answer = try await client.json(.DELETE, DeadLetters.path(app) + query)
            print("purged \(answer["purged"]?.integerValue ?? 0) dead letters")
        }
    }
}

/// `picloud outbox APP`
struct Outbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show an app's trigger events waiting for delivery (due, running, or waiting to retry)."
    )

    @Argument var app: String
    @Option(help: "How many.") var limit = 100
    @Flag(help: "Print them as JSON, events included.") var json = false
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let answer = try await connection.client().json(.GET, "/admin/apps/\(AdminClient.segment(app))/outbox?limit=\(limit)")
        guard case .array(let items)? = answer["items"] else { return }
        if json { return printJSON(.array(items)) }
        if items.isEmpty { return print("the outbox of '\(app)' is empty") }
        for item in items {
            let error = item["last_error"]?.stringValue.map { "\tlast error: \($0)" } ?? ""
            print("\(item["id"]?.integerValue ?? 0)\t\(item["status"]?.stringValue ?? "")\t\(item["handler"]?.stringValue ?? "")\tattempt \(item["attempts"]?.integerValue ?? 0)/\(item["max_attempts"]?.integerValue ?? 0)\tdue \(item["due_at"]?.stringValue ?? "")\(error)")
        }
    }
}

/// `picloud triggers APP`
struct Triggers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List an app's triggers (from its manifest and added through the API).")

    @Argument var app: String
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let answer = try await connection.client().json(.GET, "/admin/apps/\(AdminClient.segment(app))/triggers")
        guard case .array(let items)? = answer["items"], !items.isEmpty else { return print("'\(app)' has no triggers") }
        for item in items {
            let what = ["key", "prefix", "collection", "topic", "schedule", "on_trigger", "on_handler", "on_kind"].compactMap { name in item[name]?.stringValue.map { "\(name)=\($0)" } }.joined(separator: " ")
            let next = item["next_run_at"]?.stringValue.map { " next \($0)" } ?? ""
            print("\(item["id"]?.stringValue ?? "")\t\(item["kind"]?.stringValue ?? "")\t\(what)\t→ \(item["handler"]?.stringValue ?? "")\t(\(item["source"]?.stringValue ?? ""))\(next)")
        }
    }
}
