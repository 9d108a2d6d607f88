import ArgumentParser
import NIOHTTP1
import AsyncHTTPClient
import Foundation
import LuaBridge
import NIOCore

/// `picloud logs APP`
struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show an app's log: print and log.* lines, failed invocations, deployments.")

    @Argument var app: String
    @Flag(name: .shortAndLong, help: "Keep printing new lines as they come.") var follow = false
    @Option(help: "Lowest level shown: debug, info, warn or error.") var level = "debug"
    @Option(help: "How many recent lines.") var limit = 100
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let client = try connection.client()
        let path = "/admin/apps/\(AdminClient.segment(app))/logs?level=\(level)&limit=\(limit)"
        if !follow {
            guard case .array(let items)? = try await client.json(.GET, path)["items"] else { return }
            items.forEach { print(Self.line($0)) }
            return
        }
        try await Self.stream(client: client, path: path + "&follow=1")
    }

    static func line(_ entry: LuaValue) -> String {
        let request = entry["request_id"]?.stringValue.map { " [\($0)]" } ?? ""
        return "\(entry["at"]?.stringValue ?? "") \(entry["level"]?.stringValue?.uppercased() ?? "")\(request) \(entry["message"]?.stringValue ?? "")"
    }

    /// Reads the Server-Sent Events stream and prints each line until interrupted.
    static func stream(client: AdminClient, path: String) async throws {
        try await client.events(path, bearer: client.token) { frame in
            if let data = frame.data, let entry = try? LuaJSON.decode(Array(data.utf8)) { print(line(entry)) }
        }
    }
}
