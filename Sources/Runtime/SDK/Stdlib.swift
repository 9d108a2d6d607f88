import LuaBridge

/// PiCloud's Lua modules (`stdlib/`), compiled once per process and shared by every deployment.
enum Stdlib {
    static let chunks: [LuaChunk] = EmbeddedStdlib.files.map { file in
        do {
            return try LuaChunk(path: "stdlib/" + file.path, source: file.contents, moduleName: LuaChunk.moduleName(forPath: file.path))
        } catch {
            fatalError("stdlib/\(file.path) does not compile: \(error)") // caught by the test suite
        }
    }
}
