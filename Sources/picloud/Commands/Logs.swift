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
        var request = HTTPClientRequest(url: client.base + path)
        if let token = client.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .hours(24 * 365))
        guard response.status == .ok else {
            var body = try await response.body.collect(upTo: 1 << 20)
            let answer = AdminClient.Answer(status: Int(response.status.code), body: body.readBytes(length: body.readableBytes) ?? [])
            throw client.error(answer)
        }
        var pending = ""
        for try await buffer in response.body {
            pending += String(buffer: buffer)
            while let range = pending.range(of: "\n\n") {
                let event = pending[..<range.lowerBound]
                pending = String(pending[range.upperBound...])
                for field in event.split(separator: "\n") where field.hasPrefix("data: ") {
                    if let entry = try? LuaJSON.decode(Array(field.dropFirst(6).utf8)) { print(line(entry)) }
                }
            }
        }
    }
}
