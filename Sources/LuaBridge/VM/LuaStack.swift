import CLua
import CLuaShim

/// Raw access to one Lua thread's stack for converting values both ways.
///
/// Nothing here may raise a Lua error: it uses raw table access only (no metamethods run), checks
/// stack space before pushing, and runs while the VM's memory cap is lifted.
struct LuaStack {
    let state: OpaquePointer
    let maxDepth: Int
    /// The most values one conversion from Lua may copy out of tables it has already converted.
    /// Swift values are trees, so a table referred to by several fields is converted once for
    /// each: a few dozen tables that each refer twice to the next would expand to billions of
    /// values, on the VM's thread. Tables reached once cost nothing here (the VM's memory cap
    /// bounds them).
    let maxCopiedValues: Int

    init(state: OpaquePointer, maxDepth: Int) {
        self.state = state
        self.maxDepth = maxDepth
        self.maxCopiedValues = LuaPoolConfiguration.defaultMaxCopiedValues
    }

    /// With the limits of values crossing in a pool's VMs.
    init(state: OpaquePointer, _ configuration: LuaPoolConfiguration) {
        self.state = state
        self.maxDepth = configuration.maxValueDepth
        self.maxCopiedValues = configuration.maxCopiedValues
    }

    // MARK: Swift to Lua

    /// Pushes a value; on failure the stack is as it was.
    func push(_ value: LuaValue) throws(LuaConversionError) {
        let top = lua_gettop(state)
        do {
            try push(value, depth: 0)
        } catch {
            lua_settop(state, top)
            throw error
        }
    }

    /// Pushes several values; on failure the stack is as it was.
    func push(_ values: [LuaValue]) throws(LuaConversionError) {
        let top = lua_gettop(state)
        guard lua_checkstack(state, Int32(clamping: values.count + 1)) != 0 else {
            throw LuaConversionError("too many values (\(values.count))")
        }
        do {
            for value in values { try push(value, depth: 0) }
        } catch {
            lua_settop(state, top)
            throw error
        }
    }

    func pushString(_ text: String) {
        var text = text
        text.withUTF8 { buffer in
            if let base = buffer.baseAddress {
                base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { _ = lua_pushlstring(state, $0, buffer.count) }
            } else {
                _ = lua_pushlstring(state, "", 0)
            }
        }
    }

    /// Pushes a field name given as a literal, from the VM's cache of names.
    func pushKey(_ key: StaticString) {
        guard key.hasPointerRepresentation else {
            pushString(key.description)
            return
        }
        key.utf8Start.withMemoryRebound(to: CChar.self, capacity: key.utf8CodeUnitCount) { picloud_push_key(state, $0, key.utf8CodeUnitCount) }
    }

    func pushBytes(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress {
                base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { _ = lua_pushlstring(state, $0, buffer.count) }
            } else {
                _ = lua_pushlstring(state, "", 0)
            }
        }
    }

    private func push(_ value: LuaValue, depth: Int) throws(LuaConversionError) {
        guard depth <= maxDepth else { throw LuaConversionError("value nested deeper than \(maxDepth) levels") }
        guard lua_checkstack(state, 3) != 0 else { throw LuaConversionError("Lua stack exhausted") }
        switch value {
        case .nil: lua_pushnil(state)
        case .null: lua_pushlightuserdata(state, nil)
        case .boolean(let flag): lua_pushboolean(state, flag ? 1 : 0)
        case .integer(let number): lua_pushinteger(state, lua_Integer(number))
        case .number(let number): lua_pushnumber(state, number)
        case .string(let text): pushString(text)
        case .bytes(let bytes): pushBytes(bytes)
        case .array(let items):
            lua_createtable(state, Int32(clamping: items.count), 0)
            for (offset, item) in items.enumerated() {
                try push(item, depth: depth + 1)
                lua_rawseti(state, -2, lua_Integer(offset + 1))
            }
            picloud_push_array_mt(state)
            lua_setmetatable(state, -2)
        case .object(let fields):
            lua_createtable(state, 0, Int32(clamping: fields.count))
            for (key, item) in fields {
                pushString(key)
                try push(item, depth: depth + 1)
                lua_rawset(state, -3)
            }
        }
    }

    // MARK: Lua to Swift

    /// Converts the value at `index` (which stays on the stack).
    func value(at index: Int32) throws(LuaConversionError) -> LuaValue {
        let top = lua_gettop(state)
        var walk = Walk(budget: maxCopiedValues)
        do {
            return try value(at: lua_absindex(state, index), depth: 0, copying: false, walk: &walk)
        } catch {
            lua_settop(state, top)
            throw error
        }
    }

    /// Converts the `count` values at the stack top, bottom first.
    func values(count: Int32) throws(LuaConversionError) -> [LuaValue] {
        guard count > 0 else { return [] }
        let top = lua_gettop(state)
        var result: [LuaValue] = []
        result.reserveCapacity(Int(count))
        for index in (top - count + 1)...top {
            result.append(try value(at: index))
        }
        return result
    }

    func string(at index: Int32) -> LuaValue {
        var length = 0
        guard let pointer = picloud_tolstring(state, index, &length) else { return .string("") }
        let buffer = UnsafeRawBufferPointer(start: pointer, count: length).bindMemory(to: UInt8.self)
        return LuaValue(bytes: buffer)
    }

    /// What one conversion keeps while it walks a value.
    private struct Walk {
        /// The tables around the current one, outermost first (one of them again is a cycle).
        var path: [UnsafeRawPointer] = []
        /// Tables converted so far (one of them again is copied).
        var seen: Set<UnsafeRawPointer> = []
        /// Values that may still be copied.
        var budget: Int
    }

    /// `copying`: inside a table converted before, whose values are copies.
    private func value(
        at index: Int32, depth: Int, copying: Bool, walk: inout Walk
    ) throws(LuaConversionError) -> LuaValue {
        if copying {
            walk.budget -= 1
            guard walk.budget >= 0 else {
                throw LuaConversionError(
                    "value copies tables it refers to more than once into more than \(maxCopiedValues) values")
            }
        }
        switch lua_type(state, index) {
        case LUA_TNIL, LUA_TNONE: return .nil
        case LUA_TBOOLEAN: return .boolean(lua_toboolean(state, index) != 0)
        case LUA_TNUMBER:
            if picloud_isinteger(state, index) != 0 { return .integer(Int64(picloud_tointeger(state, index))) }
            return .number(picloud_tonumber(state, index))
        case LUA_TSTRING: return string(at: index)
        case LUA_TLIGHTUSERDATA where picloud_is_null(state, index) != 0: return .null
        case LUA_TTABLE: return try table(at: index, depth: depth + 1, copying: copying, walk: &walk)
        default:
            let name = String(cString: lua_typename(state, lua_type(state, index)))
            throw LuaConversionError("cannot convert a \(name) value")
        }
    }

    private func table(
        at index: Int32, depth: Int, copying: Bool, walk: inout Walk
    ) throws(LuaConversionError) -> LuaValue {
        guard depth <= maxDepth else { throw LuaConversionError("table nested deeper than \(maxDepth) levels") }
        guard let pointer = lua_topointer(state, index) else { throw LuaConversionError("cannot read a table") }
        guard !walk.path.contains(pointer) else { throw LuaConversionError("table contains a reference to itself (a cycle)") }
        guard lua_checkstack(state, 4) != 0 else { throw LuaConversionError("Lua stack exhausted") }
        // Inside a copy everything is a copy; the set is needed only until then.
        let copying = copying || !walk.seen.insert(pointer).inserted
        walk.path.append(pointer)
        defer { walk.path.removeLast() }

        var count: Int64 = 0
        var isSequence = true
        var largestKey: Int64 = 0
        lua_pushnil(state)
        while lua_next(state, index) != 0 {
            count += 1
            if isSequence {
                if lua_type(state, -2) == LUA_TNUMBER, picloud_isinteger(state, -2) != 0 {
                    let key = Int64(picloud_tointeger(state, -2))
                    if key < 1 { isSequence = false } else { largestKey = max(largestKey, key) }
                } else {
                    isSequence = false
                }
            }
            picloud_pop(state, 1)
        }
        if count == 0 {
            return picloud_is_array(state, index) != 0 ? .array([]) : .object([:])
        }
        if isSequence && largestKey == count {
            var items: [LuaValue] = []
            items.reserveCapacity(Int(count))
            for key in 1...count {
                lua_rawgeti(state, index, lua_Integer(key))
                do {
                    items.append(try value(at: lua_gettop(state), depth: depth, copying: copying, walk: &walk))
                } catch {
                    throw error.at("[\(key)]")
                }
                picloud_pop(state, 1)
            }
            return .array(items)
        }
        var fields: [String: LuaValue] = [:]
        fields.reserveCapacity(Int(count))
        lua_pushnil(state)
        while lua_next(state, index) != 0 {
            let key: String
            switch lua_type(state, -2) {
            case LUA_TSTRING:
                guard case .string(let text) = string(at: -2) else {
                    throw LuaConversionError("table key is not valid UTF-8")
                }
                key = text
            case LUA_TNUMBER:
                key = picloud_isinteger(state, -2) != 0
                    ? String(picloud_tointeger(state, -2)) : String(describing: picloud_tonumber(state, -2))
            default:
                let name = String(cString: lua_typename(state, lua_type(state, -2)))
                throw LuaConversionError("cannot convert a table with a \(name) key")
            }
            do {
                fields[key] = try value(at: lua_gettop(state), depth: depth, copying: copying, walk: &walk)
            } catch {
                throw error.at(".\(key)")
            }
            picloud_pop(state, 1)
        }
        return .object(fields)
    }
}

/// A value that cannot cross between Lua and Swift (a function, a cycle, too deep).
public struct LuaConversionError: Error, Sendable, CustomStringConvertible {
    /// What could not be converted.
    public let reason: String
    /// Where in the value, e.g. `.items[3].callback` (empty at the top).
    public let path: String

    init(_ reason: String, path: String = "") {
        self.reason = reason
        self.path = path
    }

    func at(_ component: String) -> LuaConversionError {
        LuaConversionError(reason, path: component + path)
    }

    public var description: String { path.isEmpty ? reason : "\(reason) (at \(path))" }
}
