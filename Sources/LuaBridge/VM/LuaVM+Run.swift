import CLua
import CLuaShim

/// One invocation in flight on a VM: its coroutine and what is left of its limits.
struct LuaInvocation {
    let handler: String
    let thread: OpaquePointer
    let reference: Int32
    /// The arguments on the coroutine, for its first resume.
    let arguments: Int32
    let context: (any Sendable)?
    let limits: LuaLimits
    /// Reads the results when the handler returns, if given (see ``LuaResultReader``).
    let results: (any LuaResultReader)?
    /// When it started (`picloud_now_ns`).
    let started: UInt64
    let deadline: UInt64
    var budget: Int64
    /// The host call the coroutine waits for, if any.
    var waitingOn: String?
    var killed: Int32 = PICLOUD_KILL_NONE
}

/// Where an invocation stands after Lua ran.
enum LuaStep {
    case finished([LuaValue])
    case suspended(LuaHostWait)
    /// Paused at the end of its time slice; continue with ``LuaVM/proceed(_:)``.
    case paused
    case failed(LuaError)
}

extension LuaVM {
    /// Creates the invocation's coroutine with the handler and its arguments on it.
    func start(
        _ handler: String, arguments: LuaArguments, context: (any Sendable)?, limits: LuaLimits, results: (any LuaResultReader)? = nil
    ) throws(LuaError) -> LuaInvocation {
        var function = handlers[handler]
        if function == nil, hasModule(path: handler) {
            try loadHandler(handler)
            function = handlers[handler]
        }
        guard let function else {
            throw LuaError(code: .handlerNotFound, message: "no handler '\(handler)' in this deployment")
        }
        var reference: Int32 = 0
        guard let thread = picloud_new_thread(state, &reference) else {
            throw LuaError(code: .memory, message: "cannot create a coroutine")
        }
        lua_rawgeti(thread, picloud_registryindex(), lua_Integer(function.reference))
        do {
            guard lua_checkstack(thread, Int32(clamping: arguments.count + 1)) != 0 else {
                throw LuaConversionError("too many values (\(arguments.count))")
            }
            try arguments.write(LuaArgumentWriter(stack: LuaStack(state: thread, configuration), accepted: function.accepted))
            // All of them, or at least those the function can receive.
            let written = Int(lua_gettop(thread) - 1)
            guard written == arguments.count || (written >= min(function.accepted, arguments.count) && written < arguments.count) else {
                throw LuaConversionError("\(written) values written for \(arguments.count) arguments")
            }
        } catch {
            picloud_release_thread(state, reference)
            throw LuaError(code: .conversion, message: "handler arguments: \(error)")
        }
        let now = picloud_now_ns()
        return LuaInvocation(
            handler: handler, thread: thread, reference: reference, arguments: lua_gettop(thread) - 1, context: context, limits: limits, results: results,
            started: now, deadline: now + limits.timeoutNanoseconds, budget: limits.instructions
        )
    }

    /// Resumes the coroutine with `arguments` values on its stack; `now` is the time if the caller
    /// has just read it (`picloud_now_ns`).
    func run(_ invocation: inout LuaInvocation, arguments: Int32, now: UInt64? = nil) -> LuaStep {
        enter(budget: invocation.budget, deadline: invocation.deadline, context: invocation.context)
        let slice = configuration.timeSliceNanoseconds
        shim.pointee.slice_end_ns = slice == 0 ? 0 : (now ?? picloud_now_ns()) &+ slice
        var results: Int32 = 0
        let status = picloud_resume(state, invocation.thread, arguments, &results)
        shim.pointee.slice_end_ns = 0
        let paused = shim.pointee.preempted != 0
        shim.pointee.preempted = 0
        invocation.budget = shim.pointee.budget
        invocation.killed = leave()
        invocation.waitingOn = nil
        let pending = pendingOperation
        pendingOperation = nil

        if invocation.killed != PICLOUD_KILL_NONE {
            var message = ""
            var traceback: String?
            if status != LUA_OK && status != LUA_YIELD {
                if picloud_traceback(state, invocation.thread) == LUA_OK { traceback = stack.string(at: -1).stringValue }
                picloud_pop(state, 1)
                message = LuaStack(state: invocation.thread, maxDepth: 1).string(at: -1).stringValue ?? ""
            }
            return .failed(limitError(invocation.killed, limits: invocation.limits, message: message, traceback: traceback))
        }
        switch status {
        case LUA_OK:
            defer { lua_settop(invocation.thread, 0) }
            if let reader = invocation.results {
                let top = lua_gettop(invocation.thread)
                let view = LuaResults(stack: LuaStack(state: invocation.thread, configuration), base: top - results + 1, count: Int(results))
                if reader.read(view) { return .finished([]) }
                lua_settop(invocation.thread, top)
            }
            do {
                return .finished(try LuaStack(state: invocation.thread, configuration).values(count: results))
            } catch {
                return .failed(LuaError(code: .conversion, message: "\(invocation.handler): the handler returned a value that cannot leave Lua: \(error)", file: invocation.handler))
            }
        case LUA_YIELD where paused:
            invocation.waitingOn = "its turn (paused after its time slice)"
            return .paused
        case LUA_YIELD:
            guard let pending else {
                return .failed(LuaError(code: .runtime, message: "\(invocation.handler): coroutine.yield() outside a coroutine (a handler itself cannot yield)", file: invocation.handler))
            }
            invocation.waitingOn = pending.name
            return .suspended(pending.operation)
        default:
            return .failed(scriptError(status, thread: invocation.thread))
        }
    }

    /// Resumes a coroutine that waited for a host call, with that call's outcome.
    func resume(_ invocation: inout LuaInvocation, with outcome: Result<LuaHostResult, any Error>) -> LuaStep {
        let thread = invocation.thread
        let name = invocation.waitingOn ?? "host call"
        let stack = LuaStack(state: thread, configuration)
        // What the yielding C function keeps on its frame stays (coroutine.resume keeps its
        // coroutine there); the outcome goes on top.
        let base = lua_gettop(thread)
        guard lua_checkstack(thread, 3) != 0 else { return .failed(LuaError(code: .memory, message: "Lua stack exhausted")) }
        switch outcome {
        case .success(.suspend(let next)):
            return .suspended(.operation(next))
        case .success(.callback(let next)):
            return .suspended(.callback(next))
        case .success(let result):
            let values: [LuaValue]
            switch result {
            case .value(let value): values = [value]
            case .values(let many): values = many
            default: values = []
            }
            lua_pushboolean(thread, 1)
            do {
                try stack.push(values)
                return run(&invocation, arguments: Int32(values.count + 1))
            } catch {
                lua_settop(thread, base)
                lua_pushboolean(thread, 0)
                stack.pushString("\(name): result cannot enter Lua: \(error)")
                return run(&invocation, arguments: 2)
            }
        case .failure(let error):
            lua_pushboolean(thread, 0)
            pushError(error, name: name, on: stack)
            return run(&invocation, arguments: 2)
        }
    }

    /// Continues a coroutine paused at the end of its time slice where it stopped.
    func proceed(_ invocation: inout LuaInvocation) -> LuaStep {
        run(&invocation, arguments: 0)
    }

    /// Releases the coroutine; a failed one first runs its pending `__close` handlers. One stopped
    /// by a limit does not: it may have died inside the count hook, where hooks are off and a
    /// looping `__close` could not be stopped.
    ///
    /// A coroutine whose handler returned is kept for a later invocation (see
    /// `picloud_recycle_thread`); a failed or stopped one is not.
    func finish(_ invocation: LuaInvocation) {
        guard invocation.killed == PICLOUD_KILL_NONE else {
            picloud_release_thread(state, invocation.reference)
            return
        }
        guard lua_status(invocation.thread) == LUA_OK else {
            enter(budget: invocation.budget, deadline: invocation.deadline, context: invocation.context)
            _ = picloud_reset_thread(invocation.thread)
            _ = leave()
            picloud_release_thread(state, invocation.reference)
            return
        }
        lua_settop(invocation.thread, 0)
        picloud_recycle_thread(state, invocation.thread, invocation.reference)
    }

    /// The error a failed coroutine left on its stack (which stays, for the traceback).
    private func scriptError(_ status: Int32, thread: OpaquePointer) -> LuaError {
        let threadStack = LuaStack(state: thread, configuration)
        var value: LuaValue?
        let message: String
        if lua_type(thread, -1) == LUA_TSTRING {
            message = threadStack.string(at: -1).stringValue ?? "(error message is not UTF-8)"
        } else {
            value = try? threadStack.value(at: -1)
            var hasToString = false
            if lua_type(thread, -1) == LUA_TTABLE, luaL_getmetafield(thread, -1, "__tostring") != LUA_TNIL {
                hasToString = true
                picloud_pop(thread, 1)
            }
            if lua_type(thread, -1) == LUA_TTABLE, !hasToString {
                message = value.flatMap { try? LuaJSON.encodeText($0) }.map { "error: \($0)" } ?? "(error object is a table value)"
            } else if picloud_error_string(state, thread) == LUA_OK {
                message = popMessage()
            } else {
                picloud_pop(state, 1)
                message = "(error object is not a string)"
            }
        }
        var traceback: String?
        if picloud_traceback(state, thread) == LUA_OK { traceback = stack.string(at: -1).stringValue }
        picloud_pop(state, 1)
        guard status == LUA_ERRMEM || (memoryBreached && message.hasSuffix("not enough memory")) else {
            return LuaError(code: .runtime, message: message, traceback: traceback, value: value)
        }
        // Lua's memory error is a preallocated string without a position: add where it happened.
        let location = LuaError.location(in: message) ?? traceback.flatMap(LuaError.location(in:))
        let prefix = location.map { "\($0.file):\($0.line): " } ?? ""
        return LuaError(code: .memory, message: "\(prefix)not enough memory (memory limit of \(configuration.memoryLimit >> 20) MiB per VM)", traceback: traceback)
    }

    // MARK: Host calls

    /// Runs host function `id` for the coroutine `state`; returns a PICLOUD_HOST_* code or a count.
    func callHost(_ id: Int, state thread: OpaquePointer) -> Int32 {
        let entry = functions.entries[id]
        let call = LuaHostCall(stack: LuaStack(state: thread, configuration), name: entry.name, context: currentContext)
        let stack = call.stack
        let result: LuaHostResult
        do {
            result = try entry.body(call)
        } catch {
            pushError(error, name: entry.name, on: stack)
            return PICLOUD_HOST_ERROR
        }
        do {
            switch result {
            case .value(let value):
                try stack.push(value)
                return 1
            case .values(let values):
                try stack.push(values)
                return Int32(values.count)
            case .argument(let position):
                guard position >= 1, position <= call.count else { return 0 }
                lua_pushvalue(thread, Int32(position))
                return 1
            case .suspend(let operation):
                guard call.canSuspend else {
                    stack.pushString("'\(entry.name)' cannot wait here (not inside a metamethod, an iterator or sort comparator called from C, or a module's top-level code)")
                    return PICLOUD_HOST_ERROR
                }
                pendingOperation = (entry.name, .operation(operation))
                return PICLOUD_HOST_SUSPEND
            case .callback(let start):
                guard call.canSuspend else {
                    stack.pushString("'\(entry.name)' cannot wait here (not inside a metamethod, an iterator or sort comparator called from C, or a module's top-level code)")
                    return PICLOUD_HOST_ERROR
                }
                pendingOperation = (entry.name, .callback(start))
                return PICLOUD_HOST_SUSPEND
            }
        } catch {
            stack.pushString("\(entry.name): result cannot enter Lua: \(error)")
            return PICLOUD_HOST_ERROR
        }
    }

    private func pushError(_ error: any Error, name: String, on stack: LuaStack) {
        switch error {
        case let error as LuaArgumentError:
            stack.pushString("bad argument #\(error.position) to '\(name)' (\(error.message))")
        case let error as LuaScriptError:
            if (try? stack.push(error.value)) == nil { stack.pushString(error.description) }
        case let error as LuaError:
            stack.pushString(error.message)
        default:
            stack.pushString("\(name): \(error)")
        }
    }
}
