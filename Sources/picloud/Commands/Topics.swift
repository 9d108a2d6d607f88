import ArgumentParser
import Foundation
import LuaBridge
import NIOHTTP1

/// `picloud topics list | create | delete | external | events | subscribe`
struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Registered topics: what browsers may subscribe to, and what they missed.",
        discussion: """
            A registered topic keeps its recent events so that a subscriber that reconnects gets what \
            it missed. Browsers may subscribe only to external topics (GET /apps/APP/realtime/TOPIC); \
            whether a topic is external changes only with `picloud topics external`.
            """,
        subcommands: [List.self, Create.self, Delete.self, External.self, Events.self, Subscribe.self],
        defaultSubcommand: List.self
    )

    static func path(_ app: String, _ topic: String? = nil) -> String {
        "/admin/apps/\(AdminClient.segment(app))/topics" + (topic.map { "/" + AdminClient.segment($0) } ?? "")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an app's topics.")
        @Argument var app: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let answer = try await connection.client().json(.GET, Topics.path(app))
            guard case .array(let items)? = answer["items"], !items.isEmpty else { return print("'\(app)' has no registered topics") }
            for item in items {
                let external = item["external_subscribable"] == .boolean(true) ? "external (\(item["auth_mode"]?.stringValue ?? ""))" : "internal"
                let history = "keeps \(item["history_events"]?.integerValue ?? 0) events / \(item["history_seconds"]?.integerValue ?? 0) s"
                print("\(item["name"]?.stringValue ?? "")\t\(external)\tlast id \(item["last_event_id"]?.stringValue ?? "0")\t\(history)\t(\(item["source"]?.stringValue ?? ""))")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a topic (internal unless --external).")
        @Argument var app: String
        @Argument var name: String
        @Flag(help: "Let browsers subscribe.") var external = false
        @Option(help: "Who may subscribe when external: public or token.") var auth = "token"
        @Option(name: .customLong("history-events"), help: "Events kept for subscribers that resume (default: the server's).") var historyEvents: Int?
        @Option(name: .customLong("history-seconds"), help: "How long they are kept (default: the server's).") var historySeconds: Int?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            var body: [String: LuaValue] = ["name": .string(name), "external_subscribable": .boolean(external), "auth_mode": .string(auth)]
            if let historyEvents { body["history_events"] = .integer(Int64(historyEvents)) }
            if let historySeconds { body["history_seconds"] = .integer(Int64(historySeconds)) }
            let answer = try await connection.client().json(.POST, Topics.path(app), body: .object(body))
            print("registered \(name); subscribe at \(answer["subscribe_path"]?.stringValue ?? "")")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unregister a topic added through the API (its history goes, its streams end).")
        @Argument var app: String
        @Argument var name: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let client = try connection.client()
            let answer = try await client.send(.DELETE, Topics.path(app, name))
            guard answer.ok else { throw client.error(answer) }
            print("deleted \(name)")
        }
    }

    struct External: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let browsers subscribe to a topic (on), or stop them (off: open streams end).")
        @Argument var app: String
        @Argument var name: String
        @Argument(help: "on or off") var state: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            guard ["on", "off"].contains(state) else { throw ValidationError("say on or off") }
            let answer = try await connection.client().json(.PATCH, Topics.path(app, name) + "/external", body: ["external_subscribable": .boolean(state == "on")])
            print("\(name) is \(answer["external_subscribable"] == .boolean(true) ? "external (\(answer["auth_mode"]?.stringValue ?? ""))" : "internal")")
        }
    }

    struct Events: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the events a topic keeps.")
        @Argument var app: String
        @Argument var name: String
        @Option(help: "Only events after this id.") var after: Int?
        @Option(help: "How many.") var limit = 100
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let query = "?limit=\(limit)" + (after.map { "&after=\($0)" } ?? "")
            let answer = try await connection.client().json(.GET, Topics.path(app, name) + "/events" + query)
            guard case .array(let items)? = answer["items"] else { return }
            for item in items {
                let message = (try? LuaJSON.encodeText(item["message"] ?? .null)) ?? ""
                print("\(item["id"]?.stringValue ?? "")\t\(item["published_at"]?.stringValue ?? "")\t\(message)")
            }
        }
    }

    struct Subscribe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow an external topic as a browser would, printing each event.",
            discussion: "Uses GET /apps/APP/realtime/TOPIC; a token topic needs --subscriber-token (from pubsub.subscriber_token)."
        )
        @Argument var app: String
        @Argument var name: String
        @Option(name: .customLong("subscriber-token"), help: "A subscriber token for a token topic.") var subscriberToken: String?
        @Option(name: .customLong("last-event-id"), help: "Resume after this event id (0: everything the topic keeps).") var lastEventID: String?
        @Option(help: "Stop after this many events.") var count: Int?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let client = try connection.client()
            let path = "/apps/\(AdminClient.segment(app))/realtime/\(AdminClient.segment(name))"
            let headers = lastEventID.map { [("Last-Event-ID", $0)] } ?? []
            var seen = 0
            do {
                try await client.events(path, bearer: subscriberToken, headers: headers) { frame in
                    FileHandle.standardOutput.write(Data("\(frame.id ?? "-") \(frame.event ?? "message") \(frame.data ?? "")\n".utf8))
                    seen += 1
                    if let count, seen >= count { throw Enough() }
                }
            } catch is Enough {}
        }

        struct Enough: Error {}
        func validate() throws {
            if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        }
    }
}
