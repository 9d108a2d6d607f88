import LuaBridge
import NIOHTTP1
import Testing

@Suite("Admin API: apps and keys")
struct AdminAPITests {
    @Test("apps: create, list, get, delete, and every bad input")
    func apps() async throws {
        try await Harness.run { server in
            #expect(try await server.request(.POST, "/admin/apps", json: ["name": "notes"]).status == 201)
            let duplicate = try await server.request(.POST, "/admin/apps", json: ["name": "notes"])
            #expect(duplicate.status == 409 && duplicate.errorCode == "conflict")
            let invalid = try await server.request(.POST, "/admin/apps", json: ["name": "Not Valid"])
            #expect(invalid.status == 400 && invalid.errorCode == "invalid_input")
            let malformed = try await server.request(.POST, "/admin/apps", body: Array("{name:".utf8), contentType: "application/json")
            #expect(malformed.status == 400 && malformed.errorMessage.hasPrefix("malformed JSON"))
            let missing = try await server.request(.POST, "/admin/apps", json: ["nom": "x"])
            #expect(missing.status == 400 && missing.errorMessage.contains("'name'"))
            guard case .array(let apps)? = try await server.request(.GET, "/admin/apps").json["items"] else { Issue.record("no list"); return }
            #expect(apps.map { $0["name"] } == ["notes"] && apps[0]["current_version"] == .null)
            #expect(try await server.request(.GET, "/admin/apps/nope").status == 404)
            #expect(try await server.request(.DELETE, "/admin/apps/notes").status == 204)
            #expect(try await server.request(.GET, "/admin/apps/notes").status == 404)
            #expect(try await server.request(.DELETE, "/admin/apps/notes").status == 404)
        }
    }

    @Test("no key is 401, a bad key is 401, a key without the scope is 403")
    func authentication() async throws {
        try await Harness.run { server in
            try await server.request(.POST, "/admin/apps", json: ["name": "notes"])
            let none = try await server.request(.GET, "/admin/apps/notes", token: nil)
            #expect(none.status == 401 && none.errorCode == "unauthorized")
            let wrong = try await server.request(.GET, "/admin/apps/notes", token: "pc_not-a-real-key-at-all")
            #expect(wrong.status == 401 && wrong.errorMessage.contains("not valid"))
            let reader = try await server.key("notes", ["data:read"])
            let forbidden = try await server.request(.PUT, "/admin/apps/notes/deployment", json: ["manifest": "", "files": [:]], token: reader)
            #expect(forbidden.status == 403 && forbidden.errorCode == "forbidden" && forbidden.errorMessage.contains("app:deploy"))
            #expect(try await server.request(.POST, "/admin/apps", json: ["name": "other"], token: reader).status == 403)
        }
    }

    @Test("keys: shown once, listed without their secret, scoped to one app, revoked at once")
    func keys() async throws {
        try await Harness.run { server in
            try await server.request(.POST, "/admin/apps", json: ["name": "a"])
            try await server.request(.POST, "/admin/apps", json: ["name": "b"])
            let created = try await server.request(.POST, "/admin/apps/a/keys", json: ["name": "ci", "scopes": ["app:deploy", "data:read"]])
            #expect(created.status == 201)
            let secret = try #require(created.json["key"]?.stringValue)
            let id = try #require(created.json["id"]?.stringValue)
            let listed = try await server.request(.GET, "/admin/apps/a/keys")
            #expect(!listed.text.contains(secret))
            #expect(listed.text.contains(id) && listed.text.contains("\"prefix\":\"\(secret.prefix(10))\""))
            #expect(try await server.request(.GET, "/admin/apps/a/deployments", token: secret).status == 200)
            #expect(try await server.request(.GET, "/admin/apps/b/deployments", token: secret).status == 403)
            guard case .array(let visible)? = try await server.request(.GET, "/admin/apps", token: secret).json["items"] else { Issue.record("no list"); return }
            #expect(visible.map { $0["name"] } == ["a"])
            let badScope = try await server.request(.POST, "/admin/apps/a/keys", json: ["scopes": ["root"]])
            #expect(badScope.status == 400 && badScope.errorMessage.contains("unknown scope"))
            #expect(try await server.request(.POST, "/admin/apps/a/keys", json: ["scopes": ["instance:admin"]]).status == 400)
            #expect(try await server.request(.DELETE, "/admin/apps/b/keys/\(id)").status == 404)
            #expect(try await server.request(.DELETE, "/admin/apps/a/keys/\(id)").status == 204)
            #expect(try await server.request(.GET, "/admin/apps/a/deployments", token: secret).status == 401)
            // instance keys
            let instance = try await server.key(nil, ["app:read"])
            #expect(try await server.request(.GET, "/admin/apps/b", token: instance).status == 200)
            #expect(try await server.request(.GET, "/admin/keys", token: instance).status == 403)
            let instanceID = try #require(try await server.request(.GET, "/admin/keys").json["items"].flatMap { items -> String? in
                guard case .array(let list) = items else { return nil }
                return list.first { $0["scopes"] == ["app:read"] }?["id"]?.stringValue
            })
            #expect(try await server.request(.DELETE, "/admin/keys/\(instanceID)").status == 204)
            #expect(try await server.request(.GET, "/admin/apps/b", token: instance).status == 401)
        }
    }

    @Test("/openapi.json describes every admin route")
    func openAPI() async throws {
        try await Harness.run { server in
            let document = try await server.request(.GET, "/openapi.json", token: nil)
            #expect(document.status == 200)
            #expect(document.json["openapi"] == "3.1.0")
            guard case .object(let paths)? = document.json["paths"] else { Issue.record("no paths"); return }
            for path in [
                "/healthz", "/admin/apps", "/admin/apps/{app}", "/admin/apps/{app}/keys", "/admin/apps/{app}/keys/{id}", "/admin/keys",
                "/admin/apps/{app}/deployment", "/admin/apps/{app}/deployments", "/admin/apps/{app}/endpoints", "/admin/apps/{app}/logs",
                "/admin/apps/{app}/kv", "/admin/apps/{app}/docs/{collection}", "/admin/apps/{app}/files/{path}", "/admin/apps/{app}/secrets/{name}",
                "/apps/{app}/api/{path}", "/admin/apps/{app}/triggers", "/admin/apps/{app}/triggers/{id}", "/admin/apps/{app}/dead-letters",
                "/admin/apps/{app}/dead-letters/{id}", "/admin/apps/{app}/dead-letters/{id}/replay", "/admin/apps/{app}/outbox", "/metrics",
            ] {
                #expect(paths[path] != nil, "\(path) is missing")
            }
        }
    }
}
