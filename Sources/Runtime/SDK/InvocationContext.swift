import LuaBridge
import Services

/// What host functions know about the invocation that calls them.
struct InvocationContext: Sendable {
    var app: String
    /// The request id, or the event id for a trigger handler.
    var requestID: String
    var principal: Principal?
    var deadline: Double
    /// How many triggers led here (0: a request or a cron tick).
    var depth = 0
    /// The delivery attempt (1 for requests and first deliveries).
    var attempt = 1
    /// The trigger whose handler runs, if one does.
    var trigger: String?

    /// The `ctx` table handlers receive.
    var luaValue: LuaValue {
        var fields: [String: LuaValue] = [:]
        forEachField { name, value in fields[name.description] = value }
        return .object(fields)
    }

    /// Writes the `ctx` table onto a handler's stack, as ``luaValue`` would be.
    func write(into writer: LuaArgumentWriter) throws(LuaConversionError) {
        try writer.table(fields: 7) { () throws(LuaConversionError) in
            try forEachField { name, value throws(LuaConversionError) in try writer.field(name, value) }
        }
    }

    /// The fields of `ctx`, for both of its forms.
    private func forEachField<Failure: Error>(_ body: (StaticString, LuaValue) throws(Failure) -> Void) throws(Failure) {
        try body("app", .string(app))
        try body("request_id", .string(requestID))
        try body("attempt", .integer(Int64(attempt)))
        try body("depth", .integer(Int64(depth)))
        try body("deadline", .number(deadline))
        if let trigger { try body("trigger", .string(trigger)) }
        if let principal {
            try body("principal", .object([
                "key_id": .string(principal.keyID),
                "scopes": .array(principal.scopes.map(\.rawValue).sorted().map(LuaValue.string)),
            ]))
        }
    }
}

extension LuaHostCall {
    /// The request id of the calling invocation, if it is one.
    var requestID: String? { (context as? InvocationContext)?.requestID }

    /// The trigger depth of the calling invocation (0 outside trigger handlers).
    var depth: Int { (context as? InvocationContext)?.depth ?? 0 }

    /// `{ limit = n, after = key }` of a listing call (limit 1 to 1000, default 100).
    func page(_ position: Int) throws -> (limit: Int, after: String?) {
        let options = try optionalTable(position)
        let limit = options?["limit"]?.integerValue ?? 100
        guard (1...1000).contains(limit) else { throw LuaArgumentError(position: position, message: "limit must be an integer from 1 to 1000") }
        return (Int(limit), options?["after"]?.stringValue)
    }
}
