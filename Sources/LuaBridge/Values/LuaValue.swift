#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Lua value that can leave the VM: the JSON-compatible subset of Lua, plus `nil`.
///
/// Strings are byte strings in Lua. A string that is valid UTF-8 arrives as ``string(_:)``, any
/// other as ``bytes(_:)``; both go back to Lua as the same bytes. Integers and floats stay apart
/// (`1` and `1.0` are different Lua values and different JSON texts). A table whose keys are
/// exactly `1...n` is an ``array(_:)``, as is any table marked with `json.array`; every other table
/// is an ``object(_:)`` whose number keys become strings. ``null`` is `json.null`.
public enum LuaValue: Sendable, Hashable {
    case `nil`
    case null
    case boolean(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case bytes([UInt8])
    case array([LuaValue])
    case object([String: LuaValue])
}

extension LuaValue {
    /// A string value from raw bytes: ``string(_:)`` when they are valid UTF-8, else ``bytes(_:)``.
    public init(bytes: some Collection<UInt8>) {
        let contiguous: LuaValue?? = bytes.withContiguousStorageIfAvailable { buffer in
            Self.validUTF8(buffer).map(LuaValue.string)
        }
        if let contiguous {
            self = contiguous ?? .bytes(Array(bytes))
        } else if let text = String(validating: bytes, as: UTF8.self) {
            self = .string(text)
        } else {
            self = .bytes(Array(bytes))
        }
    }

    /// The text, when the bytes are valid UTF-8. Decoding replaces what is invalid, so the text
    /// is valid exactly when it has the same bytes. (`String(validating:as:)` is generic and not
    /// specialized here: it looked up type metadata at run time, at every string leaving Lua.)
    static func validUTF8(_ buffer: UnsafeBufferPointer<UInt8>) -> String? {
        var text = String(decoding: buffer, as: UTF8.self)
        let same = text.withUTF8 { decoded in
            decoded.count == buffer.count && (buffer.isEmpty || memcmp(decoded.baseAddress!, buffer.baseAddress!, buffer.count) == 0)
        }
        return same ? text : nil
    }

    /// The Lua type name (`"nil"`, `"boolean"`, `"number"`, `"string"`, `"table"`, or `"null"`).
    public var typeName: String {
        switch self {
        case .nil: "nil"
        case .null: "null"
        case .boolean: "boolean"
        case .integer, .number: "number"
        case .string, .bytes: "string"
        case .array, .object: "table"
        }
    }

    /// The text of a string value (nil for other values and for non-UTF-8 bytes).
    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The bytes of a string value, whether or not they are UTF-8.
    public var byteValue: [UInt8]? {
        switch self {
        case .string(let text): Array(text.utf8)
        case .bytes(let bytes): bytes
        default: nil
        }
    }

    /// An integer, or a float with an exact integer value.
    public var integerValue: Int64? {
        switch self {
        case .integer(let value): return value
        case .number(let value):
            guard value.rounded() == value, let exact = Int64(exactly: value) else { return nil }
            return exact
        default: return nil
        }
    }

    /// The items of an array.
    public var arrayValue: [LuaValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    /// Any number as a `Double`.
    public var doubleValue: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .number(let value): value
        default: nil
        }
    }

    /// The value of a boolean.
    public var boolValue: Bool? {
        if case .boolean(let value) = self { return value }
        return nil
    }

    /// Whether the value is `nil` or `json.null`.
    public var isNil: Bool {
        switch self {
        case .nil, .null: true
        default: false
        }
    }

    /// Field lookup on an object (nil for other values).
    public subscript(key: String) -> LuaValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    /// Nesting depth: 0 for scalars, 1 for a table of scalars.
    public var depth: Int {
        switch self {
        case .array(let items): 1 + (items.map(\.depth).max() ?? 0)
        case .object(let fields): 1 + (fields.values.map(\.depth).max() ?? 0)
        default: 0
        }
    }
}

extension LuaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .boolean(value) }
    public init(arrayLiteral elements: LuaValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, LuaValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
