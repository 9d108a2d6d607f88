import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Services
import Synchronization
import Testing
@testable import Runtime

/// The HTTP/1.1 reader of the endpoint fast path (`HTTP1Head`), checked against NIO's decoder.
@Suite("Endpoint fast path: reading request heads")
struct HTTP1HeadTests {
    static func parse(_ text: String) -> HTTP1Head.Parse { parse(Array(text.utf8)) }
    static func parse(_ bytes: [UInt8]) -> HTTP1Head.Parse {
        bytes.withUnsafeBytes { HTTP1Head.parse($0, prefix: "/apps/") }
    }

    static let valid = "POST /apps/chat/api/messages?limit=5 HTTP/1.1\r\nHost: example.com\r\nX-Thing:  a b \t\r\n"
        + "Content-Type: application/json\r\nAuthorization: Bearer k\r\nx-thing: c\r\nConnection: keep-alive, Close\r\n"
        + "Origin: https://a.example\r\nContent-Length: 2\r\n\r\n{}"

    @Test("a head is read with lowercase names, trimmed values, its body length and what the fast path needs")
    func reads() throws {
        guard case .head(let head) = Self.parse(Self.valid) else { Issue.record("not read"); return }
        #expect(head.method == "POST")
        #expect(head.target == "/apps/chat/api/messages?limit=5")
        #expect(head.fields.map(\.name) == ["host", "x-thing", "content-type", "authorization", "x-thing", "connection", "origin", "content-length"])
        #expect(head.fields[1].value == "a b")
        #expect(head.contentLength == 2 && head.length == Self.valid.utf8.count - 2)
        #expect(head.closes)
        #expect(head.authorization == "Bearer k" && head.contentType == "application/json" && head.origin == "https://a.example")
        #expect(!head.asksPreflight && head.preflightHeaders == nil)
    }

    @Test("a CORS preflight is read; repeated Origin and request-headers fields are joined as HTTPFields joins them for the router")
    func readsPreflight() throws {
        let text = "OPTIONS /apps/chat/api/messages HTTP/1.1\r\nHost: h\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: PUT\r\n"
            + "access-control-request-headers: content-type\r\nOrigin: https://b.example\r\nAccess-Control-Request-Headers: x-a, x-b\r\n\r\n"
        guard case .head(let head) = Self.parse(text) else { Issue.record("not read"); return }
        #expect(head.method == "OPTIONS" && head.asksPreflight)
        #expect(head.origin == "https://a.example, https://b.example")
        #expect(head.preflightHeaders == "content-type, x-a, x-b")
        guard case .head(let plain) = Self.parse("OPTIONS /apps/chat/api/messages HTTP/1.1\r\nHost: h\r\n\r\n") else { Issue.record("not read"); return }
        #expect(!plain.asksPreflight && plain.origin == nil)
    }

    @Test("every proper prefix of a head is incomplete, never misread")
    func prefixes() {
        let bytes = Array(Self.valid.utf8.dropLast(2))
        for cut in 0..<bytes.count {
            guard case .incomplete = Self.parse(Array(bytes[..<cut])) else {
                Issue.record("prefix of \(cut) bytes")
                return
            }
        }
    }

    @Test("what the fast path leaves to NIO's decoder", arguments: [
        "GET /apps/a/api/x HTTP/1.0\r\n\r\n",
        "GET /healthz HTTP/1.1\r\n\r\n",
        "get /apps/a/api/x HTTP/1.1\r\n\r\n",
        "ET /apps/a/api/x HTTP/1.1\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\n\r\n",
        "GET /apps/a/api/x#frag HTTP/1.1\r\n\r\n",
        "GET  /apps/a/api/x HTTP/1.1\r\n\r\n",
        "GET /apps/a/api/x HTTP/1.1\n\r\n",
        "GET /apps/a/api/x HTTP/1.1\r\nHost: x\n\r\n",
        "GET /apps/a/api/x HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        "GET /apps/a/api/x HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET /apps/a/api/x HTTP/1.1\r\nHo\u{1}st: x\r\n\r\n",
        "GET /apps/a/api/x HTTP/1.1\r\nHost: x\u{1}y\r\n\r\n",
        "GET /apps/a/api/x HTTP/1.1\r\nHost: x\ry\r\n\r\n",
        "POST /apps/a/api/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /apps/a/api/x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "POST /apps/a/api/x HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
        "POST /apps/a/api/x HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
        "POST /apps/a/api/x HTTP/1.1\r\nContent-Length: 0\t\r\n\r\n",
        "POST /apps/a/api/x HTTP/1.1\r\nContent-Length: 0 \r\n\r\n",
        "POST /apps/a/api/x HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n",
        "GET /apps/a/api/x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        "GET /apps/a/api/x HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        "GET /apps/a/api/x HTTP/1.1\r\n" + String(repeating: "A: b\r\n", count: 101) + "\r\n",
        "GET /apps/" + String(repeating: "a", count: 8200) + " HTTP/1.1\r\n\r\n",
        "GET /apps/a/api/x HTTP/1.1\r\nA: " + String(repeating: "b", count: 17000) + "\r\n\r\n",
    ])
    func other(_ text: String) {
        guard case .other = Self.parse(text) else {
            Issue.record("taken: \(text.prefix(80).debugDescription)")
            return
        }
    }

    /// What NIO's decoder (llhttp) makes of `bytes`, or nil when it refuses them.
    static func decoded(_ bytes: [UInt8]) -> (head: HTTPRequestHead, body: [UInt8], ended: Bool)? {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder()))
        defer { _ = try? channel.finish() }
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
            var head: HTTPRequestHead?
            var body: [UInt8] = []
            var ended = false
            while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
                switch part {
                case .head(let value): if head == nil { head = value }
                case .body(let chunk): if !ended { body += Array(chunk.readableBytesView) }
                case .end: ended = true
                }
                if ended { break }
            }
            return head.map { ($0, body, ended) }
        } catch {
            return nil
        }
    }

    @Test("whatever the fast path reads, NIO's decoder reads the same way (10,000 mutated requests)")
    func agreesWithNIO() throws {
        let seeds = [
            Self.valid,
            "GET /apps/a/api/x?q=1&r=%20 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
            "DELETE /apps/a/api HTTP/1.1\r\nA:\r\nB: \r\nC:x\r\n\r\n",
            "PUT /apps/a/api/x HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "OPTIONS /apps/a/api/x HTTP/1.1\r\nOrigin: https://o.example\r\nAccess-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: a\r\nOrigin: b\r\n\r\n",
        ].map { Array($0.utf8) }
        let alphabet: [UInt8] = Array(" \t\r\n:,#/?%aZ0\u{7f}".utf8) + [0, 1, 0x80, 0xC3, 0xFF]
        var generator = SplitMix64(seed: 0x5EED)
        var taken = 0
        for round in 0..<10_000 {
            var bytes = seeds[round % seeds.count]
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let at = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[at] = alphabet.randomElement(using: &generator)!
                case 1: bytes.insert(alphabet.randomElement(using: &generator)!, at: at)
                default: bytes.remove(at: at)
                }
            }
            guard case .head(let head) = Self.parse(bytes) else { continue }
            taken += 1
            let complete = Array(bytes.prefix(head.length + head.contentLength))
            let theirs = try #require(Self.decoded(complete), "NIO refuses what the fast path reads: \(String(decoding: complete, as: UTF8.self).debugDescription)")
            let described = String(decoding: complete, as: UTF8.self).debugDescription
            #expect(theirs.head.method.rawValue == head.method, "\(described)")
            #expect(theirs.head.uri == head.target, "\(described)")
            #expect(theirs.head.version == .http1_1, "\(described)")
            #expect(theirs.head.headers.map { $0.name.lowercased() } == head.fields.map(\.name), "\(described)")
            // HTTPTypes drops trailing whitespace from NIO's values (`HTTPField.Value(legalize:)`).
            let values = theirs.head.headers.map { String($0.value.reversed().drop { $0 == " " || $0 == "\t" }.reversed()) }
            #expect(values == head.fields.map(\.value), "\(described)")
            // What the router reads of CORS (HTTPFields joins repeated fields with ", ").
            let fields = HTTPFields(theirs.head.headers.map { HTTPField(name: HTTPField.Name($0.name)!, value: $0.value) })
            #expect(fields[CORSPolicy.origin] == head.origin, "\(described)")
            #expect(fields[CORSPolicy.requestHeaders] == head.preflightHeaders, "\(described)")
            #expect((fields[CORSPolicy.requestMethod] != nil) == head.asksPreflight, "\(described)")
            if complete.count == head.length + head.contentLength {
                #expect(theirs.ended && theirs.body == Array(complete[head.length...]), "\(described)")
                let tokens = theirs.head.headers[canonicalForm: "connection"].map { $0.lowercased() }
                #expect(tokens.contains("close") == head.closes, "\(described)")
            }
        }
        #expect(taken > 1_000, "the mutations left enough well-formed requests to compare")
    }
}

/// Endpoint calls answered by the fast path, over raw HTTP/1.1 against a running server: the same
/// answers as the general pipeline gives.
@Suite("Endpoint fast path: answers")
struct EndpointFastPathTests {
    static let echo = """
        return function(req)
          if req.path == '/none' then return nil end
          if req.path == '/teapot' then error({ status = 418, message = 'short and stout' }) end
          if req.path == '/wait' then kv.set('k', 'v') end
          return { status = 201, headers = { ['X-Echo'] = 'yes' }, json = {
            method = req.method, path = req.path, params = req.params, query = req.query,
            headers = req.headers, body = req.body, json = req.json,
          } }
        end
        """

    static let requests = [
        "GET /apps/e/api/things/7?a=1&b=two+words&c=%C3%A9 HTTP/1.1\r\nHost: example.com\r\nX-Many: 1\r\nx-many:  2 \r\nAccept: */*\r\nConnection: close\r\n\r\n",
        "POST /apps/e/api/wait HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{\"n\": [1, 2.5, \"x\"]}",
        "POST /apps/e/api/raw HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        "POST /apps/e/api/raw HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{bad}",
        "HEAD /apps/e/api/x HTTP/1.1\r\nHost: h\r\nOrigin: https://site.example\r\nConnection: close\r\n\r\n",
        "GET /apps/e/api/none HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        "GET /apps/e/api/teapot HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        "GET /apps/e/api/%zz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        "GET /apps/nope/api/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        "GET /apps/k/api/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        "GET /apps/k/api/x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer wrong\r\nConnection: close\r\n\r\n",
        "OPTIONS /apps/e/api/x HTTP/1.1\r\nHost: h\r\nOrigin: https://site.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n",
        "GET /apps/e/api/a HTTP/1.1\r\nHost: h\r\n\r\nGET /apps/e/api/wait HTTP/1.1\r\nHost: h\r\n\r\nGET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
            + "GET /apps/e/api/b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    ] + preflights

    /// CORS preflights (answered by the fast path since 2026-12-02) and other OPTIONS requests (the router's).
    static let preflights = [
        "OPTIONS /apps/e/api/x HTTP/1.1\r\nHost: h\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\n"
            + "Access-Control-Request-Headers: content-type, x-foo\r\nConnection: close\r\n\r\n",
        "OPTIONS /apps/nope/api/y?z=1 HTTP/1.1\r\nHost: h\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n",
        "OPTIONS /apps/e/api/x HTTP/1.1\r\nHost: h\r\nOrigin: https://b.example\r\nAccess-Control-Request-Method: PUT\r\nConnection: close\r\n\r\n",
        "OPTIONS /apps/e/api/x HTTP/1.1\r\nHost: h\r\nOrigin: https://a.example\r\nConnection: close\r\n\r\n",
        "OPTIONS /apps/e/api/x HTTP/1.1\r\nHost: h\r\nOrigin: https://a.example\r\nOrigin: https://b.example\r\nAccess-Control-Request-Method: POST\r\n"
            + "Access-Control-Request-Headers: a\r\nAccess-Control-Request-Headers: b\r\nContent-Length: 3\r\n\r\nabc"
            + "OPTIONS /apps/e/api/x HTTP/1.1\r\nHost: h\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: DELETE\r\n\r\n"
            + "GET /apps/e/api/after HTTP/1.1\r\nHost: h\r\nOrigin: https://a.example\r\nConnection: close\r\n\r\n",
    ]

    /// The answer text without what differs between any two answers (date and request id).
    static func normalized(_ text: String) -> String {
        text.replacing(/(?i)(date|x-request-id): [^\r]*\r\n/, with: "")
            .replacing(/request [0-9a-zA-Z]{8,} in its logs/, with: "request ID in its logs")
            .replacing(/"request_id":"[^"]*"/, with: "\"request_id\":\"ID\"")
    }

    /// Each request's answer, from a server with the fast path on or off.
    static func answers(fastPath: Bool, pieces: Int = 1, cors: CORSPolicy = CORSPolicy(), requests: [String] = requests) async throws -> [String] {
        let answers = Mutex<[String]>([])
        try await Harness.run(configure: {
            $0.endpointFastPath = fastPath
            $0.cors = cors
        }) { server in
            try await server.deployHandler("e", source: echo)
            try await server.deployHandler("k", auth: "key", source: "return function() return 'hi' end")
            for request in requests {
                let bytes = Array(request.utf8)
                let size = max(1, bytes.count / pieces)
                let split = stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<min($0 + size, bytes.count)]) }
                let text = normalized(try await rawExchange(port: server.port, pieces: split, pause: pieces > 1 ? .milliseconds(1) : .zero))
                answers.withLock { $0.append(text) }
            }
        }
        return answers.withLock { $0 }
    }

    @Test("every answer is the one the general pipeline gives: status, headers, body, errors, HEAD, CORS, pipelining")
    func sameAnswers() async throws {
        let fast = try await Self.answers(fastPath: true)
        let general = try await Self.answers(fastPath: false)
        for (index, request) in Self.requests.enumerated() {
            #expect(fast[index] == general[index], "\(request.debugDescription)")
            #expect(fast[index].hasPrefix("HTTP/1.1 "), "\(request.debugDescription)")
        }
        // The handler saw what was sent.
        #expect(fast[0].contains(#""headers":{"accept":"*/*","connection":"close","host":"example.com","x-many":"1, 2"}"#), "\(fast[0])")
        #expect(fast[0].contains(#""query":{"a":"1","b":"two words","c":"é"}"#), "\(fast[0])")
        #expect(fast[0].contains(#""params":{"rest":"things/7"}"#) && fast[0].contains(#""path":"/things/7""#))
        #expect(fast[1].contains(#""json":{"n":[1,2.5,"x"]}"#), "\(fast[1])")
        #expect(fast[2].contains(#""body":"hello""#))
        #expect(fast[3].hasPrefix("HTTP/1.1 400"), "\(fast[3])")
        #expect(fast[4].lowercased().contains("access-control-allow-origin: *") && fast[4].hasSuffix("\r\n\r\n"))
        #expect(fast[5].hasPrefix("HTTP/1.1 204"))
        #expect(fast[6].hasPrefix("HTTP/1.1 418") && fast[6].contains("short and stout"))
        #expect(fast[9].hasPrefix("HTTP/1.1 401") && fast[10].hasPrefix("HTTP/1.1 401"))
        #expect(fast[12].components(separatedBy: "HTTP/1.1 ").count - 1 == 4, "\(fast[12])")
        let preflight = fast[13].lowercased()
        #expect(preflight.hasPrefix("http/1.1 204") && preflight.contains("access-control-allow-headers: content-type, x-foo"), "\(fast[13])")
        // An OPTIONS that is not a preflight goes to the router, which gives it to the endpoint (method "*").
        #expect(fast[16].hasPrefix("HTTP/1.1 201") && fast[16].contains(#""method":"OPTIONS""#), "\(fast[16])")
        #expect(fast[17].components(separatedBy: "HTTP/1.1 204").count - 1 == 2 && fast[17].contains("HTTP/1.1 201"), "\(fast[17])")
        #expect(fast[17].lowercased().contains("access-control-allow-headers: a, b"), "\(fast[17])")
    }

    @Test("preflights are answered as the router answers them under a list of allowed origins too")
    func samePreflights() async throws {
        let cors = CORSPolicy(.only(["https://a.example", "https://a.example, https://b.example"]))
        let fast = try await Self.answers(fastPath: true, cors: cors, requests: Self.preflights)
        let general = try await Self.answers(fastPath: false, cors: cors, requests: Self.preflights)
        for (index, request) in Self.preflights.enumerated() {
            #expect(fast[index] == general[index], "\(request.debugDescription)")
        }
        #expect(fast[0].contains("Vary: Origin") && fast[0].contains("Access-Control-Allow-Origin: https://a.example"), "\(fast[0])")
        #expect(!fast[2].contains("Access-Control"), "\(fast[2])")
        // Two Origin fields are one joined value, as the router reads them.
        #expect(fast[4].contains("Access-Control-Allow-Origin: https://a.example, https://b.example"), "\(fast[4])")
    }

    @Test("a connection stays on the fast path through CORS preflights; another OPTIONS hands it on to the router")
    func preflightKeepsTheConnection() async throws {
        try await Harness.run { server in
            try await server.deployHandler("e", source: Self.echo)
            let handOns = { try await Self.handOns(port: server.port) }
            let preflight = "OPTIONS /apps/e/api/x HTTP/1.1\r\nHost: h\r\nOrigin: https://site.example\r\nAccess-Control-Request-Method: POST\r\n\r\n"
            let call = "POST /apps/e/api/x HTTP/1.1\r\nHost: h\r\nOrigin: https://site.example\r\nContent-Length: 2\r\n\r\n{}"
            let before = try await handOns()
            let answers = try await Self.exchange(port: server.port, [preflight, call, preflight, call])
            #expect(answers.map { $0.prefix(12) } == ["HTTP/1.1 204", "HTTP/1.1 201", "HTTP/1.1 204", "HTTP/1.1 201"], "\(answers)")
            #expect(try await handOns() == before + 1) // the read of /metrics alone
            let other = try await Self.exchange(port: server.port, ["OPTIONS /apps/e/api/x HTTP/1.1\r\nHost: h\r\n\r\n", call])
            #expect(other.map { $0.prefix(12) } == ["HTTP/1.1 201", "HTTP/1.1 201"] && other[0].contains(#""method":"OPTIONS""#), "\(other)")
            #expect(try await handOns() == before + 3)
        }
    }

    @Test("requests that arrive a few bytes at a time are answered as when they arrive whole")
    func piecemeal() async throws {
        let whole = try await Self.answers(fastPath: true)
        let pieces = try await Self.answers(fastPath: true, pieces: 40)
        for (index, request) in Self.requests.enumerated() {
            #expect(pieces[index] == whole[index], "\(request.debugDescription)")
        }
    }

    @Test("a body over the limit is answered 413 and the connection closes")
    func tooLarge() async throws {
        try await Harness.run(configure: { $0.maxBodyBytes = 1024 }) { server in
            try await server.deployHandler("e", source: Self.echo)
            let text = try await rawExchange(
                port: server.port,
                "GET /apps/e/api/a HTTP/1.1\r\nHost: h\r\n\r\nPOST /apps/e/api/b HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n" + String(repeating: "x", count: 5000)
            )
            #expect(text.hasPrefix("HTTP/1.1 201"), "\(text.prefix(200))")
            #expect(text.contains("HTTP/1.1 413"), "\(text.prefix(2000))")
        }
    }

    @Test("many requests pipelined behind a waiting handler are all answered, in order")
    func longPipeline() async throws {
        try await Harness.run(configure: { $0.maxBodyBytes = 1024 }) { server in
            try await server.deployHandler("e", source: Self.echo)
            // More bytes than the fast path buffers behind a running handler (body limit + 16 KiB).
            var requests = ""
            for index in 0..<400 { requests += "GET /apps/e/api/\(index % 2 == 0 ? "wait" : "n")?i=\(index) HTTP/1.1\r\nHost: h\r\nX-Pad: \(String(repeating: "p", count: 40))\r\n\r\n" }
            requests += "GET /apps/e/api/last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
            #expect(requests.utf8.count > 1024 + 16 * 1024)
            let text = try await rawExchange(port: server.port, requests, timeout: .seconds(30))
            let indices = text.components(separatedBy: #""i":""#).dropFirst().compactMap { Int($0.prefix { $0 != "\"" }) }
            #expect(indices == Array(0..<400), "\(indices.count) answers")
            #expect(text.contains(#""path":"/last""#))
        }
    }

    @Test("many connections that each wait for their answer before asking again are all answered, quick and waiting handlers alike")
    func manyConnections() async throws {
        // Answers are flushed at the end of the event loop's turn, for every connection answered in it.
        try await Harness.run { server in
            try await server.deployHandler("e", source: Self.echo)
            let answered = try await withThrowingTaskGroup(of: Int.self) { group in
                for connection in 0..<48 {
                    group.addTask { try await Self.askInTurn(port: server.port, connection: connection, rounds: 25) }
                }
                return try await group.reduce(0, +)
            }
            #expect(answered == 48 * 25)
        }
    }

    @Test("a connection goes on to the router after endpoint calls, asked in turn or pipelined, and keeps being read")
    func toTheRouter() async throws {
        try await Harness.run { server in
            try await server.deployHandler("e", source: Self.echo)
            let endpoint = { (path: String) in "GET /apps/e/api/\(path)?i=x HTTP/1.1\r\nHost: h\r\n\r\n" }
            let health = "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
            // One request at a time: a quick call, a waiting one, the router, then calls again.
            let inTurn = try await Self.exchange(port: server.port, [endpoint("quick"), endpoint("wait"), health, endpoint("quick"), health])
            #expect(inTurn.map { $0.prefix(12) } == ["HTTP/1.1 201", "HTTP/1.1 201", "HTTP/1.1 200", "HTTP/1.1 201", "HTTP/1.1 200"], "\(inTurn)")
            // Pipelined behind a waiting handler: handed on after its answer, outside a read.
            let pipelined = try await rawExchange(port: server.port, endpoint("wait") + health + endpoint("quick") + "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            #expect(pipelined.components(separatedBy: "HTTP/1.1 201").count - 1 == 2, "\(pipelined)")
            #expect(pipelined.components(separatedBy: "HTTP/1.1 200").count - 1 == 2, "\(pipelined)")
        }
    }

    @Test("a connection handed to the router comes back to the fast path at an endpoint call once the router has answered, when its requests could be followed")
    func backFromTheRouter() async throws {
        try await Harness.run { server in
            try await server.deployHandler("e", source: Self.echo)
            let handOns = { try await Self.handOns(port: server.port) }
            let call = { (i: Int) in "POST /apps/e/api/x?i=\(i) HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}" }
            let health = "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
            // A router request with a body (an unknown app: 404), its bytes in two reads.
            let routed = "POST /apps/nope/api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
            var before = try await handOns()
            // In turn: every router request hands the connection on anew, so it came back in between.
            let inTurn = try await Self.exchange(port: server.port, [health, call(1), health, call(2), routed, call(3)])
            #expect(inTurn.map { $0.prefix(12) } == ["HTTP/1.1 200", "HTTP/1.1 201", "HTTP/1.1 200", "HTTP/1.1 201", "HTTP/1.1 404", "HTTP/1.1 201"], "\(inTurn)")
            #expect(inTurn[5].contains(#""query":{"i":"3"}"#), "\(inTurn[5])")
            #expect(try await handOns() == before + 3 + 1)
            // Pipelined behind a router request: the router's pipeline answers them all, in order.
            before = try await handOns()
            let pipelined = try await rawExchange(port: server.port, health + call(4) + health + call(5) + "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            let statuses = pipelined.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            #expect(statuses == ["200", "201", "200", "201", "200"], "\(pipelined)")
            #expect(try await handOns() == before + 1 + 1)
            // A call arriving while the router's pipeline still owes an answer (a waiting handler it
            // serves) is that pipeline's too: answers keep the order of requests.
            for round in 0..<20 {
                let pieces = [health + "POST /apps/e/api/wait?i=w HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}", "GET /apps/e/api/x?i=after HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"]
                let text = try await rawExchange(port: server.port, pieces: pieces.map { Array($0.utf8) }, pause: round % 2 == 0 ? .zero : .milliseconds(1))
                let waited = text.range(of: #""query":{"i":"w"}"#), after = text.range(of: #""query":{"i":"after"}"#)
                #expect(text.hasPrefix("HTTP/1.1 200") && waited != nil && after != nil && waited!.lowerBound < after!.lowerBound, "\(text)")
            }
            // A body handed on is the router's whole, though it arrives apart from its head and looks
            // like a request: the connection comes back only after it.
            let smuggled = "GET /apps/e/api/x?i=smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
            let split = ["POST /apps/nope/api/x HTTP/1.1\r\nHost: h\r\nConte", "nt-Length: \(smuggled.utf8.count)\r\n\r\n", smuggled,
                         "GET /apps/e/api/x?i=after HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"]
            let text = try await rawExchange(port: server.port, pieces: split.map { Array($0.utf8) }, pause: .milliseconds(20))
            #expect(text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) } == ["404", "201"], "\(text)")
            #expect(!text.contains("smuggled") && text.contains(#""i":"after""#), "\(text)")
            // A chunked body cannot be followed here: the connection stays with the router.
            before = try await handOns()
            let chunked = "POST /apps/nope/api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            let stays = try await Self.exchange(port: server.port, [chunked, call(6), health, call(7)])
            #expect(stays.map { $0.prefix(12) } == ["HTTP/1.1 404", "HTTP/1.1 201", "HTTP/1.1 200", "HTTP/1.1 201"], "\(stays)")
            #expect(try await handOns() == before + 1 + 1)
        }
    }

    @Test("endpoint calls, router requests and preflights mixed on one connection and cut at random points are answered in order")
    func mixedAndCut() async throws {
        try await Harness.run { server in
            try await server.deployHandler("e", source: Self.echo)
            var generator = SplitMix64(seed: 0xC0FFEE)
            for round in 0..<16 {
                var requests: [(text: String, status: String)] = []
                for index in 0..<8 {
                    switch Int.random(in: 0..<5, using: &generator) {
                    case 0: requests.append(("GET /apps/e/api/x?i=\(index) HTTP/1.1\r\nHost: h\r\n\r\n", "201"))
                    case 1: requests.append(("POST /apps/e/api/wait?i=\(index) HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}", "201"))
                    case 2: requests.append(("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", "200"))
                    case 3: requests.append(("POST /apps/nope/api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", "404"))
                    default: requests.append(("OPTIONS /apps/e/api/x HTTP/1.1\r\nHost: h\r\nOrigin: https://o.example\r\nAccess-Control-Request-Method: PUT\r\n\r\n", "204"))
                    }
                }
                requests.append(("GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "200"))
                let bytes = Array(requests.map(\.text).joined().utf8)
                // Cuts anywhere, and between requests (where the fast path may take the connection back).
                let boundaries = requests.dropLast().reduce(into: [Int]()) { ends, request in ends.append((ends.last ?? 0) + request.text.utf8.count) }
                let cuts = Set((0..<Int.random(in: 1...8, using: &generator)).map { _ in
                    Bool.random(using: &generator) ? boundaries.randomElement(using: &generator)! : Int.random(in: 1..<bytes.count, using: &generator)
                }).sorted()
                let pieces = zip([0] + cuts, cuts + [bytes.count]).map { Array(bytes[$0..<$1]) }
                let text = try await rawExchange(port: server.port, pieces: pieces, pause: round % 2 == 0 ? .zero : .milliseconds(1))
                let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
                #expect(statuses == requests.map(\.status), "round \(round): \(text)")
                let calls = text.components(separatedBy: #""query":{"i":""#).dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
                #expect(calls == calls.sorted() && calls.count == requests.filter { $0.status == "201" }.count, "round \(round): \(text)")
            }
        }
    }

    /// `picloud_http_fast_path_handoffs_total`, read on a connection of its own (which the read of
    /// /metrics, a route of the router, hands on: it counts itself).
    static func handOns(port: Int) async throws -> Int {
        let answers = try await exchange(port: port, ["GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n"])
        let line = answers.first?.split(separator: "\n").first { $0.hasPrefix("picloud_http_fast_path_handoffs_total ") }
        return try #require(line.flatMap { Int($0.split(separator: " ").last!) })
    }

    /// Sends `rounds` requests on one connection, each after the last one's answer; returns how many
    /// were answered with the request's own `i`.
    static func askInTurn(port: Int, connection: Int, rounds: Int) async throws -> Int {
        let requests = (0..<rounds).map { round in
            "GET /apps/e/api/\((connection + round) % 3 == 0 ? "wait" : "quick")?i=\(round) HTTP/1.1\r\nHost: h\r\n\r\n"
        }
        let answers = try await exchange(port: port, requests)
        return zip(answers, 0...).prefix { answer, round in
            answer.hasPrefix("HTTP/1.1 201") && answer.contains(#""query":{"i":"\#(round)"}"#)
        }.count
    }

    /// Sends `requests` on one connection, each after the last one's answer; returns the answers
    /// (fewer when one does not come within 20 s).
    static func exchange(port: Int, _ requests: [String]) async throws -> [String] {
        let received = Inbox<String>()
        let channel = try await ClientBootstrap(group: SSEConnection.group).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(inbox: received)) }
        }.connect(host: "127.0.0.1", port: port).get()
        defer { channel.close(promise: nil) }
        var pending = ""
        var answers: [String] = []
        for request in requests {
            try await channel.writeAndFlush(ByteBuffer(string: request)).get()
            var answer: String?
            while answer == nil {
                answer = Self.takeAnswer(&pending)
                if answer == nil {
                    guard let chunk = await received.next(timeout: .seconds(20)) else { return answers }
                    pending += chunk
                }
            }
            answers.append(answer!)
        }
        return answers
    }

    /// The first whole answer in `text` (head and a body of its Content-Length), taken off it.
    static func takeAnswer(_ text: inout String) -> String? {
        guard let end = text.range(of: "\r\n\r\n") else { return nil }
        let head = text[..<end.lowerBound].lowercased()
        let length = head.components(separatedBy: "\r\n").first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        let body = text[end.upperBound...]
        guard body.utf8.count >= length else { return nil }
        let bodyEnd = body.utf8.index(body.startIndex, offsetBy: length)
        let answer = String(text[..<bodyEnd])
        text = String(text[bodyEnd...])
        return answer
    }
}
