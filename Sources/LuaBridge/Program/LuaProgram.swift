/// The compiled Lua files of one deployment, plus library modules (PiCloud's `stdlib/`),
/// and which of them are handlers. Compiled once; every VM of the pool loads the bytecode.
public struct LuaProgram: Sendable {
    /// Every module by the name `require` knows it by.
    public let modules: [String: LuaChunk]
    /// Handler files (paths), each a module that must return a function.
    public let handlers: [String]

    /// Compiles `files` (path → source). Every `.lua` file becomes a module; `handlers` lists the
    /// paths that are handlers. Throws every compile error at once.
    ///
    /// - Parameter library: modules shipped with PiCloud (`picloud.*`); app files cannot shadow them.
    public init(files: [String: String], handlers: [String], library: [LuaChunk] = []) throws(LuaProgramError) {
        var modules: [String: LuaChunk] = [:]
        for chunk in library { modules[chunk.moduleName] = chunk }
        var errors: [LuaError] = []
        for path in files.keys.sorted() where path.hasSuffix(".lua") {
            let name = LuaChunk.moduleName(forPath: path)
            if modules[name] != nil {
                errors.append(LuaError(code: .syntax, message: "\(path): the module name '\(name)' is taken by a PiCloud library module", file: path))
                continue
            }
            do {
                modules[name] = try LuaChunk(path: path, source: files[path]!)
            } catch {
                errors.append(error)
            }
        }
        for handler in handlers where files[handler] == nil {
            errors.append(LuaError(code: .handlerNotFound, message: "\(handler): handler file not found", file: handler))
        }
        guard errors.isEmpty else { throw LuaProgramError(errors: errors) }
        self.modules = modules
        self.handlers = handlers
    }
}
