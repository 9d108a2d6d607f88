import ArgumentParser
import NIOHTTP1
import Foundation
import LuaBridge

/// `picloud secrets list | set | delete`
struct Secrets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage an app's secrets (stored encrypted; scripts read them with secrets.get(name)).",
        subcommands: [List.self, Set.self, Delete.self],
        defaultSubcommand: List.self
    )

    static func path(_ app: String) -> String { "/admin/apps/\(AdminClient.segment(app))/secrets" }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List secret names (values are never shown).")
        @Argument var app: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            guard case .array(let items)? = try await connection.client().json(.GET, Secrets.path(app))["items"] else { return }
            for item in items { print("\(item["name"]?.stringValue ?? "")\tupdated \(item["updated_at"]?.stringValue ?? "")") }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a secret; without VALUE it is read from standard input.")
        @Argument var app: String
        @Argument var name: String
        @Argument var value: String?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let secret = value ?? (readLine(strippingNewline: true) ?? "")
            _ = try await connection.client().json(.PUT, Secrets.path(app) + "/" + AdminClient.segment(name), body: ["value": .string(secret)])
            print("set \(name) on '\(app)'")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a secret.")
        @Argument var app: String
        @Argument var name: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let client = try connection.client()
            let answer = try await client.send(.DELETE, Secrets.path(app) + "/" + AdminClient.segment(name))
            guard answer.ok else { throw client.error(answer) }
            print("deleted \(name)")
        }
    }
}
