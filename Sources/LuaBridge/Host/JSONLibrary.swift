import CLua
import CLuaShim

/// `json.encode`, `json.decode`, `json.null` and `json.array`, part of every sandbox.
enum JSONLibrary {
    static let library = LuaLibrary(
        name: "json",
        functions: [
            "encode": { (call: LuaHostCall) throws -> LuaHostResult in
                let value = try call.value(1)
                let pretty = try call.optionalTable(2)?["pretty"]?.boolValue ?? false
                do throws(LuaJSONError) {
                    return .value(LuaValue(bytes: try LuaJSON.encode(value, pretty: pretty)))
                } catch {
                    throw LuaArgumentError(position: 1, message: error.message)
                }
            },
            "decode": { (call: LuaHostCall) throws -> LuaHostResult in
                let text = try call.bytes(1)
                do throws(LuaJSONError) {
                    return .value(try LuaJSON.decode(text))
                } catch {
                    throw LuaScriptError("json.decode: \(error.message)")
                }
            },
            "array": { (call: LuaHostCall) throws -> LuaHostResult in
                // Marks a table as a JSON array, so that an empty one encodes as [] (not {}).
                if call.count == 0 || call.type(1) == LUA_TNIL { return .value(.array([])) }
                guard call.type(1) == LUA_TTABLE else {
                    throw LuaArgumentError(position: 1, expected: "table", got: try call.value(1))
                }
                guard picloud_mark_array(call.state, 1) != 0 else {
                    throw LuaArgumentError(position: 1, message: "table already has a metatable")
                }
                return .argument(1)
            },
        ],
        values: ["null": .null]
    )
}
