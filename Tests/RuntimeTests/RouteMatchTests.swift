import Foundation
import LuaBridge
import Testing
@testable import Runtime

/// The byte-level matchers that look at every request's target before the router does.
@Suite("Request target matchers")
struct RouteMatchTests {
    @Test("realtime subscribe paths: /apps/{app}/realtime/{topic}, a query may follow, nothing else")
    func realtime() {
        let cases: [(String, (String, String)?)] = [
            ("/apps/chat/realtime/room%3Alobby", ("chat", "room%3Alobby")),
            ("/apps/chat/realtime/t?last_event_id=4&token=x/y", ("chat", "t")),
            ("/apps/é/realtime/näh", ("é", "näh")),
            ("/apps/chat/realtime/", nil), ("/apps/chat/realtime", nil), ("/apps//realtime/t", nil),
            ("/apps/chat/realtime/t/more", nil), ("/apps/chat/api/realtime/t", nil), ("/app/chat/realtime/t", nil),
            ("apps/chat/realtime/t", nil), ("/apps/chat/realtimex/t", nil), ("/apps/chat/realtime?x=/t", nil), ("", nil),
        ]
        for (target, expected) in cases {
            let matched = RealtimeRequest.match(target).map { (String($0.app), String($0.topic)) }
            #expect(matched?.0 == expected?.0 && matched?.1 == expected?.1, "\(target)")
        }
    }

    @Test("path and query split at the first '?'")
    func split() {
        #expect(EndpointStream.split("/a/b?x=1?y") == ("/a/b", "x=1?y"))
        #expect(EndpointStream.split("/a/b") == ("/a/b", nil))
        #expect(EndpointStream.split("/ä?") == ("/ä", ""))
    }

    @Test("the table of paths without parameters finds what matching finds, for every method, and nothing else")
    func staticRoutes() throws {
        let endpoints: [(String, String)] = [
            ("GET", "/notes"), ("POST", "/notes"), ("GET", "/notes/:id"), ("*", "/notes/recent"), ("DELETE", "/notes/recent"),
            ("GET", "/files/*path"), ("GET", "/"), ("PUT", "/a/b/c"), ("GET", "/a/:x/c"), ("GET", "/x~y"),
        ]
        let manifest = try Manifest(text: "name = \"routes\"\n" + endpoints.map { "[[endpoints]]\nmethod = \"\($0.0)\"\npath = \"\($0.1)\"\nhandler = \"h.lua\"\n" }.joined())
        let pool = LuaPool(program: try LuaProgram(files: ["h.lua": "return function() end"], handlers: ["h.lua"]))
        let deployment = ActiveDeployment(app: "routes", version: 1, manifest: manifest, pool: pool, createdAt: 0)
        let paths = ["", "/", "/notes", "/notes/", "//notes", "/notes/recent", "/notes/7", "/files/a/b", "/a/b/c", "/a/z/c", "/x~y", "/x%7Ey", "/n%6Ftes", "/nope"]
        var hits = 0
        for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            for path in paths {
                let segments = path.split(separator: "/").map { decodePathSegment($0)! }
                let matched: Manifest.Endpoint? = if case .found(let endpoint, _) = deployment.route(method: method, path: segments) { endpoint } else { nil }
                guard let fromTable = deployment.staticRoute(method: method, path: Substring(path)) else { continue }
                hits += 1
                #expect(fromTable == matched, "\(method) \(path)")
                #expect(!path.contains("%") && !path.dropFirst().hasSuffix("/") && !path.contains("//"), "\(method) \(path) is not canonical")
                #expect(["/notes/7", "/files/a/b", "/a/z/c"].contains(path) == false, "\(method) \(path) has a parameter")
            }
        }
        // GET and HEAD of /notes, /, /a/b/c's PUT, /x:y, /notes/recent by every method (*) ...
        #expect(hits >= 15, "\(hits) paths were found in the table")
        #expect(deployment.staticRoute(method: "PATCH", path: "/notes/recent") == nil, "a method no endpoint names goes to matching")
        #expect(deployment.staticRoute(method: "DELETE", path: "/notes/recent")?.method == "DELETE")
        #expect(deployment.staticRoute(method: "GET", path: "/notes/recent")?.method == "*")
        #expect(deployment.staticRoute(method: "HEAD", path: "/notes")?.method == "GET")
    }
}

extension RouteMatchTests {
    @Test("endpoint request paths: /apps/{app}/api, then the end or '/', for an app that serves")
    func endpointPaths() throws {
        let manifest = try Manifest(text: "name = \"x\"\n[[endpoints]]\nmethod = \"GET\"\npath = \"/*rest\"\nhandler = \"h.lua\"\n")
        let pool = LuaPool(program: try LuaProgram(files: ["h.lua": "return function() end"], handlers: ["h.lua"]))
        let registry = AppRegistry()
        registry.activate(ActiveDeployment(app: "x", version: 1, manifest: manifest, pool: pool, createdAt: 0))
        let cases: [(String, String?)] = [
            ("/apps/x/api", "/"), ("/apps/x/api/", "/"), ("/apps/x/api/hello", "/hello"), ("/apps/x/api/a/b%20c", "/a/b c"),
            ("/apps/x/apix", nil), ("/apps/x/ap", nil), ("/apps/x/", nil), ("/apps/x", nil), ("/apps//api/hello", nil), ("/apps/y/api/hello", nil),
            ("/app/x/api/hello", nil), ("/apps/é/api/hello", nil), ("apps/x/api", nil), ("", nil), ("/apps/x/API/hello", nil),
        ]
        for (path, expected) in cases {
            let call = EndpointCall.resolve(path: Substring(path), method: "GET", registry: registry)
            #expect(call?.path == expected, "\(path)")
        }
    }
}

/// How a request's header fields reach the handler's `request.headers`.
@Suite("Endpoint request headers")
struct RequestHeaderTests {
    @Test("repeated names are joined with ', ' in the order sent, where the first stood; few fields or many", arguments: [3, 8, 33, 400])
    func joined(count: Int) {
        let fields = (0..<count).map { (name: "x-\($0 % 7)", value: "v\($0)") } + [(name: "host", value: "h")]
        var expected: [String: String] = [:]
        var order: [String] = []
        for field in fields {
            if let existing = expected[field.name] { expected[field.name] = existing + ", " + field.value } else {
                expected[field.name] = field.value
                order.append(field.name)
            }
        }
        let joined = EndpointCall.joined(fields)
        #expect(joined.map(\.name) == order)
        #expect(joined.allSatisfy { expected[$0.name] == $0.value })
        #expect(EndpointCall.joined([]).isEmpty)
    }

    @Test("percent-decoding of paths and queries answers as Foundation's decoder, without it")
    func percentDecoding() {
        let cases: [(String, String?)] = [
            ("plain", "plain"), ("", ""), ("a+b%20c", "a b c"), ("%2B", "+"), ("%2b%2F", "+/"), ("%C3%A9t%c3%a9", "été"),
            ("100%", nil), ("%4", nil), ("%zz", nil), ("%FF", nil), ("%C3", nil), ("é+%20", "é  "), ("%00", "\u{0}"),
        ]
        for (text, expected) in cases {
            #expect(percentDecoded(Substring(text), plusIsSpace: true) == expected, "\(text)")
        }
        #expect(percentDecoded("a+b", plusIsSpace: false) == "a+b")
        #expect(decodePathSegment("a+b%20c") == "a+b c")
        // Against Foundation (what the query decoder used before) on random texts of the characters that matter.
        let alphabet = Array("ab+%2fFAé0zG ")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let text = String((0..<Int.random(in: 0...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            let foundation = text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
            #expect(percentDecoded(Substring(text), plusIsSpace: true) == foundation, "\(text)")
            #expect(percentDecoded(Substring(text), plusIsSpace: false) == text.removingPercentEncoding, "\(text)")
        }
    }
}
