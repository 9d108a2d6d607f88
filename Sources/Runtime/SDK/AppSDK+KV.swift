import LuaBridge
import Services

extension AppSDK {
    /// `kv.get/set/delete/incr/list`.
    var kvLibrary: LuaLibrary {
        let kv = services.kv
        let app = app
        return LuaLibrary(name: "kv", functions: [
            "get": { call in
                let key = try call.string(1)
                // Answered on this thread when the store can (its read cache, SQLite's point
                // read), without suspending the handler. Only where the call could wait anyway:
                // whether kv.get works in a sort comparator must not depend on the store.
                if call.canSuspend, let known = kv.getNow(app: app, key: key) {
                    guard let entry = known else { return .value(.nil) }
                    return .value(try decodeStored(entry.value, what: "kv.get"))
                }
                return waiting(call) {
                    guard let entry = try await kv.get(app: app, key: key) else { return .value(.nil) }
                    return .value(try LuaJSON.decode(entry.value))
                }
            },
            "set": { call in
                let key = try call.string(1)
                let value = try call.value(2)
                guard value != .nil else { throw LuaArgumentError(position: 2, message: "value expected (use kv.delete to remove a key)") }
                let bytes = try jsonBytes(value, what: "kv.set")
                let ttl = try call.optionalTable(3)?["ttl"]?.doubleValue
                let depth = call.depth
                return waiting(call, result: { .none }) { done in
                    kv.set(app: app, key: key, value: bytes, ttl: ttl, depth: depth, done: done)
                }
            },
            "delete": { call in
                let key = try call.string(1)
                let depth = call.depth
                return waiting(call) { .value(.boolean(try await kv.delete(app: app, key: key, depth: depth))) }
            },
            "incr": { call in
                let key = try call.string(1)
                let delta = try call.optionalInteger(2) ?? 1
                let depth = call.depth
                return waiting(call) { .value(.integer(try await kv.increment(app: app, key: key, by: delta, depth: depth))) }
            },
            "list": { call in
                let prefix = try call.optionalString(1) ?? ""
                let (limit, after) = try call.page(2)
                return waiting(call) {
                    let entries = try await kv.list(app: app, prefix: prefix, after: after, limit: limit + 1)
                    let page = entries.prefix(limit)
                    let items: [LuaValue] = try page.map { .object(["key": .string($0.key), "value": try LuaJSON.decode($0.value)]) }
                    let next: LuaValue = entries.count > limit ? page.last.map { .string($0.key) } ?? .nil : .nil
                    return .values([.array(items), next])
                }
            },
        ])
    }
}

/// A stored JSON value for a script (the store only holds JSON it wrote).
func decodeStored(_ bytes: [UInt8], what: String) throws -> LuaValue {
    do {
        return try LuaJSON.decode(bytes)
    } catch {
        throw LuaScriptError("\(what): \(error.message)")
    }
}
