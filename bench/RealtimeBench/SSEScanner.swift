import Glibc

/// What the benchmark needs to know about one Server-Sent Events frame.
enum SSEFrame {
    /// A message; `sentAt` is the `"t":` number in its data (µs since the epoch), if any.
    case event(sentAt: Int64?)
    /// An `event: gap` frame: the server dropped events for this subscriber.
    case gap
    /// A `:` comment line (the server's heartbeat).
    case comment
}

/// Splits an event-stream body into frames, keeping only the fields the benchmark reads.
///
/// Lines end with `\n` (a `\r` before it is dropped); a line split across reads is carried over
/// in a small reused buffer, every other line is read in place, so no String or Array is made
/// per event.
struct SSEScanner {
    private var carry: [UInt8] = []
    private var sentAt: Int64?
    private var hasData = false
    private var isGap = false

    init() {
        carry.reserveCapacity(256)
    }

    /// Scans `bytes` (any piece of the body) and reports each completed frame to `frame`.
    mutating func scan(_ bytes: UnsafeRawBufferPointer, _ frame: (SSEFrame) -> Void) {
        var start = 0
        while start < bytes.count {
            guard let newline = Self.index(of: UInt8(ascii: "\n"), in: bytes, from: start) else {
                carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start...]))
                return
            }
            let piece = UnsafeRawBufferPointer(rebasing: bytes[start..<newline])
            if carry.isEmpty {
                line(piece, frame)
            } else {
                carry.append(contentsOf: piece)
                var whole: [UInt8] = []
                swap(&whole, &carry)
                whole.withUnsafeBytes { line($0, frame) }
                whole.removeAll(keepingCapacity: true)
                carry = whole
            }
            start = newline + 1
        }
    }

    private mutating func line(_ raw: UnsafeRawBufferPointer, _ frame: (SSEFrame) -> Void) {
        var bytes = raw
        if let last = bytes.last, last == UInt8(ascii: "\r") { bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast()) }
        guard let first = bytes.first else {
            if isGap {
                frame(.gap)
            } else if hasData {
                frame(.event(sentAt: sentAt))
            }
            sentAt = nil
            hasData = false
            isGap = false
            return
        }
        if first == UInt8(ascii: ":") {
            frame(.comment)
        } else if Self.hasPrefix(bytes, "data:") {
            hasData = true
            if sentAt == nil { sentAt = Self.timeField(bytes) }
        } else if Self.hasPrefix(bytes, "event:") {
            var value = UnsafeRawBufferPointer(rebasing: bytes.dropFirst(6))
            if value.first == UInt8(ascii: " ") { value = UnsafeRawBufferPointer(rebasing: value.dropFirst()) }
            isGap = value.elementsEqual("gap".utf8)
        }
    }

    /// The integer after the first `"t":` in a data line.
    private static func timeField(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        let key: (UInt8, UInt8, UInt8, UInt8) = (UInt8(ascii: "\""), UInt8(ascii: "t"), UInt8(ascii: "\""), UInt8(ascii: ":"))
        var i = 0
        while i + 4 <= bytes.count {
            if bytes[i] == key.0, bytes[i + 1] == key.1, bytes[i + 2] == key.2, bytes[i + 3] == key.3 {
                i += 4
                while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
                var value: Int64 = 0
                var digits = 0
                while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9"), digits < 18 {
                    value = value * 10 + Int64(bytes[i] - UInt8(ascii: "0"))
                    digits += 1
                    i += 1
                }
                return digits > 0 ? value : nil
            }
            i += 1
        }
        return nil
    }

    private static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard bytes.count >= count else { return false }
        return memcmp(bytes.baseAddress!, prefix.utf8Start, count) == 0
    }

    static func index(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let found = memchr(bytes.baseAddress! + start, Int32(byte), bytes.count - start) else { return nil }
        return bytes.baseAddress!.distance(to: UnsafeRawPointer(found))
    }
}
