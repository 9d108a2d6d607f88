import LuaBridge
import Services

/// What host functions know about the invocation that calls them.
struct InvocationContext: Sendable {
    var app: String
    var requestID: String
    var principal: Principal?
    var deadline: Double

    /// The `ctx` table handlers receive.
    var luaValue: LuaValue {
        var fields: [String: LuaValue] = [
            "app": .string(app), "request_id": .string(requestID), "attempt": 1, "depth": 0, "deadline": .number(deadline),
        ]
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

    /// `{ limit = n, after = key }` of a listing call (limit 1 to 1000, default 100).
    func page(_ position: Int) throws -> (limit: Int, after: String?) {
        let options = try optionalTable(position)
        let limit = options?["limit"]?.integerValue ?? 100
        guard (1...1000).contains(limit) else { throw LuaArgumentError(position: position, message: "limit must be an integer from 1 to 1000") }
        return (Int(limit), options?["after"]?.stringValue)
    }
}
