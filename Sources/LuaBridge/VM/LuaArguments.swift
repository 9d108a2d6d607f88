import CLua
import CLuaShim

/// A handler's arguments, written straight onto its coroutine's stack.
///
/// Values given as ``LuaValue`` are copied there. A caller whose argument is a fresh table made
/// for the call (an endpoint's `request`, its `ctx`) can instead write it field by field with a
/// ``LuaArgumentWriter``, without building a tree of dictionaries first only for it to be copied
/// and dropped: per request, that tree was a fifth of the endpoint path's own work.
public struct LuaArguments: Sendable {
    /// How many values `write` pushes.
    public let count: Int
    let write: @Sendable (LuaArgumentWriter) throws(LuaConversionError) -> Void

    /// Arguments `write` pushes, `count` of them (checked: a different number is a conversion error),
    /// or at least the first ``LuaArgumentWriter/accepted``: the handler cannot see the others.
    public init(count: Int, _ write: @escaping @Sendable (LuaArgumentWriter) throws(LuaConversionError) -> Void) {
        self.count = count
        self.write = write
    }

    /// The values, in order.
    public init(_ values: [LuaValue]) {
        self.init(count: values.count) { writer throws(LuaConversionError) in
            for value in values { try writer.push(value) }
        }
    }
}

/// Pushes a handler's arguments onto its coroutine's stack (see ``LuaArguments``); valid only
/// inside the `write` it is given to. Like `LuaStack`, it never raises a Lua error: raw table
/// access only, stack space checked first, while the VM's memory cap is lifted.
public struct LuaArgumentWriter {
    let stack: LuaStack
    private var state: OpaquePointer { stack.state }
    /// How many arguments the handler's function can receive: its fixed parameters, or all when
    /// it takes `...`. A Lua function called with more drops the rest, so a writer may stop after
    /// this many: `function() ... end` needs no `request` table built for it.
    public let accepted: Int

    init(stack: LuaStack, accepted: Int = .max) {
        self.stack = stack
        self.accepted = accepted
    }

    /// Pushes a value.
    public func push(_ value: LuaValue) throws(LuaConversionError) {
        try stack.push(value)
    }

    /// Pushes a new table with room for `fields` named fields; `body` fills it with ``field(_:_:)``.
    public func table(fields: Int, _ body: () throws(LuaConversionError) -> Void) throws(LuaConversionError) {
        guard lua_checkstack(state, 4) != 0 else { throw LuaConversionError("Lua stack exhausted") }
        lua_createtable(state, 0, Int32(clamping: fields))
        try body()
    }

    /// Sets `key` of the table ``table(fields:_:)`` is filling to a value. Field names given as
    /// literals are pushed from the VM's cache of names (`picloud_push_key`).
    public func field(_ key: StaticString, _ value: LuaValue) throws(LuaConversionError) {
        guard lua_checkstack(state, 4) != 0 else { throw LuaConversionError("Lua stack exhausted") }
        stack.pushKey(key)
        try stack.push(value)
        lua_rawset(state, -3)
    }

    /// Sets `key` to a string.
    public func field(_ key: StaticString, string: String) throws(LuaConversionError) {
        guard lua_checkstack(state, 4) != 0 else { throw LuaConversionError("Lua stack exhausted") }
        stack.pushKey(key)
        stack.pushString(string)
        lua_rawset(state, -3)
    }

    /// Sets `key` to a string of bytes (any bytes: Lua strings hold them).
    public func field(_ key: StaticString, bytes: [UInt8]) throws(LuaConversionError) {
        guard lua_checkstack(state, 4) != 0 else { throw LuaConversionError("Lua stack exhausted") }
        stack.pushKey(key)
        stack.pushBytes(bytes)
        lua_rawset(state, -3)
    }

    /// Sets `key` to a new table with room for `fields` named fields, filled by `body`.
    public func field(_ key: StaticString, tableOf fields: Int, _ body: () throws(LuaConversionError) -> Void) throws(LuaConversionError) {
        guard lua_checkstack(state, 4) != 0 else { throw LuaConversionError("Lua stack exhausted") }
        stack.pushKey(key)
        lua_createtable(state, 0, Int32(clamping: fields))
        try body()
        lua_rawset(state, -3)
    }

    /// Sets the field `name` (a name known only at run time: a header, a query parameter) to a string.
    public func field(named name: String, string: String) throws(LuaConversionError) {
        guard lua_checkstack(state, 4) != 0 else { throw LuaConversionError("Lua stack exhausted") }
        stack.pushString(name)
        stack.pushString(string)
        lua_rawset(state, -3)
    }
}
