extension LuaJSON {
    /// A strict RFC 8259 parser over a byte buffer.
    struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        let maxDepth: Int
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        mutating func parseDocument() throws(LuaJSONError) -> LuaValue {
            skipWhitespace()
            let value = try parseValue(depth: 0)
            skipWhitespace()
            guard index == bytes.count else { throw unexpected("after the JSON value") }
            return value
        }

        func unexpected(_ context: String = "") -> LuaJSONError {
            guard index < bytes.count else {
                return LuaJSONError("invalid JSON: unexpected end of text\(context.isEmpty ? "" : " " + context)")
            }
            let byte = bytes[index]
            let shown = (0x20..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
            return LuaJSONError("invalid JSON: unexpected \(shown) at offset \(index)\(context.isEmpty ? "" : " " + context)")
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func expect(_ literal: StaticString, value: LuaValue) throws(LuaJSONError) -> LuaValue {
            let count = literal.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw unexpected() }
            for offset in 0..<count where bytes[index + offset] != literal.utf8Start[offset] {
                index += offset
                throw unexpected()
            }
            index += count
            return value
        }

        mutating func parseValue(depth: Int) throws(LuaJSONError) -> LuaValue {
            guard index < bytes.count else { throw unexpected() }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): return try expect("true", value: .boolean(true))
            case UInt8(ascii: "f"): return try expect("false", value: .boolean(false))
            case UInt8(ascii: "n"): return try expect("null", value: .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw unexpected()
            }
        }

        mutating func parseArray(depth: Int) throws(LuaJSONError) -> LuaValue {
            guard depth <= maxDepth else { throw LuaJSONError("invalid JSON: nested deeper than \(maxDepth) levels") }
            index += 1
            var items: [LuaValue] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            while true {
                skipWhitespace()
                items.append(try parseValue(depth: depth))
                skipWhitespace()
                guard index < bytes.count else { throw unexpected("in an array") }
                switch bytes[index] {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "]"):
                    index += 1
                    return .array(items)
                default: throw unexpected("in an array")
                }
            }
        }

        mutating func parseObject(depth: Int) throws(LuaJSONError) -> LuaValue {
            guard depth <= maxDepth else { throw LuaJSONError("invalid JSON: nested deeper than \(maxDepth) levels") }
            index += 1
            var fields: [String: LuaValue] = [:]
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(fields)
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw unexpected("where an object key was expected") }
                let key = try parseString()
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw unexpected("after an object key") }
                index += 1
                skipWhitespace()
                fields[key] = try parseValue(depth: depth)
                skipWhitespace()
                guard index < bytes.count else { throw unexpected("in an object") }
                switch bytes[index] {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "}"):
                    index += 1
                    return .object(fields)
                default: throw unexpected("in an object")
                }
            }
        }

        mutating func parseNumber() throws(LuaJSONError) -> LuaValue {
            let start = index
            var isInteger = true
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count else { throw unexpected("in a number") }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else if isDigit(bytes[index]) {
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            } else {
                throw unexpected("in a number")
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                isInteger = false
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { throw unexpected("in a number") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                isInteger = false
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard index < bytes.count, isDigit(bytes[index]) else { throw unexpected("in a number") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            if isInteger, let value = Int64(text) { return .integer(value) }
            guard let value = Double(text), value.isFinite else {
                throw LuaJSONError("invalid JSON: number \(text) at offset \(start) is out of range")
            }
            return .number(value)
        }

        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        mutating func parseString() throws(LuaJSONError) -> String {
            let start = index
            index += 1
            // Only a string with escapes is copied piece by piece; the others become a String
            // straight from the input (no allocation at all up to 15 bytes).
            var unescaped: [UInt8]?
            var runStart = index
            while true {
                guard index < bytes.count else { throw LuaJSONError("invalid JSON: unterminated string starting at offset \(start)") }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    let run = UnsafeBufferPointer(rebasing: bytes[runStart..<index])
                    index += 1
                    let text: String?
                    if var out = unescaped.take() {
                        out.append(contentsOf: run)
                        text = out.withUnsafeBufferPointer(LuaValue.validUTF8)
                    } else {
                        text = LuaValue.validUTF8(run)
                    }
                    guard let text else { throw LuaJSONError("invalid JSON: the string at offset \(start) is not valid UTF-8") }
                    return text
                }
                if byte < 0x20 { throw unexpected("in a string (control characters must be escaped)") }
                if byte != UInt8(ascii: "\\") {
                    index += 1
                    continue
                }
                var out = unescaped.take() ?? []
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                index += 1
                guard index < bytes.count else { throw unexpected("in a string") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"): try appendUnicodeEscape(to: &out)
                default:
                    index -= 1
                    throw unexpected("after a backslash in a string")
                }
                unescaped = out
                runStart = index
            }
        }

        mutating func hexQuad() throws(LuaJSONError) -> UInt32 {
            guard index + 4 <= bytes.count else { throw unexpected("in a \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw unexpected("in a \\u escape")
                }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }

        mutating func appendUnicodeEscape(to out: inout [UInt8]) throws(LuaJSONError) {
            let escapeStart = index - 2
            var code = try hexQuad()
            if (0xD800...0xDBFF).contains(code) {
                guard index + 2 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                    throw LuaJSONError("invalid JSON: unpaired surrogate \\u\(String(code, radix: 16)) at offset \(escapeStart)")
                }
                index += 2
                let low = try hexQuad()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw LuaJSONError("invalid JSON: unpaired surrogate \\u\(String(code, radix: 16)) at offset \(escapeStart)")
                }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(code) {
                throw LuaJSONError("invalid JSON: unpaired surrogate \\u\(String(code, radix: 16)) at offset \(escapeStart)")
            }
            out.append(contentsOf: String(Character(Unicode.Scalar(code)!)).utf8)
        }
    }
}
