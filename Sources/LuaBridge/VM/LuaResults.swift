#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CLua
import CLuaShim

/// Reads what a handler returned straight off its coroutine's stack, instead of having it
/// converted to ``LuaValue``s first.
///
/// A caller that turns the results into something else at once (an endpoint's HTTP answer, JSON
/// text) can skip the tree of dictionaries the conversion builds only for it to be dropped. The
/// VM calls ``read(_:)`` on its thread when the handler returns; when it takes the results, the
/// invocation finishes with no values, and the reader has what it made of them. When it does not
/// (a shape it does not handle, a value it would have to reject), the results are converted as
/// usual, so every error reads as it always did.
public protocol LuaResultReader: AnyObject, Sendable {
    /// Takes the results (true), or leaves them to be converted (false). Runs on the VM's thread,
    /// before the invocation's completion.
    func read(_ results: LuaResults) -> Bool
}

/// A handler's results on its coroutine's stack, valid only inside ``LuaResultReader/read(_:)``.
///
/// As ``LuaStack``, nothing here raises a Lua error, runs a metamethod or allocates a Lua
/// object: tables are read raw, field names are compared in place, and stack space is checked
/// before anything is pushed.
public struct LuaResults {
    let stack: LuaStack
    var state: OpaquePointer { stack.state }
    /// The stack index of the first value.
    let base: Int32
    /// How many values.
    public let count: Int

    /// What kind of value a position holds.
    public enum Kind: Sendable {
        case none, `nil`, boolean, number, string, table, null, other
    }

    init(stack: LuaStack, base: Int32, count: Int) {
        self.stack = stack
        self.base = base
        self.count = count
    }

    private func index(_ position: Int) -> Int32? {
        (0..<count).contains(position) ? base + Int32(position) : nil
    }

    /// The kind of value at `position` (``Kind/none`` past the last).
    public func kind(_ position: Int) -> Kind {
        guard let index = index(position) else { return .none }
        switch lua_type(state, index) {
        case LUA_TNIL: return .nil
        case LUA_TBOOLEAN: return .boolean
        case LUA_TNUMBER: return .number
        case LUA_TSTRING: return .string
        case LUA_TTABLE: return .table
        case LUA_TLIGHTUSERDATA where picloud_is_null(state, index) != 0: return .null
        default: return .other
        }
    }

    /// The value at `position`, converted as results usually are (nil past the last).
    public func value(_ position: Int) throws(LuaConversionError) -> LuaValue {
        guard let index = index(position) else { return .nil }
        return try stack.value(at: index)
    }

    /// The value at `position` as JSON text: exactly what `LuaJSON.encode` gives for
    /// ``value(_:)``, written without converting it first. Nil when that would fail (a value JSON
    /// cannot hold, one that cannot leave Lua) and for what this encoder leaves to the usual way
    /// (non-ASCII or colliding object keys, very deep nesting, more than 10,000 tables): convert the value then.
    public func json(_ position: Int) -> [UInt8]? {
        guard let index = index(position) else { return nil }
        var writer = LuaJSON.Writer(pretty: false, maxDepth: LuaJSON.defaultMaxDepth)
        let top = lua_gettop(state)
        defer { lua_settop(state, top) }
        // Nesting within both limits: the conversion's (tables counted from 1) and the encoder's.
        let limit = max(1, min(stack.maxDepth, LuaJSON.defaultMaxDepth - 1))
        let written = withUnsafeTemporaryAllocation(of: UnsafeRawPointer?.self, capacity: limit) { path in
            var walk = StackWalk(path: path, tables: StackWalk.maxTables)
            return writer.write(stackValue: index, state: state, depth: 0, limit: limit, walk: &walk)
        }
        return written ? writer.out : nil
    }

    /// When the value at `position` is a table with at least one field, all named by strings in
    /// `names`: those fields (absent ones nil), in the order of `names`, as results of their own.
    /// Nil for anything else. The fields stay on the stack until the reader returns.
    public func fields(of position: Int, named names: [StaticString]) -> LuaResults? {
        guard let table = index(position), lua_type(state, table) == LUA_TTABLE,
              lua_checkstack(state, Int32(names.count) + 3) != 0
        else { return nil }
        let first = lua_gettop(state) + 1
        for _ in names { lua_pushnil(state) }
        var found = 0
        lua_pushnil(state)
        while lua_next(state, table) != 0 {
            // The key's bytes, read in place: only for string keys (converting a number key
            // would confuse lua_next).
            var length = 0
            guard lua_type(state, -2) == LUA_TSTRING, let pointer = picloud_tolstring(state, -2, &length),
                  let slot = names.firstIndex(where: { $0.utf8CodeUnitCount == length && memcmp($0.utf8Start, pointer, length) == 0 })
            else {
                lua_settop(state, first - 1)
                return nil
            }
            lua_copy(state, -1, first + Int32(slot))
            picloud_pop(state, 1)
            found += 1
        }
        guard found > 0 else {
            lua_settop(state, first - 1)
            return nil
        }
        return LuaResults(stack: stack, base: first, count: names.count)
    }
}

/// What the stack JSON encoder keeps while it walks a value.
struct StackWalk {
    /// The tables being written, outermost first: a table inside itself is a cycle, left to the
    /// conversion (which rejects it) instead of being walked down to the depth limit along every
    /// path, which for a table referring to itself twice would never end.
    let path: UnsafeMutableBufferPointer<UnsafeRawPointer?>
    /// Tables that may still be written. A table that several fields refer to is written for each,
    /// and a few dozen that each refer twice to the next would be billions of them: past this many
    /// the value is left to the conversion, which bounds such copies and says so. (Answers this
    /// large gain little from skipping the conversion anyway.)
    var tables: Int

    static let maxTables = 10_000
}

extension LuaJSON.Writer {
    /// Writes the value at stack `index` as ``write(_:depth:)`` would write its conversion
    /// (``LuaStack/value(at:)``); false when it cannot, or leaves it to the usual way (see
    /// ``LuaResults/json(_:)``). Tables are read raw; `depth` counts the tables around this one.
    mutating func write(
        stackValue index: Int32, state: OpaquePointer, depth: Int, limit: Int, walk: inout StackWalk
    ) -> Bool {
        switch lua_type(state, index) {
        case LUA_TNIL:
            out.append(contentsOf: "null".utf8)
        case LUA_TLIGHTUSERDATA:
            guard picloud_is_null(state, index) != 0 else { return false }
            out.append(contentsOf: "null".utf8)
        case LUA_TBOOLEAN:
            out.append(contentsOf: (lua_toboolean(state, index) != 0 ? "true" : "false").utf8)
        case LUA_TNUMBER:
            if picloud_isinteger(state, index) != 0 {
                out.append(contentsOf: String(Int64(picloud_tointeger(state, index))).utf8)
            } else {
                let number = Double(picloud_tonumber(state, index))
                guard number.isFinite else { return false }
                out.append(contentsOf: number.description.utf8)
            }
        case LUA_TSTRING:
            var length = 0
            guard let pointer = picloud_tolstring(state, index, &length) else { return false }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: length)
            guard Self.isUTF8(bytes) else { return false }
            writeString(bytes)
        case LUA_TTABLE:
            return writeTable(at: lua_absindex(state, index), state: state, depth: depth + 1, limit: limit, walk: &walk)
        default:
            return false
        }
        return true
    }

    /// A table: an array when its keys are exactly 1...n, else an object with sorted keys, as
    /// ``LuaStack`` converts and ``write(_:depth:)`` writes it. Its values are gathered on the
    /// stack in the order `lua_next` gives them, then written in the output's order.
    private mutating func writeTable(
        at table: Int32, state: OpaquePointer, depth: Int, limit: Int, walk: inout StackWalk
    ) -> Bool {
        walk.tables -= 1
        guard depth <= limit, walk.tables >= 0, let pointer = lua_topointer(state, table) else { return false }
        // path[0..<depth - 1] holds the tables around this one.
        guard !walk.path[0..<(depth - 1)].contains(pointer) else { return false }
        walk.path[depth - 1] = pointer
        let base = lua_gettop(state)
        defer { lua_settop(state, base) }
        // A table of one field (most response objects) needs no arrays: its key waits in `single`.
        var single: Key?
        var keys: [Key] = []
        var count = 0
        var isSequence = true
        var largestKey: Int64 = 0
        guard lua_checkstack(state, 3) != 0 else { return false }
        lua_pushnil(state)
        while lua_next(state, table) != 0 {
            let key: Key
            var length = 0
            switch lua_type(state, -2) {
            case LUA_TNUMBER where picloud_isinteger(state, -2) != 0:
                let number = Int64(picloud_tointeger(state, -2))
                if number < 1 { isSequence = false } else { largestKey = max(largestKey, number) }
                key = .integer(number)
            case LUA_TNUMBER:
                isSequence = false
                key = .text(Array(String(describing: Double(picloud_tonumber(state, -2))).utf8))
            case LUA_TSTRING:
                isSequence = false
                guard let pointer = picloud_tolstring(state, -2, &length) else { return false }
                key = .string(UnsafeRawBufferPointer(start: pointer, count: length))
            default:
                return false
            }
            if count == 0 {
                single = key
            } else {
                if let first = single {
                    keys.append(first)
                    single = nil
                }
                keys.append(key)
            }
            count += 1
            // The value stays (below the key, which lua_next takes next): values pile up in order.
            lua_rotate(state, -2, 1)
            guard lua_checkstack(state, 3) != 0 else { return false }
        }
        let first = base + 1 // the first value's index
        if count == 0 {
            out.append(contentsOf: (picloud_is_array(state, table) != 0 ? "[]" : "{}").utf8)
            return true
        }
        if let key = single {
            if case .integer(1) = key {
                out.append(UInt8(ascii: "["))
                guard write(stackValue: first, state: state, depth: depth, limit: limit, walk: &walk) else { return false }
                out.append(UInt8(ascii: "]"))
                return true
            }
            if case .string(let bytes) = key, bytes.contains(where: { $0 >= 0x80 }) { return false }
            out.append(UInt8(ascii: "{"))
            key.withBytes { writeString($0.bindMemory(to: UInt8.self)) }
            out.append(UInt8(ascii: ":"))
            guard write(stackValue: first, state: state, depth: depth, limit: limit, walk: &walk) else { return false }
            out.append(UInt8(ascii: "}"))
            return true
        }
        if isSequence && largestKey == Int64(count) {
            // Keys 1...count, each once: place every value at its key.
            var order = [Int32](repeating: 0, count: count)
            for (offset, key) in keys.enumerated() {
                guard case .integer(let number) = key else { return false }
                order[Int(number) - 1] = first + Int32(offset)
            }
            out.append(UInt8(ascii: "["))
            for (offset, index) in order.enumerated() {
                if offset > 0 { out.append(UInt8(ascii: ",")) }
                guard write(stackValue: index, state: state, depth: depth, limit: limit, walk: &walk) else { return false }
            }
            out.append(UInt8(ascii: "]"))
            return true
        }
        // Object keys compare as Swift strings do; for ASCII that is byte order. Other keys, and
        // keys that would collide as strings (1 and "1"), are left to the conversion.
        var named: [(key: Key, index: Int32)] = []
        named.reserveCapacity(count)
        for (offset, key) in keys.enumerated() {
            switch key {
            case .string(let bytes):
                guard !bytes.contains(where: { $0 >= 0x80 }) else { return false }
                named.append((key, first + Int32(offset)))
            case .integer(let number):
                named.append((.text(Array(String(number).utf8)), first + Int32(offset)))
            case .text:
                named.append((key, first + Int32(offset)))
            }
        }
        named.sort { $0.key.isLess(than: $1.key) }
        out.append(UInt8(ascii: "{"))
        for (offset, field) in named.enumerated() {
            if offset > 0 {
                guard named[offset - 1].key.isLess(than: field.key) else { return false } // a collision
                out.append(UInt8(ascii: ","))
            }
            field.key.withBytes { writeString($0.bindMemory(to: UInt8.self)) }
            out.append(UInt8(ascii: ":"))
            guard write(stackValue: field.index, state: state, depth: depth, limit: limit, walk: &walk) else { return false }
        }
        out.append(UInt8(ascii: "}"))
        return true
    }

    /// A table key as the conversion names it.
    private enum Key {
        case integer(Int64)
        /// A float key's name, or an integer key's in an object.
        case text([UInt8])
        /// A string key's bytes, in the Lua string (which the table keeps alive while it is on the stack).
        case string(UnsafeRawBufferPointer)

        func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
            switch self {
            case .integer(let number): Array(String(number).utf8).withUnsafeBytes(body)
            case .text(let bytes): bytes.withUnsafeBytes(body)
            case .string(let bytes): body(bytes)
            }
        }

        func isLess(than other: Key) -> Bool {
            withBytes { a in
                other.withBytes { b in
                    let common = min(a.count, b.count)
                    if common > 0, let x = a.baseAddress, let y = b.baseAddress {
                        let order = memcmp(x, y, common)
                        if order != 0 { return order < 0 }
                    }
                    return a.count < b.count
                }
            }
        }
    }

    /// Whether the bytes are valid UTF-8 (what ``LuaValue/init(bytes:)`` makes a string of).
    static func isUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.allSatisfy { $0 < 0x80 } || LuaValue.validUTF8(bytes) != nil
    }
}
