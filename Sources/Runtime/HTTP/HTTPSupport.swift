import Foundation
import Hummingbird
import LuaBridge
import NIOCore
import Services

extension Response {
    /// A JSON response from a value (PiCloud's one JSON model, exact about integers and floats).
    static func json(_ value: LuaValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        EndpointAnswer.json(value, status: status, headers: headers).response
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

    /// An optional boolean field (nil when absent or null).
    func optionalBool(_ field: String) throws -> Bool? {
        switch self[field] {
        case nil, .nil?, .null?: return nil
        case .boolean(let value)?: return value
        default: throw ServiceError(.invalidInput, "field '\(field)' must be true or false")
        }
    }

    /// An optional integer field (nil when absent or null).
    func optionalInteger(_ field: String) throws -> Int? {
        switch self[field] {
        case nil, .nil?, .null?: return nil
        case .integer(let value)?: return Int(value)
        default: throw ServiceError(.invalidInput, "field '\(field)' must be an integer")
        }
    }

    /// Throws for a field of a JSON object body that is not one of `fields` (a typo should not pass silently).
    func allowOnly(_ fields: Set<String>) throws {
        guard case .object(let object) = self else { throw ServiceError(.invalidInput, "a JSON object is expected") }
        if let unknown = object.keys.sorted().first(where: { !fields.contains($0) }) {
            throw ServiceError(.invalidInput, "unknown field '\(unknown)' (expected \(fields.sorted().joined(separator: ", ")))")
        }
    }
}

/// Percent-encodes a path segment (everything but unreserved characters and ':' '@').
func percentEncodePathSegment(_ segment: String) -> String {
    var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
    allowed.insert(charactersIn: "-._~:@")
    return segment.addingPercentEncoding(withAllowedCharacters: allowed) ?? segment
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
    // Most segments have nothing to decode: skip Foundation's decoder, a measurable cost per request.
    segment.utf8.contains(UInt8(ascii: "%")) ? String(segment).removingPercentEncoding : String(segment)
}
