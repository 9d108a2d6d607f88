import ArgumentParser
import NIOHTTP1
import Foundation
import LuaBridge
import Runtime

/// `picloud deploy DIR`
struct Deploy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deploy an app folder (picloud.toml and its .lua files).",
        discussion: """
            Reads DIR/picloud.toml and every .lua file below DIR, and sends them to PiCloud. The app \
            named in the manifest is created first if it does not exist. If anything is wrong (the \
            manifest, a Lua syntax error, a handler that fails when loaded), nothing changes: the \
            running deployment keeps serving and every problem is printed as file:line: message.
            """
    )

    @Argument(help: "The app folder.")
    var directory: String

    @Option(help: "Deploy to this app instead of the manifest's name.")
    var app: String?

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let client = try connection.client()
        let folder = try AppFolder.read(directory)
        let name = try app ?? folder.appName()
        let version = try await Self.deploy(folder, as: name, with: client, createIfMissing: true)
        print("deployed \(directory) as '\(name)', version \(version.version)")
        for endpoint in version.endpoints { print("  \(endpoint)") }
    }

    struct Result {
        let version: Int64
        let endpoints: [String]
    }

    static func deploy(_ folder: AppFolder, as name: String, with client: AdminClient, createIfMissing: Bool) async throws -> Result {
        let path = "/admin/apps/\(AdminClient.segment(name))/deployment"
        var answer = try await client.send(.PUT, path, body: folder.deploymentBody)
        if answer.status == 404, createIfMissing, answer.json["error"]?["message"]?.stringValue?.hasPrefix("no app named") == true {
            _ = try await client.json(.POST, "/admin/apps", body: ["name": .string(name)])
            answer = try await client.send(.PUT, path, body: folder.deploymentBody)
        }
        if answer.status == 400, case .array(let details)? = answer.json["error"]?["details"] {
            let lines = details.map { detail -> String in
                let file = detail["file"]?.stringValue ?? ""
                let message = detail["message"]?.stringValue ?? ""
                let prefix = message.hasPrefix(file) || file.isEmpty ? "" : file + (detail["line"]?.integerValue.map { ":\($0)" } ?? "") + ": "
                return prefix + message
            }
            throw ClientError(message: "deployment refused, nothing changed:\n" + lines.map { "  " + $0 }.joined(separator: "\n"))
        }
        guard answer.ok else { throw client.error(answer) }
        let json = answer.json
        let endpoints: [String]
        if case .array(let items)? = json["endpoints"] {
            endpoints = items.map { "\($0["method"]?.stringValue ?? "") \($0["url"]?.stringValue ?? "") (\($0["auth"]?.stringValue ?? ""))" }
        } else {
            endpoints = []
        }
        return Result(version: json["version"]?.integerValue ?? 0, endpoints: endpoints)
    }
}
