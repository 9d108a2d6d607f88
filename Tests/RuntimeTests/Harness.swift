import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import LuaBridge
import NIOCore
import NIOHTTP1
import NIOPosix
import Runtime
import ServiceLifecycle
import Services
import TestSupport

/// A PiCloud server running in-process on a free loopback port, talked to over real HTTP.
struct Harness {
    static let adminToken = "pc_test-admin-token-0123456789abcdef"
    /// A client that shows redirects instead of following them.
    static let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
    let port: Int
    let dataDirectory: String

    struct Answer {
        let status: Int
        let headers: HTTPHeaders
        let body: [UInt8]
        var json: LuaValue { (try? LuaJSON.decode(body)) ?? .nil }
        var text: String { String(decoding: body, as: UTF8.self) }
        var errorCode: String? { json["error"]?["code"]?.stringValue }
        var errorMessage: String { json["error"]?["message"]?.stringValue ?? "" }
    }

    /// Starts a server with a fresh data directory, runs `body`, stops the server.
    static func run(
        dataDirectory: String? = nil,
        configure: (inout RuntimeConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (Harness) async throws -> Void
    ) async throws {
        let directory = dataDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("picloud-it-\(UUID().uuidString)").path
        var configuration = RuntimeConfiguration(port: 0, dataDirectory: directory)
        configuration.adminToken = adminToken
        configuration.durability = .normal
        configure(&configuration)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        // Each server has event loops of its own: a test whose handler holds a loop (a long C call
        // in a hostile script, a large value converted in a debug build) then delays only its own
        // server, not every server and client in the process. (All of them once shared the two
        // loops of the singleton group, and connections of unrelated tests timed out.)
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (ports, announce) = AsyncStream.makeStream(of: Int.self)
        do {
            let application = try await StartGate.pass {
                try await PiCloudServer.makeApplication(
                    configuration: configuration, logger: logger, eventLoopGroup: .shared(loops),
                    onRunning: { port in
                        announce.yield(port)
                        announce.finish()
                    })
            }
            try await Self.serve(application, ports: ports, announce: announce, logger: logger) { port in
                try await body(Harness(port: port, dataDirectory: directory))
            }
        } catch {
            try await loops.shutdownGracefully()
            throw error
        }
        try await loops.shutdownGracefully()
    }

    /// Runs `application` until `body`, given its port, returns; then shuts it down gracefully.
    /// (Hummingbird's `.live` test framework does the same, but also connects a client of its own
    /// that a stalled loop could time out.)
    private static func serve(
        _ application: some ApplicationProtocol, ports: AsyncStream<Int>, announce: AsyncStream<Int>.Continuation, logger: Logger,
        _ body: @escaping @Sendable (Int) async throws -> Void
    ) async throws {
        let services = ServiceGroup(configuration: .init(services: [application], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { announce.finish() } // a server that fails to start announces no port
                try await services.run()
            }
            var announced = ports.makeAsyncIterator()
            guard let port = await announced.next() else {
                try await group.waitForAll()
                throw HarnessError(message: "the server stopped before it listened")
            }
            do {
                try await body(port)
            } catch {
                await services.triggerGracefulShutdown()
                throw error
            }
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    /// Sends a request; `json` is encoded as the body, `token` defaults to the admin token.
    @discardableResult
    func request(
        _ method: HTTPMethod, _ path: String, json: LuaValue? = nil, body: [UInt8]? = nil, contentType: String? = nil,
        token: String? = Harness.adminToken, headers: [(String, String)] = []
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try LuaJSON.encode(json)))
        } else if let body {
            if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await Harness.client.execute(request, timeout: .seconds(30))
        var buffer = try await response.body.collect(upTo: 64 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: buffer.readBytes(length: buffer.readableBytes) ?? [])
    }

    /// Creates an app and deploys a manifest and files; returns the deploy answer.
    @discardableResult
    func deploy(_ app: String, manifest: String, files: [String: String], create: Bool = true) async throws -> Answer {
        if create { try await request(.POST, "/admin/apps", json: ["name": .string(app)]) }
        return try await request(.PUT, "/admin/apps/\(app)/deployment", json: ["manifest": .string(manifest), "files": .object(files.mapValues(LuaValue.string))])
    }

    /// Deploys one handler at `handlers/main.lua` for `method path` (public unless `auth`).
    @discardableResult
    func deployHandler(_ app: String, method: String = "*", path: String = "/*rest", auth: String = "public", source: String, extra: [String: String] = [:], create: Bool = true) async throws -> Answer {
        let manifest = """
            name = "\(app)"
            [[endpoints]]
            method = "\(method)"
            path = "\(path)"
            handler = "handlers/main.lua"
            auth = "\(auth)"
            """
        var files = extra
        files["handlers/main.lua"] = source
        return try await deploy(app, manifest: manifest, files: files, create: create)
    }

    /// Creates a key for an app with scopes and returns its secret.
    func key(_ app: String?, _ scopes: [String]) async throws -> String {
        let path = app.map { "/admin/apps/\($0)/keys" } ?? "/admin/keys"
        let answer = try await request(.POST, path, json: ["name": "test", "scopes": .array(scopes.map(LuaValue.string))])
        guard answer.status == 201, let secret = answer.json["key"]?.stringValue else { throw HarnessError(message: "key creation failed: \(answer.text)") }
        return secret
    }

    /// Calls an app endpoint.
    @discardableResult
    func call(_ app: String, _ method: HTTPMethod, _ path: String, json: LuaValue? = nil, token: String? = nil, headers: [(String, String)] = []) async throws -> Answer {
        try await request(method, "/apps/\(app)/api\(path)", json: json, token: token, headers: headers)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Lets one in-process server at a time through its start-up (opening the store, building the
/// router: a few hundred milliseconds of CPU in a debug build). The suite starts about a hundred
/// servers at once on two cores; all of them building routers together held the cooperative pool
/// for 10–20 s, and tests already running missed their few-second windows (heartbeats, token
/// expiry, raw exchanges). One at a time, the other thread stays free for the tests that run.
actor StartGate {
    private static let shared = StartGate()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    static func pass<T>(_ body: () async throws -> T) async throws -> T {
        await shared.enter()
        do {
            let value = try await body()
            await shared.leave()
            return value
        } catch {
            await shared.leave()
            throw error
        }
    }

    private func enter() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func leave() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }
}
