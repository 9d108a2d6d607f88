import Foundation
import LuaBridge
import NIOHTTP1
import Synchronization
import Testing

/// App endpoints answered in the connection's pipeline (EndpointStream): order, framing and
/// headers as the router would give them, over raw HTTP/1.1.
@Suite("Endpoints on the event loop")
struct EndpointStreamTests {
    static let handlers = """
        return function(req)
          if req.path == '/wait' then kv.set('waited', req.query.n or 'x') return { json = { step = 'wait ' .. (req.query.n or '') } } end
          if req.path == '/framing' then return { status = 200, headers = { ['Content-Length'] = '1', ['Transfer-Encoding'] = 'chunked', ['X-Mine'] = 'yes' }, body = 'whole body' } end
          return { json = { step = 'now ' .. (req.query.n or '') } }
        end
        """

    /// The bodies' `step` values in the order they came back on the connection.
    static func steps(_ text: String) -> [String] {
        text.components(separatedBy: "\"step\":\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
    }

    @Test("pipelined requests are answered in order: waiting handlers, instant ones and router routes mixed")
    func pipelined() async throws {
        try await Harness.run { server in
            try await server.deployHandler("p", source: Self.handlers)
            var requests = ""
            for index in 0..<12 {
                switch index % 4 {
                case 0: requests += "GET /apps/p/api/wait?n=\(index) HTTP/1.1\r\nHost: x\r\n\r\n"
                case 1: requests += "GET /apps/p/api/now?n=\(index) HTTP/1.1\r\nHost: x\r\n\r\n"
                case 2: requests += "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                default: requests += "POST /apps/p/api/now?n=\(index) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"a\": 1}\n"
                }
            }
            requests += "GET /apps/p/api/now?n=last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let text = try await rawExchange(port: server.port, requests)
            #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 13, "\(text)")
            #expect(Self.steps(text) == ["wait 0", "now 1", "now 3", "wait 4", "now 5", "now 7", "wait 8", "now 9", "now 11", "now last"])
            #expect(text.components(separatedBy: "\"status\":\"ok\"").count - 1 == 3, "the router's answers are in between")
            let healthFirst = try #require(text.range(of: "\"status\":\"ok\""))
            let nowThree = try #require(text.range(of: "now 3"))
            #expect(healthFirst.lowerBound < nowThree.lowerBound)
        }
    }

    @Test("an endpoint request behind a slow router request waits for it")
    func behindRouter() async throws {
        try await Harness.run { server in
            try await server.deployHandler("q", source: Self.handlers)
            let manifest = #"name = "q"\n[[endpoints]]\nmethod = "*"\npath = "/*rest"\nhandler = "handlers/main.lua"\n"#
            let deploy = try String(decoding: JSONSerialization.data(withJSONObject: [
                "manifest": manifest.replacingOccurrences(of: "\\n", with: "\n"), "files": ["handlers/main.lua": Self.handlers],
            ]), as: UTF8.self)
            let requests = "PUT /admin/apps/q/deployment HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Harness.adminToken)\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(deploy.utf8.count)\r\n\r\n\(deploy)"
                + "GET /apps/q/api/now?n=after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let text = try await rawExchange(port: server.port, requests)
            let deployed = try #require(text.range(of: "\"version\":2"), "\(text)")
            let after = try #require(text.range(of: "now after"), "\(text)")
            #expect(deployed.lowerBound < after.lowerBound)
        }
    }

    @Test("Connection: close ends the connection after the answer; nothing behind it is served")
    func close() async throws {
        try await Harness.run { server in
            try await server.deployHandler("c", source: Self.handlers)
            let text = try await rawExchange(
                port: server.port,
                "GET /apps/c/api/wait?n=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /apps/c/api/now?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            #expect(Self.steps(text) == ["wait 1"])
            #expect(text.lowercased().contains("connection: close"))
        }
    }

    @Test("the answer's framing is the server's: a handler's Content-Length and Transfer-Encoding are dropped; HEAD has no body")
    func framing() async throws {
        try await Harness.run { server in
            try await server.deployHandler("f", source: Self.handlers)
            let text = try await rawExchange(
                port: server.port,
                "GET /apps/f/api/framing HTTP/1.1\r\nHost: x\r\nOrigin: https://example.com\r\n\r\nHEAD /apps/f/api/now HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            let answers = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.lowercased() }
            try #require(answers.count == 2, "\(text)")
            #expect(answers[0].contains("content-length: 10\r\n"))
            #expect(!answers[0].contains("transfer-encoding"))
            #expect(answers[0].contains("x-mine: yes"))
            #expect(answers[0].hasSuffix("\r\n\r\nwhole body"))
            for header in ["date: ", "server: picloud", "x-request-id: ", "access-control-allow-origin: *"] {
                #expect(answers[0].contains(header), "\(header)")
            }
            #expect(answers[1].contains("content-length: "))
            #expect(answers[1].hasSuffix("\r\n\r\n"), "HEAD: headers only")
        }
    }

    @Test("a revoked key is refused at once on an auth = key endpoint")
    func revokedKey() async throws {
        try await Harness.run { server in
            try await server.deployHandler("k", auth: "key", source: "return function() return 'hi' end")
            let key = try await server.key("k", ["invoke"])
            #expect(try await server.call("k", .GET, "/x", token: key).text == "hi")
            let keys = try await server.request(.GET, "/admin/apps/k/keys").json["items"]?.arrayValue ?? []
            let id = try #require(keys.first?["id"]?.stringValue)
            #expect(try await server.request(.DELETE, "/admin/apps/k/keys/\(id)").status == 204)
            let refused = try await server.call("k", .GET, "/x", token: key)
            #expect(refused.status == 401 && refused.errorCode == "unauthorized")
            #expect(refused.headers.first(name: "X-Request-Id") != nil)
        }
    }

    @Test("a handler that computes does not hold the other requests of its event loop")
    func timeSliced() async throws {
        try await Harness.run { server in
            let manifest = """
                name = "busy"
                [limits]
                instructions = 10000000000
                timeout_ms = 60000
                [[endpoints]]
                method = "GET"
                path = "/*rest"
                handler = "handlers/main.lua"
                """
            // /spin computes until a request served by the same VM (so on the same event loop)
            // sets the flag, or 30 s passed. Without time slices no request of its loop could run
            // meanwhile: it would always end by the clock, and say so.
            let source = """
                local shared = require("lib.shared")
                return function(req)
                  if req.path == '/spin' then
                    kv.set('started', true)
                    shared.stop = false
                    local deadline = os.time() + 30
                    while not shared.stop and os.time() < deadline do end
                    return { json = { stopped_by_request = shared.stop } }
                  end
                  if req.path == '/stop' then shared.stop = true return { json = { stop = true } } end
                  return { json = { started = kv.get('started') == true } }
                end
                """
            let deployed = try await server.deploy("busy", manifest: manifest, files: ["handlers/main.lua": source, "lib/shared.lua": "return {}"])
            try #require(deployed.status == 201, "\(deployed.text)")
            let spinDone = Atomic<Bool>(false)
            let spinning = Task {
                defer { spinDone.store(true, ordering: .sequentiallyConsistent) }
                return try await rawExchange(port: server.port, "GET /apps/busy/api/spin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout: .seconds(60))
            }
            var started = false
            while !started {
                started = try await server.call("busy", .GET, "/started").json["started"] == true
            }
            // Fresh connections: the server spreads them over its event loops, so one soon lands
            // on the spinning handler's loop.
            var stops = 0
            while !spinDone.load(ordering: .sequentiallyConsistent), stops < 100 {
                let text = try await rawExchange(port: server.port, "GET /apps/busy/api/stop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout: .seconds(60))
                #expect(text.hasPrefix("HTTP/1.1 200 OK"), "\(text)")
                stops += 1
            }
            let spun = try await spinning.value
            #expect(spun.hasPrefix("HTTP/1.1 200 OK") && spun.contains(#""stopped_by_request":true"#), "after \(stops) stop requests: \(spun)")
        }
    }
}
