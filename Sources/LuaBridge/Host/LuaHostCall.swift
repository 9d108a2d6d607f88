import CLua
import CLuaShim

/// The arguments of one host-function call and the invocation it belongs to.
///
/// Valid only while the host function runs: it reads the calling coroutine's stack directly.
/// Positions are 1-based, as in Lua.
public struct LuaHostCall {
    let state: OpaquePointer
    let stack: LuaStack
    /// The qualified name scripts call, e.g. `kv.get`.
    public let name: String
    /// The context the invocation was started with (nil while a module loads).
    public let context: (any Sendable)?
    /// Whether this call may suspend; false inside a metamethod, a `table.sort` comparator or a
    /// module's top-level code, where Lua cannot yield.
    public let canSuspend: Bool

    init(stack: LuaStack, name: String, context: (any Sendable)?) {
        self.state = stack.state
        self.stack = stack
        self.name = name
        self.context = context
        self.canSuspend = picloud_can_suspend(state) != 0
    }

    /// The number of arguments passed.
    public var count: Int { Int(lua_gettop(state)) }

    /// The argument at `position` as a value (`.nil` when absent).
    public func value(_ position: Int) throws(LuaArgumentError) -> LuaValue {
        guard position <= count else { return .nil }
        do {
            return try stack.value(at: Int32(position))
        } catch {
            throw LuaArgumentError(position: position, message: error.description)
        }
    }

    /// A string argument. Numbers are accepted and converted, as Lua's own functions do.
    public func string(_ position: Int) throws(LuaArgumentError) -> String {
        switch try value(position) {
        case .string(let text): return text
        case .integer(let number): return String(number)
        case .number(let number): return String(describing: number)
        case .bytes: throw LuaArgumentError(position: position, message: "string is not valid UTF-8")
        case let other: throw LuaArgumentError(position: position, expected: "string", got: other)
        }
    }

    /// An optional string argument (nil when absent or nil).
    public func optionalString(_ position: Int) throws(LuaArgumentError) -> String? {
        type(position) == LUA_TNIL || type(position) == LUA_TNONE ? nil : try string(position)
    }

    /// A string argument as raw bytes (any string, UTF-8 or not).
    public func bytes(_ position: Int) throws(LuaArgumentError) -> [UInt8] {
        switch try value(position) {
        case .string(let text): return Array(text.utf8)
        case .bytes(let bytes): return bytes
        case .integer(let number): return Array(String(number).utf8)
        case .number(let number): return Array(String(describing: number).utf8)
        case let other: throw LuaArgumentError(position: position, expected: "string", got: other)
        }
    }

    /// An integer argument (a float with an integral value is accepted).
    public func integer(_ position: Int) throws(LuaArgumentError) -> Int64 {
        let argument = try value(position)
        guard let number = argument.integerValue else {
            if case .number = argument { throw LuaArgumentError(position: position, message: "number has no integer representation") }
            throw LuaArgumentError(position: position, expected: "integer", got: argument)
        }
        return number
    }

    /// An optional integer argument.
    public func optionalInteger(_ position: Int) throws(LuaArgumentError) -> Int64? {
        type(position) == LUA_TNIL || type(position) == LUA_TNONE ? nil : try integer(position)
    }

    /// A number argument.
    public func number(_ position: Int) throws(LuaArgumentError) -> Double {
        let argument = try value(position)
        guard let number = argument.doubleValue else { throw LuaArgumentError(position: position, expected: "number", got: argument) }
        return number
    }

    /// A table argument (an object or an array).
    public func table(_ position: Int) throws(LuaArgumentError) -> LuaValue {
        guard type(position) == LUA_TTABLE else { throw LuaArgumentError(position: position, expected: "table", got: try value(position)) }
        return try value(position)
    }

    /// An optional table argument.
    public func optionalTable(_ position: Int) throws(LuaArgumentError) -> LuaValue? {
        type(position) == LUA_TNIL || type(position) == LUA_TNONE ? nil : try table(position)
    }

    func type(_ position: Int) -> Int32 {
        position <= count ? lua_type(state, Int32(position)) : LUA_TNONE
    }
}

/// A bad argument to a host function; the script sees `bad argument #n to 'name' (message)`.
public struct LuaArgumentError: Error, Sendable, CustomStringConvertible {
    public let position: Int
    public let message: String

    public init(position: Int, message: String) {
        self.position = position
        self.message = message
    }

    init(position: Int, expected: String, got value: LuaValue) {
        self.init(position: position, message: "\(expected) expected, got \(value.typeName)")
    }

    public var description: String { "bad argument #\(position) (\(message))" }
}
