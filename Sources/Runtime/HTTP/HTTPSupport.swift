import Foundation
import Hummingbird
import LuaBridge
import NIOCore
import Services

extension Response {
    /// A JSON response from a value (PiCloud's one JSON model, exact about integers and floats).
    static func json(_ value: LuaValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        let bytes = (try? LuaJSON.encode(value)) ?? Array(#"{"error":{"code":"internal","message":"response not encodable"}}"#.utf8)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func noContent() -> Response { Response(status: .noContent) }
}

extension Request {
    /// The body, at most `limit` bytes (413 beyond).
    func bodyBytes(limit: Int) async throws -> [UInt8] {
        do {
            var buffer = try await body.collect(upTo: limit)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            throw ServiceError(.payloadTooLarge, "the request body is larger than \(limit) bytes")
        }
    }

    /// The body parsed as JSON (400 when it is not).
    func jsonBody(limit: Int) async throws -> LuaValue {
        let bytes = try await bodyBytes(limit: limit)
        guard !bytes.isEmpty else { throw ServiceError(.invalidInput, "a JSON body is expected") }
        do {
            return try LuaJSON.decode(bytes)
        } catch {
            throw ServiceError(.invalidInput, "malformed JSON: \(error.message)")
        }
    }

    func query(_ name: String) -> String? {
        uri.queryParameters[name[...]].map(String.init)
    }

    func queryInteger(_ name: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = query(name) else { return fallback }
        guard let number = Int(text), range.contains(number) else {
            throw ServiceError(.invalidInput, "query parameter '\(name)' must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }
}

extension LuaValue {
    /// A required string field of a JSON body.
    func requiredString(_ field: String) throws -> String {
        guard case .string(let text)? = self[field] else { throw ServiceError(.invalidInput, "field '\(field)' (a string) is required") }
        return text
    }
}

extension Milliseconds {
    /// As an RFC 3339 timestamp in UTC, for JSON answers.
    var iso8601: LuaValue {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return .string(formatter.string(from: Date(timeIntervalSince1970: Double(self) / 1000)))
    }
}

/// Percent-decodes one path segment (nil when malformed).
func decodePathSegment(_ segment: Substring) -> String? {
    String(segment).removingPercentEncoding
}
