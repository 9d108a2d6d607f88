import ArgumentParser
import NIOHTTP1
import Foundation
import LuaBridge

/// `picloud invoke APP METHOD PATH`
struct Invoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call an app's endpoint and print the answer.",
        discussion: "Example: picloud invoke notes POST /notes --data '{\"text\": \"hello\"}'"
    )

    @Argument var app: String
    @Argument(help: "GET, POST, PUT, PATCH or DELETE.") var method: String
    @Argument(help: "The endpoint's path, e.g. /notes/42.") var path: String
    @Option(name: .shortAndLong, help: "A JSON body.") var data: String?
    @Option(name: .customLong("header"), help: "An extra header, Name: value (repeatable).") var headers: [String] = []
    @Flag(help: "Send the key (for endpoints declared auth = \"key\").") var withKey = false
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let client = try connection.client()
        let extra = try headers.map { header -> (String, String) in
            guard let colon = header.firstIndex(of: ":") else { throw ValidationError("a header is Name: value") }
            return (String(header[..<colon]), String(header[header.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        }
        let target = "/apps/\(AdminClient.segment(app))/api" + (path.hasPrefix("/") ? path : "/" + path)
        let answer = try await client.send(
            .init(rawValue: method.uppercased()), target, body: data.map { Array($0.utf8) }, headers: extra, useToken: withKey
        )
        print("HTTP \(answer.status)")
        if let json = try? LuaJSON.decode(answer.body) { printJSON(json) } else if !answer.body.isEmpty { print(answer.text) }
        if answer.status >= 400 { throw ExitCode(1) }
    }
}
