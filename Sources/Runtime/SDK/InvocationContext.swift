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
}
