import ArgumentParser
import Foundation
import NIOHTTP1
import LuaBridge

/// `picloud apps list | create | delete`
struct Apps: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, create and delete apps.",
        subcommands: [List.self, Create.self, Delete.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the apps your key can see.")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let apps = try await connection.client().json(.GET, "/admin/apps")
            guard case .array(let items)? = apps["items"], !items.isEmpty else { return print("no apps yet: picloud apps create NAME, or picloud deploy DIR") }
            for app in items {
                let version = app["current_version"]?.integerValue.map { "version \($0)" } ?? "nothing deployed"
                print("\(app["name"]?.stringValue ?? "?")\t\(version)")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an app (lowercase letters, digits and '-').")
        @Argument var name: String
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            _ = try await connection.client().json(.POST, "/admin/apps", body: ["name": .string(name)])
            print("created app '\(name)'")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an app with all its deployments, keys and data.")
        @Argument var name: String
        @Flag(help: "Confirm: this cannot be undone.") var yes = false
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            guard yes else { throw ValidationError("deleting '\(name)' removes all its data; add --yes to confirm") }
            _ = try await connection.client().send(.DELETE, "/admin/apps/\(AdminClient.segment(name))")
            print("deleted app '\(name)'")
        }
    }
}
