import ArgumentParser
import AsyncHTTPClient
import Foundation
import LuaBridge
import NIOCore
import NIOHTTP1

/// Where the admin API is and which key to use; shared by the client commands.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "PiCloud's address (PICLOUD_URL, default http://127.0.0.1:8080).")
    var url: String?

    @Option(help: "An API key (PICLOUD_TOKEN; default: the admin-token file in ./picloud-data or PICLOUD_DATA_DIR).")
    var token: String?

    func client() throws -> AdminClient {
        let environment = ProcessInfo.processInfo.environment
        let base = url ?? environment["PICLOUD_URL"] ?? "http://127.0.0.1:8080"
        var key = token ?? environment["PICLOUD_TOKEN"]
        if key == nil {
            let directory = environment["PICLOUD_DATA_DIR"] ?? "./picloud-data"
            key = (try? String(contentsOfFile: directory + "/admin-token", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return AdminClient(base: base.hasSuffix("/") ? String(base.dropLast()) : base, token: key)
    }
}

/// A failed call, with the server's error message.
struct ClientError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Talks to the admin API with JSON.
struct AdminClient {
    let base: String
    let token: String?

    struct Answer {
        let status: Int
        let body: [UInt8]
        var json: LuaValue { (try? LuaJSON.decode(body)) ?? .nil }
        var text: String { String(decoding: body, as: UTF8.self) }
        var ok: Bool { (200..<300).contains(status) }
    }

    func send(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, contentType: String = "application/json", headers extra: [(String, String)] = [], useToken: Bool = true) async throws -> Answer {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if useToken, let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        } catch {
            throw ClientError(message: "cannot reach PiCloud at \(base): \(error)")
        }
        var buffer = try await response.body.collect(upTo: 64 << 20)
        return Answer(status: Int(response.status.code), body: buffer.readBytes(length: buffer.readableBytes) ?? [])
    }

    /// Sends and returns the JSON answer, or throws the server's error message.
    func json(_ method: HTTPMethod, _ path: String, body: LuaValue? = nil) async throws -> LuaValue {
        let answer = try await send(method, path, body: try body.map { try LuaJSON.encode($0) })
        guard answer.ok else { throw error(answer) }
        return answer.json
    }

    /// One Server-Sent Events frame.
    struct EventFrame {
        var id: String?
        var event: String?
        var data: String?
    }

    /// Opens a Server-Sent Events stream with `bearer` as the credentials and calls `handle` for
    /// each event until it ends.
    func events(_ path: String, bearer: String?, headers: [(String, String)] = [], handle: (EventFrame) throws -> Void) async throws {
        var request = HTTPClientRequest(url: base + path)
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .hours(24 * 365))
        guard response.status == .ok else {
            var body = try await response.body.collect(upTo: 1 << 20)
            throw error(Answer(status: Int(response.status.code), body: body.readBytes(length: body.readableBytes) ?? []))
        }
        var pending = ""
        for try await buffer in response.body {
            pending += String(buffer: buffer)
            while let range = pending.range(of: "\n\n") {
                var frame = EventFrame()
                for field in pending[..<range.lowerBound].split(separator: "\n") {
                    if field.hasPrefix("data: ") { frame.data = (frame.data.map { $0 + "\n" } ?? "") + field.dropFirst(6) }
                    if field.hasPrefix("id: ") { frame.id = String(field.dropFirst(4)) }
                    if field.hasPrefix("event: ") { frame.event = String(field.dropFirst(7)) }
                }
                pending = String(pending[range.upperBound...])
                if frame.data != nil || frame.event != nil { try handle(frame) }
            }
        }
    }

    func error(_ answer: Answer) -> ClientError {
        if let message = answer.json["error"]?["message"]?.stringValue {
            let hint = answer.status == 401 ? " (pass --token or set PICLOUD_TOKEN)" : ""
            return ClientError(message: "\(answer.status): \(message)\(hint)")
        }
        return ClientError(message: "\(answer.status): \(answer.text)")
    }

    /// Percent-encodes one path segment.
    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? text
    }
}

/// Prints a value as indented JSON.
func printJSON(_ value: LuaValue) {
    print((try? LuaJSON.encodeText(value, pretty: true)) ?? "\(value)")
}
