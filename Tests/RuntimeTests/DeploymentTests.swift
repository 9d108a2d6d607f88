import Foundation
import LuaBridge
import Services
import NIOHTTP1
import Testing

@Suite("Deployments")
struct DeploymentTests {
    static let manifest = """
        name = "shop"
        [[endpoints]]
        method = "GET"
        path = "/hello"
        handler = "handlers/hello.lua"
        """

    @Test("a deployment serves at once; versions are kept and listed")
    func deployAndServe() async throws {
        try await Harness.run { server in
            let first = try await server.deploy("shop", manifest: Self.manifest, files: ["handlers/hello.lua": "return function() return {json = {v = 1}} end"])
            #expect(first.status == 201)
            #expect(first.json["version"] == 1)
            #expect(first.json["endpoints"] == [["method": "GET", "path": "/hello", "handler": "handlers/hello.lua", "auth": "public", "url": "/apps/shop/api/hello"]])
            #expect(try await server.call("shop", .GET, "/hello").json == ["v": 1])
            let second = try await server.deploy("shop", manifest: Self.manifest, files: ["handlers/hello.lua": "return function() return {json = {v = 2}} end"], create: false)
            #expect(second.json["version"] == 2)
            #expect(try await server.call("shop", .GET, "/hello").json == ["v": 2])
            let history = try await server.request(.GET, "/admin/apps/shop/deployments")
            guard case .array(let versions)? = history.json["items"] else { Issue.record("no history"); return }
            #expect(versions.map { $0["version"] } == [2, 1])
            let current = try await server.request(.GET, "/admin/apps/shop/deployment")
            #expect(current.json["version"] == 2)
            #expect(current.json["files"]?["handlers/hello.lua"] == "return function() return {json = {v = 2}} end")
            #expect(try await server.request(.GET, "/admin/apps/shop/endpoints").json["items"] == first.json["endpoints"])
        }
    }

    @Test("a refused deployment lists every problem with file:line and leaves the running one serving")
    func refusals() async throws {
        try await Harness.run { server in
            try await server.deploy("shop", manifest: Self.manifest, files: ["handlers/hello.lua": "return function() return 'old' end"])
            let cases: [(String, [String: String], String)] = [
                ("name = \"shop\"\n[[endpoints]\n", ["handlers/hello.lua": "return function() end"], "picloud.toml"),
                (Self.manifest, ["handlers/hello.lua": "return function() return 1 end end"], "handlers/hello.lua:1:"),
                (Self.manifest, ["handlers/hello.lua": "local x = nil\nx.y = 1\nreturn function() end"], "handlers/hello.lua:2:"),
                (Self.manifest, ["handlers/hello.lua": "return 42"], "must return a function"),
                (Self.manifest, ["handlers/other.lua": "return function() end"], "no file 'handlers/hello.lua'"),
                (Self.manifest.replacingOccurrences(of: "GET", with: "FETCH"), ["handlers/hello.lua": "return function() end"], "'FETCH' is not one of"),
                (Self.manifest + "\nfoo = 1", ["handlers/hello.lua": "return function() end"], "foo: unknown setting"),
                (Self.manifest.replacingOccurrences(of: "shop", with: "other"), ["handlers/hello.lua": "return function() end"], "not for app 'shop'"),
                (Self.manifest, ["handlers/hello.lua": "return function() end", "notes.txt": "hi"], "only .lua files"),
            ]
            for (manifest, files, expected) in cases {
                let answer = try await server.deploy("shop", manifest: manifest, files: files, create: false)
                #expect(answer.status == 400, "\(expected): \(answer.text)")
                #expect(answer.errorCode == "invalid_deployment")
                #expect(answer.text.contains(expected), "\(expected) not in \(answer.text)")
            }
            let two = try await server.deploy("shop", manifest: Self.manifest, files: ["handlers/hello.lua": "return function( end", "lib/x.lua": "local = 1"], create: false)
            guard case .array(let details)? = two.json["error"]?["details"] else { Issue.record("no details"); return }
            #expect(details.count == 2)
            #expect(details.allSatisfy { $0["line"] == 1 })
            #expect(try await server.call("shop", .GET, "/hello").text == "old")
            #expect(try await server.request(.GET, "/admin/apps/shop/deployment").json["version"] == 1)
        }
    }

    @Test("indexes declared in the manifest become SQL expression indexes")
    func indexes() async throws {
        try await Harness.run { server in
            let answer = try await server.deploy("shop", manifest: Self.manifest + "\n[[indexes]]\ncollection = \"orders\"\nfields = [\"status\", \"customer.id\"]\n",
                                                files: ["handlers/hello.lua": "return function() end"])
            #expect(answer.status == 201)
            let storage = try SQLiteStorage(path: server.dataDirectory + "/picloud.sqlite")
            #expect(try await storage.docIndexNames() == ["docs_field_customer__id", "docs_field_status"])
            let bad = try await server.deploy("shop", manifest: Self.manifest + "\n[[indexes]]\ncollection = \"orders\"\nfield = \"a;b\"\n",
                                             files: ["handlers/hello.lua": "return function() end"], create: false)
            #expect(bad.status == 400 && bad.text.contains("invalid field name"))
        }
    }

    @Test("deploying to an app that does not exist is 404; a huge deployment is 413")
    func missingAppAndSize() async throws {
        try await Harness.run { server in
            let answer = try await server.deploy("ghost", manifest: Self.manifest, files: [:], create: false)
            #expect(answer.status == 404)
            try await server.request(.POST, "/admin/apps", json: ["name": "shop"])
            let big = String(repeating: "-- padding\n", count: 2_000_000)
            let tooBig = try await server.deploy("shop", manifest: Self.manifest, files: ["handlers/hello.lua": big], create: false)
            #expect(tooBig.status == 413 && tooBig.errorCode == "payload_too_large")
        }
    }
}
