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
    percentDecoded(segment, plusIsSpace: false)
}

/// Percent-decodes `text`, with '+' as a space when `plusIsSpace` (form encoding, for queries):
/// nil when a '%' is not followed by two hex digits or the bytes are not UTF-8, as Foundation's
/// `removingPercentEncoding`, which cost 2 µs a call (and `replacingOccurrences` as much again).
func percentDecoded(_ text: Substring, plusIsSpace: Bool) -> String? {
    let utf8 = text.utf8
    // Most parts have nothing to decode.
    guard utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) else { return String(text) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(utf8.count)
    var index = utf8.startIndex
    while index != utf8.endIndex {
        let byte = utf8[index]
        utf8.formIndex(after: &index)
        switch byte {
        case UInt8(ascii: "%"):
            guard index != utf8.endIndex, let high = Identifiers.hexDigit(utf8[index]) else { return nil }
            utf8.formIndex(after: &index)
            guard index != utf8.endIndex, let low = Identifiers.hexDigit(utf8[index]) else { return nil }
            utf8.formIndex(after: &index)
            bytes.append(high << 4 | low)
        case UInt8(ascii: "+") where plusIsSpace:
            bytes.append(UInt8(ascii: " "))
        default:
            bytes.append(byte)
        }
    }
    // Decoding replaces what is not UTF-8, so the text is valid exactly when it has the same bytes.
    let decoded = String(decoding: bytes, as: UTF8.self)
    return decoded.utf8.elementsEqual(bytes) ? decoded : nil
}
