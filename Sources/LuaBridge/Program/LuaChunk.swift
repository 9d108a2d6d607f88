import CLuaShim

/// One compiled Lua file: bytecode with its source name kept, so errors show `file:line`.
public struct LuaChunk: Sendable {
    /// The name `require` knows it by, e.g. `lib.util` for `lib/util.lua`.
    public let moduleName: String
    /// The file it came from, e.g. `lib/util.lua`.
    public let path: String
    let bytecode: [UInt8]

    /// Compiles source text (binary chunks are refused). Throws a ``LuaError`` with code
    /// `.syntax` whose message starts with `path:line:`.
    public init(path: String, source: String, moduleName: String? = nil) throws(LuaError) {
        self.path = path
        self.moduleName = moduleName ?? Self.moduleName(forPath: path)
        var output: UnsafeMutablePointer<CChar>?
        var length = 0
        // A NUL after the text, so the buffer is never empty (its length excludes the NUL).
        let text = Array(source.utf8) + [0]
        let status = text.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                picloud_compile(chars.baseAddress!, chars.count - 1, "@" + path, &output, &length)
            }
        }
        defer { picloud_free(output) }
        let bytes = output.map { pointer in
            Array(UnsafeRawBufferPointer(start: pointer, count: length).bindMemory(to: UInt8.self))
        } ?? []
        guard status == 0 else {
            let message = String(decoding: bytes, as: UTF8.self)
            let note = message.contains("binary chunk") ? " (only Lua source text can be deployed)" : ""
            throw LuaError(code: .syntax, message: message.isEmpty ? "\(path): cannot compile" : message + note)
        }
        bytecode = bytes
    }

    /// `lib/util.lua` → `lib.util`.
    public static func moduleName(forPath path: String) -> String {
        let stem = path.hasSuffix(".lua") ? path.dropLast(4) : Substring(path)
        return String(stem.map { $0 == "/" ? "." : $0 })
    }
}
