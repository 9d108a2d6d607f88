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
        // Read as bytes: Swift's String splitting was a quarter of the paced client's CPU.
        let head = try buffer.withUnsafeReadableBytes { bytes in try parse(UnsafeRawBufferPointer(rebasing: bytes[..<end]), isResponse: isResponse) }
        buffer.moveReaderIndex(forwardBy: end)
        return head
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer, isResponse: Bool) throws -> HTTPHead {
        var lines: [Range<Int>] = []
        var start = 0
        while start < bytes.count {
            var end = SSEScanner.index(of: UInt8(ascii: "\n"), in: bytes, from: start) ?? bytes.count
            let next = end + 1
            if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            if end > start { lines.append(start..<end) }
            start = next
        }
        guard let first = lines.first else { throw Malformed(reason: "empty") }
        let words = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[first]), as: UTF8.self).split(separator: " ", maxSplits: 2)
        var head = HTTPHead()
        if isResponse {
            guard words.count >= 2, words[0].hasPrefix("HTTP/1."), let status = Int(words[1]) else { throw Malformed(reason: "status line") }
            head.status = status
        } else {
            guard words.count == 3, words[2].hasPrefix("HTTP/1.") else { throw Malformed(reason: "request line") }
            head.method = String(words[0])
            head.path = String(words[1])
        }
        for line in lines.dropFirst() {
            guard let colon = bytes[line].firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = bytes[line.lowerBound..<colon]
            if matches(name, "content-length") {
                let value = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(colon + 1)..<line.upperBound]), as: UTF8.self)
                guard let length = Int(Substring(value).trimmingSpaces), length >= 0 else { throw Malformed(reason: "content-length") }
                head.contentLength = length
            } else if matches(name, "transfer-encoding") {
                let value = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(colon + 1)..<line.upperBound]), as: UTF8.self)
                head.chunked = Substring(value).trimmingSpaces.lowercased().hasSuffix("chunked")
            }
        }
        return head
    }

    /// Whether `name` is `lowercase` in any case (ASCII).
    private static func matches(_ name: Slice<UnsafeRawBufferPointer>, _ lowercase: StaticString) -> Bool {
        guard name.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        for (offset, byte) in name.enumerated() {
            let lower = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            if lower != expected[offset] { return false }
        }
        return true
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
