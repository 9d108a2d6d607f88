import NIOCore

/// The parts of an HTTP/1.1 message head the benchmark uses (a response's status, a request's
/// method and path, and how the body is framed).
struct HTTPHead {
    struct Malformed: Error, CustomStringConvertible {
        let reason: String
        var description: String { "malformed HTTP head: \(reason)" }
    }

    /// Response status code (0 for a request).
    var status = 0
    /// Request method and target (empty for a response).
    var method = ""
    var path = ""
    var contentLength: Int?
    var chunked = false

    /// Heads larger than this are refused rather than buffered without end.
    static let maximumSize = 16 * 1024

    /// Takes a complete head off the front of `buffer`; nil if it has not all arrived yet.
    static func take(from buffer: inout ByteBuffer, isResponse: Bool) throws -> HTTPHead? {
        let end = buffer.withUnsafeReadableBytes { bytes -> Int? in
            var start = 0
            while let newline = SSEScanner.index(of: UInt8(ascii: "\n"), in: bytes, from: start) {
                if newline + 2 < bytes.count, bytes[newline + 1] == UInt8(ascii: "\r"), bytes[newline + 2] == UInt8(ascii: "\n") {
                    return newline + 3
                }
                if newline + 1 < bytes.count, bytes[newline + 1] == UInt8(ascii: "\n") { return newline + 2 }
                start = newline + 1
            }
            return nil
        }
        guard let end else {
            if buffer.readableBytes > maximumSize { throw Malformed(reason: "longer than \(maximumSize) bytes") }
            return nil
        }
        let text = buffer.readString(length: end)!
        // "\r\n" is one Character in Swift, so split on both forms of line end.
        var lines = text.split { $0 == "\r\n" || $0 == "\n" }
        guard !lines.isEmpty else { throw Malformed(reason: "empty") }
        let start = lines.removeFirst().split(separator: " ", maxSplits: 2)
        var head = HTTPHead()
        if isResponse {
            guard start.count >= 2, start[0].hasPrefix("HTTP/1."), let status = Int(start[1]) else { throw Malformed(reason: "status line") }
            head.status = status
        } else {
            guard start.count == 3, start[2].hasPrefix("HTTP/1.") else { throw Malformed(reason: "request line") }
            head.method = String(start[0])
            head.path = String(start[1])
        }
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces
            if name == "content-length" {
                guard let length = Int(value), length >= 0 else { throw Malformed(reason: "content-length") }
                head.contentLength = length
            } else if name == "transfer-encoding" {
                head.chunked = value.lowercased().hasSuffix("chunked")
            }
        }
        return head
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var value = self
        while let first = value.first, first == " " || first == "\t" { value = value.dropFirst() }
        while let last = value.last, last == " " || last == "\t" { value = value.dropLast() }
        return value
    }
}

extension ByteBuffer {
    /// `bytes` as one chunk of a chunked body.
    static func chunk(_ bytes: ByteBuffer) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(bytes.readableBytes + 12)
        out.writeString(String(bytes.readableBytes, radix: 16))
        out.writeStaticString("\r\n")
        out.writeImmutableBuffer(bytes)
        out.writeStaticString("\r\n")
        return out
    }
}
