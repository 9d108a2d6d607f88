import Hummingbird
import LuaBridge
import Services

/// `/admin/...`: apps, keys, deployments, endpoints, logs, data browsing, secrets.
struct AdminController {
    let core: PiCloudCore

    var services: PiCloudServices { core.services }

    func register(on router: Router<PiCloudRequestContext>) {
        let admin = router.group("admin")
        registerApps(on: admin)
        registerKeys(on: admin)
        registerDeployments(on: admin)
        registerData(on: admin)
        registerLogs(on: admin)
        registerSecrets(on: admin)
        registerTriggers(on: admin)
        registerTopics(on: admin)
    }

    /// The `:app` parameter of a route, after checking the caller may act with `scope` on it and
    /// that it exists (401/403 come before 404, so a key cannot probe other apps' names).
    func app(_ context: PiCloudRequestContext, _ scope: Scope) async throws -> (name: String, principal: Principal) {
        let name = try context.parameters.require("app")
        let principal = try context.require(scope, app: name)
        _ = try await services.apps.get(name)
        return (name, principal)
    }

    // MARK: Apps

    func registerApps(on admin: RouterGroup<PiCloudRequestContext>) {
        admin.post("apps") { request, context in
            _ = try context.require(.instanceAdmin, app: nil)
            let body = try await request.jsonBody(limit: 64 << 10)
            let app = try await services.apps.create(name: try body.requiredString("name"))
            return Response.json(appJSON(app), status: .created)
        }
        admin.get("apps") { _, context in
            let principal = try context.authenticated()
            let apps = try await services.apps.list().filter { principal.app == nil || principal.app == $0.name }
            return Response.json(["items": .array(apps.map(appJSON))])
        }
        admin.get("apps/:app") { _, context in
            let (name, _) = try await app(context, .read)
            return Response.json(appJSON(try await services.apps.get(name)))
        }
        admin.delete("apps/:app") { _, context in
            let name = try context.parameters.require("app")
            _ = try context.require(.instanceAdmin, app: nil)
            try await services.apps.delete(name)
            core.registry.remove(app: name)
            core.triggers.remove(app: name)
            core.realtime.close(app: name)
            services.topics.forget(app: name)
            return Response.noContent()
        }
    }

    func appJSON(_ app: AppRecord) -> LuaValue {
        var fields: [String: LuaValue] = ["name": .string(app.name), "created_at": app.createdAt.iso8601]
        fields["current_version"] = app.currentVersion.map { .integer(Int64($0)) } ?? .null
        if let deployment = core.registry.deployment(for: app.name) {
            fields["endpoints"] = .integer(Int64(deployment.manifest.endpoints.count))
        }
        return .object(fields)
    }

    // MARK: Keys

    func registerKeys(on admin: RouterGroup<PiCloudRequestContext>) {
        admin.post("apps/:app/keys") { request, context in
            let (name, _) = try await app(context, .appAdmin)
            return try await createKey(request, app: name)
        }
        admin.get("apps/:app/keys") { _, context in
            let (name, _) = try await app(context, .appAdmin)
            return Response.json(["items": .array(try await services.keys.list(app: name).map(keyJSON))])
        }
        admin.delete("apps/:app/keys/:id") { _, context in
            let (name, _) = try await app(context, .appAdmin)
            guard try await services.keys.revoke(id: try context.parameters.require("id"), app: name) else {
                throw ServiceError(.notFound, "no such key in app '\(name)'")
            }
            return Response.noContent()
        }
        admin.post("keys") { request, context in
            _ = try context.require(.instanceAdmin, app: nil)
            return try await createKey(request, app: nil)
        }
        admin.get("keys") { _, context in
            _ = try context.require(.instanceAdmin, app: nil)
            return Response.json(["items": .array(try await services.keys.list(app: nil).map(keyJSON))])
        }
        admin.delete("keys/:id") { _, context in
            _ = try context.require(.instanceAdmin, app: nil)
            guard try await services.keys.revoke(id: try context.parameters.require("id"), app: nil) else {
                throw ServiceError(.notFound, "no such instance key")
            }
            return Response.noContent()
        }
    }

    func createKey(_ request: Request, app: String?) async throws -> Response {
        let body = try await request.jsonBody(limit: 64 << 10)
        let scopeNames: [String]
        switch body["scopes"] {
        case .array(let items)?: scopeNames = items.compactMap(\.stringValue)
        case .string(let text)?: scopeNames = [text]
        default: throw ServiceError(.invalidInput, "field 'scopes' (a list of scope names) is required")
        }
        let scopes = try Scope.parse(scopeNames.joined(separator: " "))
        let created = try await services.keys.create(app: app, name: body["name"]?.stringValue ?? "key", scopes: scopes)
        guard case .object(var fields) = keyJSON(created.record) else { return Response.noContent() }
        fields["key"] = .string(created.secret)
        fields["note"] = "store this key now: it is not shown again"
        return Response.json(.object(fields), status: .created)
    }

    func keyJSON(_ key: KeyRecord) -> LuaValue {
        .object([
            "id": .string(key.id), "name": .string(key.name), "prefix": .string(key.prefix), "app": key.app.map(LuaValue.string) ?? .null,
            "scopes": .array(key.scopes.map(\.rawValue).sorted().map(LuaValue.string)), "created_at": key.createdAt.iso8601,
        ])
    }

    // MARK: Secrets

    func registerSecrets(on admin: RouterGroup<PiCloudRequestContext>) {
        admin.get("apps/:app/secrets") { _, context in
            let (name, _) = try await app(context, .appAdmin)
            let items = try await services.secrets.list(app: name).map { secret -> LuaValue in
                ["name": .string(secret.name), "created_at": secret.createdAt.iso8601, "updated_at": secret.updatedAt.iso8601]
            }
            return Response.json(["items": .array(items)])
        }
        admin.put("apps/:app/secrets/:name") { request, context in
            let (name, _) = try await app(context, .appAdmin)
            let body = try await request.jsonBody(limit: 128 << 10)
            let secret = try context.parameters.require("name")
            try await services.secrets.set(app: name, name: secret, value: Array(try body.requiredString("value").utf8))
            return Response.json(["name": .string(secret), "note": "stored encrypted; the value is not shown again"])
        }
        admin.delete("apps/:app/secrets/:name") { _, context in
            let (name, _) = try await app(context, .appAdmin)
            let secret = try context.parameters.require("name")
            guard try await services.secrets.delete(app: name, name: secret) else { throw ServiceError(.notFound, "no secret named '\(secret)'") }
            return Response.noContent()
        }
    }
}
