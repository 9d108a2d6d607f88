/// A script failed: it did not compile, raised an error, or broke a limit.
///
/// `message` is what Lua reported, with the script's `file:line:` in front when Lua knows it.
/// `traceback` is for the app's own admins (it shows the script's structure), never for callers.
public struct LuaError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Code: String, Sendable, Hashable {
        /// The source did not compile.
        case syntax
        /// The script raised an error (`error(...)`, a bad index, a failed host call).
        case runtime
        /// The VM reached its memory cap.
        case memory
        /// The invocation used its instruction budget.
        case instructionLimit = "instruction_limit"
        /// The invocation ran past its deadline.
        case timeout
        /// A value could not cross between Lua and Swift (a function, a cycle, too deep).
        case conversion
        /// No handler with that name in the program.
        case handlerNotFound = "handler_not_found"
        /// The caller went away before the invocation finished.
        case cancelled
    }

    public var code: Code
    public var message: String
    /// The script file the error points at, e.g. `handlers/post.lua`.
    public var file: String?
    public var line: Int?
    public var traceback: String?
    /// The error value, when the script raised a table (`error({status = 404})`).
    public var value: LuaValue?

    public init(code: Code, message: String, file: String? = nil, line: Int? = nil, traceback: String? = nil, value: LuaValue? = nil) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
        self.traceback = traceback
        self.value = value
        if file == nil, let location = Self.location(in: message) ?? traceback.flatMap(Self.location(in:)) {
            self.file = location.file
            self.line = location.line
        }
    }

    public var description: String { message }

    /// Whether the failure broke a limit of the VM (and the VM should be replaced).
    public var isLimitBreach: Bool {
        switch code {
        case .memory, .instructionLimit, .timeout: true
        default: false
        }
    }

    /// Finds the first `path.lua:LINE:` in a message or traceback.
    static func location(in text: String) -> (file: String, line: Int)? {
        let bytes = Array(text.utf8)
        let marker = Array(".lua:".utf8)
        var index = 0
        while index + marker.count <= bytes.count {
            guard bytes[index..<index + marker.count].elementsEqual(marker) else {
                index += 1
                continue
            }
            var start = index
            while start > 0, !isSeparator(bytes[start - 1]) { start -= 1 }
            var end = index + marker.count
            var line = 0
            while end < bytes.count, let digit = digitValue(bytes[end]) {
                line = line * 10 + digit
                end += 1
            }
            if end > index + marker.count, end < bytes.count, bytes[end] == UInt8(ascii: ":"), start < index {
                let file = String(decoding: bytes[start..<index + 4], as: UTF8.self)
                return (file, line)
            }
            index += 1
        }
        return nil
    }

    private static func isSeparator(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"")
    }

    private static func digitValue(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }
}

/// A program did not load: every error found, each with its file and line.
public struct LuaProgramError: Error, Sendable, CustomStringConvertible {
    public var errors: [LuaError]

    public init(errors: [LuaError]) { self.errors = errors }

    public var description: String { errors.map(\.message).joined(separator: "\n") }
}
