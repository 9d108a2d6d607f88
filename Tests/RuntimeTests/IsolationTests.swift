import LuaBridge
import NIOHTTP1
import Testing

/// An app's handlers and keys reach only that app's data.
@Suite("Cross-app isolation")
struct IsolationTests {
    @Test("handlers of one app never see another app's kv, docs, files or secrets")
    func handlers() async throws {
        try await Harness.run { server in
            try await server.deployHandler("alpha", source: """
                return function()
                  kv.set("shared-name", "alpha's")
                  docs.insert("things", { id = "x", owner = "alpha" })
                  files.put("f.txt", "alpha's file")
                  return "written"
                end
                """)
            try await server.request(.PUT, "/admin/apps/alpha/secrets/TOKEN", json: ["value": "alpha-secret"])
            #expect(try await server.call("alpha", .POST, "/w").text == "written")
            try await server.deployHandler("beta", source: """
                return function()
                  return { json = { kv = kv.get("shared-name") or "none", doc = docs.get("things", "x") or "none",
                    file = files.get("f.txt") or "none", secret = secrets.get("TOKEN") or "none", count = docs.count("things", {}),
                    keys = #kv.list("") } }
                end
                """)
            #expect(try await server.call("beta", .GET, "/r").json == ["kv": "none", "doc": "none", "file": "none", "secret": "none", "count": 0, "keys": 0])
        }
    }

    @Test("an app's key cannot read, change or deploy another app")
    func keys() async throws {
        try await Harness.run { server in
            try await server.deployHandler("alpha", source: "return function() return 'a' end")
            try await server.request(.POST, "/admin/apps", json: ["name": "beta"])
            let betaAdmin = try await server.key("beta", ["app:admin"])
            for (method, path) in [
                (HTTPMethod.GET, "/admin/apps/alpha/kv"), (.GET, "/admin/apps/alpha/docs"), (.GET, "/admin/apps/alpha/files"),
                (.GET, "/admin/apps/alpha/logs"), (.GET, "/admin/apps/alpha/secrets"), (.GET, "/admin/apps/alpha/deployment"),
                (.GET, "/admin/apps/alpha/keys"), (.DELETE, "/admin/apps/alpha"), (.GET, "/admin/apps/alpha"),
            ] {
                #expect(try await server.request(method, path, token: betaAdmin).status == 403, "\(method) \(path)")
            }
            let deploy = try await server.deployHandler("alpha", source: "return function() return 'pwned' end", create: false)
            #expect(deploy.status == 201)
            let foreignDeploy = try await server.request(.PUT, "/admin/apps/alpha/deployment", json: ["manifest": "name = \"alpha\"", "files": [:]], token: betaAdmin)
            #expect(foreignDeploy.status == 403)
        }
    }
}
