import Foundation
import LuaBridge
import NIOHTTP1
import Services
import Testing

/// Every admin route of `/openapi.json` called with no key, a mistyped key, a key of each scope on
/// the route's app, the same scopes on another app, and every instance scope: each answer is
/// 401, 403 or let through exactly as the route's documented scope says.
@Suite("Admin routes × scopes")
struct AuthTableTests {
    struct Operation: CustomStringConvertible {
        let method: HTTPMethod
        let path: String
        /// The documented scope; "any" for routes any valid key may call.
        let scope: String
        var description: String { "\(method) \(path)" }
    }

    /// The admin operations and their scopes, read from the API description.
    static func operations(_ server: Harness) async throws -> [Operation] {
        let document = try await server.request(.GET, "/openapi.json", token: nil).json
        guard case .object(let paths)? = document["paths"] else { throw HarnessError(message: "no paths") }
        var operations: [Operation] = []
        for (path, methods) in paths where path.hasPrefix("/admin/") {
            guard case .object(let byMethod) = methods else { continue }
            for (method, operation) in byMethod {
                let description = operation["description"]?.stringValue ?? ""
                guard let start = description.range(of: "`"), let end = description[start.upperBound...].range(of: "`") else {
                    throw HarnessError(message: "\(method) \(path) documents no scope")
                }
                operations.append(Operation(method: HTTPMethod(rawValue: method.uppercased()), path: path, scope: String(description[start.upperBound..<end.lowerBound])))
            }
        }
        // Deleting the app goes last: everything else needs it.
        return operations.sorted { ($0.method == .DELETE && $0.path == "/admin/apps/{app}" ? 1 : 0, $0.path, $0.method.rawValue) < ($1.method == .DELETE && $1.path == "/admin/apps/{app}" ? 1 : 0, $1.path, $1.method.rawValue) }
    }

    struct Caller {
        let name: String
        let token: String?
        /// Whether this caller may act with `scope` on app "alpha".
        let allowed: (String) -> Bool
        /// 401 for anything that needs a key.
        var anonymous = false
    }

    @Test("each admin route answers 401, 403 or serves exactly as its scope says")
    func table() async throws {
        try await Harness.run { server in
            try await server.deployHandler("alpha", source: "return function() return 'a' end")
            try await server.request(.POST, "/admin/apps", json: ["name": "beta"])
            var callers = [
                Caller(name: "no key", token: nil, allowed: { _ in false }, anonymous: true),
                Caller(name: "mistyped key", token: "pc_not-a-real-key-0123456789abcdef", allowed: { _ in false }, anonymous: true),
            ]
            for scope in Scope.allCases where scope != .instanceAdmin {
                let own = try await server.key("alpha", [scope.rawValue])
                callers.append(Caller(name: "alpha \(scope.rawValue)", token: own, allowed: { needed in needed == "any" || (Scope(rawValue: needed).map { scope.grants($0) && $0 != .instanceAdmin } ?? false) }))
                let other = try await server.key("beta", [scope.rawValue])
                callers.append(Caller(name: "beta \(scope.rawValue)", token: other, allowed: { $0 == "any" }))
            }
            let instance = try await server.key(nil, ["instance:admin"])
            callers.append(Caller(name: "instance admin", token: instance, allowed: { _ in true }))

            let operations = try await Self.operations(server)
            #expect(operations.count >= 40, "\(operations.count) admin operations")
            var checked = 0
            for operation in operations {
                let path = operation.path.replacingOccurrences(of: "{app}", with: "alpha")
                    .replacingOccurrences(of: "{key}", with: "k").replacingOccurrences(of: "{path}", with: "f.txt")
                    .replacingOccurrences(of: "{collection}", with: "c").replacingOccurrences(of: "{topic}", with: "t")
                    .replacingOccurrences(of: "{name}", with: "S").replacingOccurrences(of: "{id}", with: "missing-id")
                for caller in callers {
                    // Only the last caller may delete the app, so every caller meets it.
                    if operation.method == .DELETE, operation.path == "/admin/apps/{app}", caller.name == "instance admin" { continue }
                    let answer = try await server.request(operation.method, path, body: [], contentType: "application/json", token: caller.token)
                    checked += 1
                    let expected: String
                    if operation.scope.isEmpty || (operation.scope == "any" && !caller.anonymous) || caller.allowed(operation.scope) {
                        expected = "through"
                        #expect(![401, 403].contains(answer.status), "\(operation) as \(caller.name): \(answer.status) \(answer.text)")
                    } else if caller.anonymous {
                        expected = "401"
                        #expect(answer.status == 401 && answer.errorCode == "unauthorized", "\(operation) as \(caller.name): \(answer.status) \(answer.text)")
                    } else {
                        expected = "403"
                        #expect(answer.status == 403 && answer.errorCode == "forbidden", "\(operation) as \(caller.name): \(answer.status) \(answer.text)")
                    }
                    #expect(answer.status < 500, "\(operation) as \(caller.name) (\(expected)): \(answer.status) \(answer.text)")
                }
            }
            #expect(checked >= 40 * 15)
            // And the instance admin deletes the app last.
            #expect(try await server.request(.DELETE, "/admin/apps/alpha").status == 204)
        }
    }

    @Test("a revoked key stops working on the next request, for every kind of route")
    func revocation() async throws {
        try await Harness.run { server in
            try await server.deployHandler("alpha", auth: "key", source: "return function() return 'a' end")
            let key = try await server.key("alpha", ["app:admin", "invoke"])
            #expect(try await server.request(.GET, "/admin/apps/alpha/kv", token: key).status == 200)
            #expect(try await server.call("alpha", .GET, "/x", token: key).status == 200)
            let id = try #require(try await server.request(.GET, "/admin/apps/alpha/keys").json["items"]?.arrayValue?.first?["id"]?.stringValue)
            #expect(try await server.request(.DELETE, "/admin/apps/alpha/keys/\(id)", token: key).status == 204, "a key may revoke itself")
            #expect(try await server.request(.GET, "/admin/apps/alpha/kv", token: key).status == 401)
            #expect(try await server.call("alpha", .GET, "/x", token: key).status == 401)
        }
    }
}
