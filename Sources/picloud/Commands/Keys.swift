import ArgumentParser
import Foundation
import NIOHTTP1
import LuaBridge

/// `picloud keys list | create | revoke`
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage API keys.",
        discussion: """
            Scopes: instance:admin (everything), app:admin (everything in one app), app:deploy \
            (deploy, read), app:read (deployments, endpoints, logs), data:write and data:read \
            (the app's data through the admin API), invoke (call endpoints declared auth = "key").
            """,
        subcommands: [List.self, Create.self, Revoke.self],
        defaultSubcommand: List.self
    )

    static func path(_ app: String?) -> String { app.map { "/admin/apps/\(AdminClient.segment($0))/keys" } ?? "/admin/keys" }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys of an app (or instance keys without --app).")
        @Option(help: "The app.") var app: String?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let keys = try await connection.client().json(.GET, Keys.path(app))
            guard case .array(let items)? = keys["items"] else { return }
            for key in items {
                let scopes = (key["scopes"].flatMap { if case .array(let list) = $0 { list.compactMap(\.stringValue) } else { nil } } ?? []).joined(separator: ",")
                print("\(key["id"]?.stringValue ?? "")\t\(key["prefix"]?.stringValue ?? "")…\t\(key["name"]?.stringValue ?? "")\t\(scopes)")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; its secret is printed once.")
        @Option(help: "The app (omit for an instance key).") var app: String?
        @Option(help: "Comma-separated scopes, e.g. app:deploy,invoke.") var scopes: String
        @Option(help: "A name to recognise the key by.") var name = "key"
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let list = scopes.split(separator: ",").map { LuaValue.string(String($0).trimmingCharacters(in: .whitespaces)) }
            let key = try await connection.client().json(.POST, Keys.path(app), body: ["name": .string(name), "scopes": .array(list)])
            print(key["key"]?.stringValue ?? "")
            print("(id \(key["id"]?.stringValue ?? "?"); store the key now, it is not shown again)")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key at once.")
        @Argument var id: String
        @Option(help: "The app the key belongs to (omit for an instance key).") var app: String?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let client = try connection.client()
            let answer = try await client.send(.DELETE, Keys.path(app) + "/" + AdminClient.segment(id))
            guard answer.ok else { throw client.error(answer) }
            print("revoked \(id)")
        }
    }
}
