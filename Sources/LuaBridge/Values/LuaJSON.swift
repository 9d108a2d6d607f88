/// JSON text for ``LuaValue``: exact about integers and floats (`1` stays an integer, `1.0` a
/// float), strict about the grammar (RFC 8259), bounded in nesting depth.
///
/// Hand-written because Foundation's JSON types cannot tell `1` from `1.0` on Linux, which the
/// value model needs to keep Lua's integer/float distinction through a round trip.
public enum LuaJSON {
    /// Nesting depth accepted by default, both ways.
    public static let defaultMaxDepth = 128

    /// Encodes a value. Object keys are sorted so that equal values give equal text.
    public static func encode(_ value: LuaValue, pretty: Bool = false, maxDepth: Int = defaultMaxDepth) throws(LuaJSONError) -> [UInt8] {
        var writer = Writer(pretty: pretty, maxDepth: maxDepth)
        try writer.write(value, depth: 0)
        return writer.out
    }

    /// Encodes a value as a `String`.
    public static func encodeText(_ value: LuaValue, pretty: Bool = false, maxDepth: Int = defaultMaxDepth) throws(LuaJSONError) -> String {
        String(decoding: try encode(value, pretty: pretty, maxDepth: maxDepth), as: UTF8.self)
    }

    /// Decodes one JSON value (surrounding whitespace allowed, nothing else).
    public static func decode(_ bytes: some Collection<UInt8>, maxDepth: Int = defaultMaxDepth) throws(LuaJSONError) -> LuaValue {
        let result = bytes.withContiguousStorageIfAvailable { buffer in parse(buffer, maxDepth: maxDepth) }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try decode(copy, maxDepth: maxDepth)
    }

    /// Decodes one JSON value from bytes: what callers in other modules mostly pass, without the
    /// generic overload's run-time type lookups.
    public static func decode(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(LuaJSONError) -> LuaValue {
        try bytes.withUnsafeBufferPointer { buffer in parse(buffer, maxDepth: maxDepth) }.get()
    }

    /// Decodes one JSON value from text.
    public static func decode(_ text: String, maxDepth: Int = defaultMaxDepth) throws(LuaJSONError) -> LuaValue {
        var text = text
        return try text.withUTF8 { buffer in parse(buffer, maxDepth: maxDepth) }.get()
    }

    private static func parse(_ buffer: UnsafeBufferPointer<UInt8>, maxDepth: Int) -> Result<LuaValue, LuaJSONError> {
        var parser = Parser(bytes: buffer, maxDepth: maxDepth)
        return Result { () throws(LuaJSONError) in try parser.parseDocument() }
    }
}

/// A value that has no JSON form, or text that is not JSON.
public struct LuaJSONError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, in words meant for the script's author.
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

extension LuaJSON {
    struct Writer {
        var out: [UInt8] = []
        let pretty: Bool
        let maxDepth: Int

        init(pretty: Bool, maxDepth: Int) {
            self.pretty = pretty
            self.maxDepth = maxDepth
            out.reserveCapacity(128)
        }

        mutating func write(_ value: LuaValue, depth: Int) throws(LuaJSONError) {
            switch value {
            case .nil, .null:
                out.append(contentsOf: "null".utf8)
            case .boolean(let flag):
                out.append(contentsOf: (flag ? "true" : "false").utf8)
            case .integer(let number):
                out.append(contentsOf: String(number).utf8)
            case .number(let number):
                guard number.isFinite else { throw LuaJSONError("cannot encode \(number) as JSON (not a finite number)") }
                out.append(contentsOf: number.description.utf8)
            case .string(let text):
                writeString(text)
            case .bytes:
                throw LuaJSONError("cannot encode a string that is not valid UTF-8 as JSON")
            case .array(let items):
                guard depth < maxDepth else { throw LuaJSONError("cannot encode: nested deeper than \(maxDepth) levels") }
                out.append(UInt8(ascii: "["))
                for (index, item) in items.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    newline(depth + 1)
                    try write(item, depth: depth + 1)
                }
                if !items.isEmpty { newline(depth) }
                out.append(UInt8(ascii: "]"))
            case .object(let fields):
                guard depth < maxDepth else { throw LuaJSONError("cannot encode: nested deeper than \(maxDepth) levels") }
                out.append(UInt8(ascii: "{"))
                // Sorted once as pairs (no lookup per key); one field needs no sorting.
                let sorted = fields.count == 1 ? Array(fields) : fields.sorted { $0.key < $1.key }
                for (index, field) in sorted.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    newline(depth + 1)
                    writeString(field.key)
                    out.append(UInt8(ascii: ":"))
                    if pretty { out.append(UInt8(ascii: " ")) }
                    try write(field.value, depth: depth + 1)
                }
                if !fields.isEmpty { newline(depth) }
                out.append(UInt8(ascii: "}"))
            }
        }

        mutating func newline(_ depth: Int) {
            guard pretty else { return }
            out.append(UInt8(ascii: "\n"))
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: depth * 2))
        }

        mutating func writeString(_ text: String) {
            var text = text
            text.withUTF8 { writeString($0) }
        }

        /// A string's UTF-8 bytes, quoted and escaped; runs that need no escaping are copied whole.
        mutating func writeString(_ bytes: UnsafeBufferPointer<UInt8>) {
            out.append(UInt8(ascii: "\""))
            var start = 0
            for (offset, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                if start < offset { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<offset])) }
                start = offset + 1
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
                case 0x0A: out.append(contentsOf: #"\n"#.utf8)
                case 0x0D: out.append(contentsOf: #"\r"#.utf8)
                case 0x09: out.append(contentsOf: #"\t"#.utf8)
                case 0x08: out.append(contentsOf: #"\b"#.utf8)
                case 0x0C: out.append(contentsOf: #"\f"#.utf8)
                default:
                    out.append(contentsOf: #"\u00"#.utf8)
                    out.append(hexDigit(byte >> 4))
                    out.append(hexDigit(byte & 0xF))
                }
            }
            if start < bytes.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...])) }
            out.append(UInt8(ascii: "\""))
        }

        func hexDigit(_ nibble: UInt8) -> UInt8 {
            nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
        }
    }
}
