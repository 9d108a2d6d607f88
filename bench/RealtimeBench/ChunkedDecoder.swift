/// Decodes an HTTP/1.1 chunked body incrementally: chunks (and their size lines) may be split
/// anywhere across reads. A plain state machine over bytes; it copies nothing.
struct ChunkedDecoder {
    struct MalformedChunk: Error, CustomStringConvertible {
        let byte: UInt8
        var description: String { "malformed chunked encoding near byte \(byte)" }
    }

    private enum State {
        case size, sizeExtension, sizeLF, data, dataCR, dataLF, trailerLineStart, trailerLine, trailerLF, done
    }

    private var state = State.size
    private var size = 0
    private var sawDigit = false

    /// True once the last (empty) chunk and its trailer have been read.
    var isDone: Bool { state == .done }

    /// Reads `bytes` from `offset` up to the next piece of chunk data and returns it, moving
    /// `offset` past it; nil when the bytes ran out or the body ended (see ``isDone``).
    mutating func nextData(_ bytes: UnsafeRawBufferPointer, from offset: inout Int) throws -> UnsafeRawBufferPointer? {
        while offset < bytes.count {
            if state == .data {
                let n = min(size, bytes.count - offset)
                let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
                offset += n
                size -= n
                if size == 0 { state = .dataCR }
                return piece
            }
            let byte = bytes[offset]
            offset += 1
            switch state {
            case .size:
                if let digit = Self.hexValue(byte) {
                    guard size < 1 << 40 else { throw MalformedChunk(byte: byte) }
                    size = size * 16 + digit
                    sawDigit = true
                } else if byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                    state = .sizeExtension
                } else if byte == UInt8(ascii: "\r") {
                    state = .sizeLF
                } else if byte == UInt8(ascii: "\n") {
                    try endSizeLine(byte)
                } else {
                    throw MalformedChunk(byte: byte)
                }
            case .sizeExtension:
                if byte == UInt8(ascii: "\r") { state = .sizeLF } else if byte == UInt8(ascii: "\n") { try endSizeLine(byte) }
            case .sizeLF:
                guard byte == UInt8(ascii: "\n") else { throw MalformedChunk(byte: byte) }
                try endSizeLine(byte)
            case .dataCR:
                if byte == UInt8(ascii: "\r") {
                    state = .dataLF
                } else if byte == UInt8(ascii: "\n") {
                    startSize()
                } else {
                    throw MalformedChunk(byte: byte)
                }
            case .dataLF:
                guard byte == UInt8(ascii: "\n") else { throw MalformedChunk(byte: byte) }
                startSize()
            case .trailerLineStart:
                if byte == UInt8(ascii: "\r") {
                    state = .trailerLF
                } else if byte == UInt8(ascii: "\n") {
                    state = .done
                    return nil
                } else {
                    state = .trailerLine
                }
            case .trailerLine:
                if byte == UInt8(ascii: "\n") { state = .trailerLineStart }
            case .trailerLF:
                guard byte == UInt8(ascii: "\n") else { throw MalformedChunk(byte: byte) }
                state = .done
                return nil
            case .done:
                offset -= 1
                return nil
            case .data:
                preconditionFailure("handled above")
            }
        }
        return nil
    }

    private mutating func endSizeLine(_ byte: UInt8) throws {
        guard sawDigit else { throw MalformedChunk(byte: byte) }
        state = size == 0 ? .trailerLineStart : .data
    }

    private mutating func startSize() {
        state = .size
        size = 0
        sawDigit = false
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
