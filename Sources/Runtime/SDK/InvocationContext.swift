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
        var fields: [String: LuaValue] = [
            "app": .string(app), "request_id": .string(requestID), "attempt": .integer(Int64(attempt)), "depth": .integer(Int64(depth)),
            "deadline": .number(deadline),
        ]
        if let trigger { fields["trigger"] = .string(trigger) }
        if let principal {
            fields["principal"] = .object([
                "key_id": .string(principal.keyID),
                "scopes": .array(principal.scopes.map(\.rawValue).sorted().map(LuaValue.string)),
            ])
        }
        return .object(fields)
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
