import Foundation
import LuaBridge
import NIOHTTP1
@testable import Runtime
import Testing

/// What browsers get: the dashboard, the client library, and CORS on app routes.
@Suite("Web: dashboard, client script, CORS")
struct WebTests {
    @Test("the dashboard is served at /dashboard with a strict content security policy; paths cannot escape it")
    func dashboard() async throws {
        try await Harness.run { server in
            #expect(try await server.request(.GET, "/dashboard/", token: nil).status == 200)
            let page = try await server.request(.GET, "/dashboard", token: nil)
            #expect(page.status == 200)
            #expect(page.headers["Content-Type"].first?.hasPrefix("text/html") == true)
            #expect(page.headers["Content-Security-Policy"].first?.contains("frame-ancestors 'none'") == true)
            #expect(page.text.contains("<html"))
            for bad in ["/dashboard/../Package.swift", "/dashboard/%2e%2e/Package.swift", "/dashboard/missing.js"] {
                #expect(try await server.request(.GET, bad, token: nil).status == 404, "\(bad)")
            }
        }
    }

    @Test("the browser client is served at /client/picloud.js to any origin")
    func clientScript() async throws {
        try await Harness.run { server in
            let script = try await server.request(.GET, "/client/picloud.js", token: nil)
            #expect(script.status == 200)
            #expect(script.headers["Content-Type"].first?.hasPrefix("text/javascript") == true)
            #expect(script.text.contains("export function createClient"))
            #expect(script.headers["Access-Control-Allow-Origin"].first == "*")
        }
    }

    @Test("app routes and realtime answer CORS preflights and carry Access-Control-Allow-Origin; the admin API does not")
    func cors() async throws {
        try await Harness.run { server in
            try await server.deployHandler("web", method: "POST", path: "/echo", source: "return function(req) return { json = req.json } end")
            let origin = ("Origin", "https://example.com")
            let preflight = try await server.request(.OPTIONS, "/apps/web/api/echo", token: nil, headers: [
                origin, ("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "content-type, authorization"),
            ])
            #expect(preflight.status == 204)
            #expect(preflight.headers["Access-Control-Allow-Origin"].first == "*")
            #expect(preflight.headers["Access-Control-Allow-Methods"].first?.contains("POST") == true)
            #expect(preflight.headers["Access-Control-Allow-Headers"].first == "content-type, authorization")
            let call = try await server.request(.POST, "/apps/web/api/echo", json: ["a": 1], token: nil, headers: [origin])
            #expect(call.status == 200 && call.headers["Access-Control-Allow-Origin"].first == "*")
            let missing = try await server.request(.GET, "/apps/web/api/nothing", token: nil, headers: [origin])
            #expect(missing.status == 404 && missing.headers["Access-Control-Allow-Origin"].first == "*", "errors carry it too")
            let realtimePreflight = try await server.request(.OPTIONS, "/apps/web/realtime/news", token: nil, headers: [
                origin, ("Access-Control-Request-Method", "GET"), ("Access-Control-Request-Headers", "authorization, last-event-id"),
            ])
            #expect(realtimePreflight.status == 204 && realtimePreflight.headers["Access-Control-Allow-Origin"].first == "*")
            let realtime = try await server.request(.GET, "/apps/web/realtime/news", token: nil, headers: [origin])
            #expect(realtime.status == 404 && realtime.headers["Access-Control-Allow-Origin"].first == "*")
            let admin = try await server.request(.GET, "/admin/apps", headers: [origin])
            #expect(admin.status == 200 && admin.headers["Access-Control-Allow-Origin"].isEmpty)
        }
    }

    @Test("PICLOUD_CORS_ORIGINS limits the origins: a listed one is echoed, another gets no header")
    func corsList() async throws {
        try await Harness.run(configure: { $0.cors = CORSPolicy(setting: "https://a.example, https://b.example") }) { server in
            try await server.deployHandler("web", source: "return function() return { json = { ok = true } } end")
            let allowed = try await server.request(.GET, "/apps/web/api/x", token: nil, headers: [("Origin", "https://b.example")])
            #expect(allowed.headers["Access-Control-Allow-Origin"].first == "https://b.example")
            #expect(allowed.headers["Vary"].contains("Origin"))
            let other = try await server.request(.GET, "/apps/web/api/x", token: nil, headers: [("Origin", "https://evil.example")])
            #expect(other.headers["Access-Control-Allow-Origin"].isEmpty)
        }
    }

    @Test("the binary carries exactly the files of dashboard/ and clients/js/src/ (run scripts/embed-resources.py after editing)")
    func embeddedInSync() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var onDisk: [String: String] = [:]
        for folder in ["dashboard", "clients/js/src"] {
            let directory = root.appendingPathComponent(folder)
            guard let walker = FileManager.default.enumerator(atPath: directory.path) else { continue }
            while let relative = walker.nextObject() as? String {
                let path = folder + "/" + relative
                let ext = (relative as NSString).pathExtension
                guard (folder == "dashboard" ? ["html", "js", "css", "svg", "json"] : ["js"]).contains(ext),
                      folder == "dashboard" || !relative.contains("/") else { continue }
                onDisk[path] = try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
            }
        }
        #expect(Set(AssetsController.embedded.keys) == Set(onDisk.keys))
        for (path, text) in onDisk { #expect(AssetsController.embedded[path] == text, "\(path) differs from the embedded copy") }
    }
}
