import CLua
import CLuaShim

/// One Lua state with PiCloud's sandbox, a program's modules and the host's libraries.
///
/// Not Sendable: a ``LuaWorker`` owns it and runs every invocation on it. Many invocations can be
/// in flight at once, each in its own coroutine; they interleave only where one waits for a host
/// call. The C state is freed in `deinit`, after the last in-flight invocation let go of it.
final class LuaVM {
    let state: OpaquePointer
    let shim: UnsafeMutablePointer<picloud_vm>
    let functions: HostFunctionTable
    let configuration: LuaPoolConfiguration
    private(set) var handlers: [String: Handler] = [:]

    /// A loaded handler's function.
    struct Handler {
        /// Its registry reference.
        let reference: Int32
        /// How many arguments it can receive (its fixed parameters; `Int.max` with `...`).
        let accepted: Int
    }
    /// Every file of the program, so a file not declared as a handler can still be run as one.
    private var modulePaths: Set<String> = []

    /// Whether the program has a file at this path.
    func hasModule(path: String) -> Bool { modulePaths.contains(path) }

    /// The operation a host call asked to wait for, taken by the worker after the yield.
    var pendingOperation: (name: String, operation: LuaHostWait)?
    /// The context of the invocation now running, for host calls.
    var currentContext: (any Sendable)?
    /// Invocations finished on this VM.
    var uses = 0
    /// Set when the VM must serve no new invocation (limit breach, worn out).
    var isRetired = false

    init(program: LuaProgram, functions: HostFunctionTable, configuration: LuaPoolConfiguration) throws(LuaError) {
        guard let state = picloud_open(
            configuration.memoryLimit, Int32(configuration.hookInterval), configuration.patternStepLimit,
            luaHostDispatch, nil, Int32(HostFunctionTable.printID)
        ) else {
            throw LuaError(code: .memory, message: "cannot create a Lua state")
        }
        self.state = state
        self.shim = picloud_vm_of(state)
        self.functions = functions
        self.configuration = configuration
        shim.pointee.host = Unmanaged.passUnretained(self).toOpaque()
        try installLibraries()
        try load(program)
    }

    deinit {
        picloud_close(state)
    }

    var stack: LuaStack { LuaStack(state: state, configuration) }

    /// Bytes the VM holds now, and the most it ever held.
    var memory: (used: Int, peak: Int) { (shim.pointee.mem_used, shim.pointee.mem_peak) }

    /// Whether an allocation was refused because of the memory cap.
    var memoryBreached: Bool { shim.pointee.mem_breached != 0 }

    // MARK: Building

    private func installLibraries() throws(LuaError) {
        for installation in functions.installations {
            if let global = installation.global {
                lua_createtable(state, 0, Int32(installation.functions.count + installation.values.count))
                for (name, id) in installation.functions {
                    stack.pushString(name)
                    picloud_push_host_function(state, Int32(id))
                    lua_rawset(state, -3)
                }
                for (name, value) in installation.values {
                    stack.pushString(name)
                    try push(value, what: "\(global).\(name)")
                    lua_rawset(state, -3)
                }
                picloud_set_global(state, global)
            } else {
                for (name, id) in installation.functions {
                    picloud_push_host_function(state, Int32(id))
                    picloud_set_global(state, name)
                }
                for (name, value) in installation.values {
                    try push(value, what: name)
                    picloud_set_global(state, name)
                }
            }
        }
        guard picloud_seal(state) == LUA_OK else {
            throw LuaError(code: .memory, message: "cannot seal the sandbox")
        }
    }

    private func push(_ value: LuaValue, what: String) throws(LuaError) {
        do {
            try stack.push(value)
        } catch {
            throw LuaError(code: .conversion, message: "\(what): \(error)")
        }
    }

    private func load(_ program: LuaProgram) throws(LuaError) {
        modulePaths = Set(program.modules.values.map(\.path))
        for chunk in program.modules.values {
            let status = chunk.bytecode.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { bytes in
                    picloud_load_module(state, chunk.moduleName, bytes.baseAddress, bytes.count, "@" + chunk.path)
                }
            }
            guard status == LUA_OK else {
                let message = popMessage()
                throw LuaError(code: .syntax, message: "\(chunk.path): cannot load: \(message)", file: chunk.path)
            }
        }
        // Run each handler file's top level now, so a broken one fails the VM (and the deployment).
        for path in program.handlers { try loadHandler(path) }
    }

    /// Runs a handler file's top level and keeps the function it returns.
    func loadHandler(_ path: String) throws(LuaError) {
        let limits = configuration.limits
        enter(budget: limits.instructions, deadline: picloud_now_ns() + limits.timeoutNanoseconds, context: nil)
        let status = picloud_require(state, LuaChunk.moduleName(forPath: path))
        let killed = leave()
        if status != LUA_OK || killed != PICLOUD_KILL_NONE {
            picloud_take_traceback(state)
            let traceback = lua_type(state, -1) == LUA_TSTRING ? stack.string(at: -1).stringValue : nil
            picloud_pop(state, 1)
            let message = popMessage()
            if killed != PICLOUD_KILL_NONE {
                throw limitError(killed, limits: limits, message: message, traceback: traceback)
            }
            throw LuaError(code: memoryBreached ? .memory : .runtime, message: message, traceback: traceback)
        }
        guard lua_type(state, -1) == LUA_TFUNCTION else {
            let type = String(cString: lua_typename(state, lua_type(state, -1)))
            picloud_pop(state, 1)
            throw LuaError(code: .runtime, message: "\(path): a handler file must return a function, this one returned a \(type) value", file: path)
        }
        let parameters = picloud_function_parameters(state, -1)
        handlers[path] = Handler(reference: luaL_ref(state, picloud_registryindex()), accepted: parameters < 0 ? Int.max : Int(parameters))
    }

    /// Pops the value on the stack top as a message.
    func popMessage(from thread: OpaquePointer? = nil) -> String {
        let thread = thread ?? state
        defer { picloud_pop(thread, 1) }
        if lua_type(thread, -1) == LUA_TSTRING || lua_type(thread, -1) == LUA_TNUMBER {
            switch LuaStack(state: thread, maxDepth: 1).string(at: -1) {
            case .string(let text): return text
            case let other: return String(decoding: other.byteValue ?? [], as: UTF8.self)
            }
        }
        return "(error object is a \(String(cString: lua_typename(thread, lua_type(thread, -1)))) value)"
    }

    // MARK: Limits

    /// Swaps an invocation's limits in before Lua code runs.
    func enter(budget: Int64, deadline: UInt64, context: (any Sendable)?) {
        shim.pointee.budget = budget
        shim.pointee.deadline_ns = deadline
        shim.pointee.killed = PICLOUD_KILL_NONE
        currentContext = context
    }

    /// Swaps them out again; returns why the code was stopped (PICLOUD_KILL_*).
    func leave() -> Int32 {
        let killed = shim.pointee.killed
        shim.pointee.killed = PICLOUD_KILL_NONE
        shim.pointee.deadline_ns = 0
        currentContext = nil
        return killed
    }

    func limitError(_ reason: Int32, limits: LuaLimits, message: String, traceback: String?) -> LuaError {
        let location = LuaError.location(in: message).map { "\($0.file):\($0.line): " } ?? ""
        if reason == PICLOUD_KILL_DEADLINE {
            return LuaError(code: .timeout, message: "\(location)time limit of \(limits.timeout) exceeded", traceback: traceback)
        }
        return LuaError(code: .instructionLimit, message: "\(location)instruction limit of \(limits.instructions) exceeded", traceback: traceback)
    }
}

/// The one C entry point into Swift: every host trampoline calls it.
let luaHostDispatch: picloud_host_dispatch = { host, state, id in
    guard let host, let state else { return PICLOUD_HOST_ERROR }
    return Unmanaged<LuaVM>.fromOpaque(host).takeUnretainedValue().callHost(Int(id), state: state)
}
