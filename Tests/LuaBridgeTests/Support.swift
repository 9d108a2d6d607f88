import Dispatch
import LuaBridge
import Synchronization
import Testing

/// Builds a pool whose single handler `handlers/main.lua` has `body` as its function body.
func makePool(
    _ body: String,
    modules: [String: String] = [:],
    environment: LuaEnvironment = TestHost.environment,
    configuration: LuaPoolConfiguration = LuaPoolConfiguration(size: 1)
) throws -> LuaPool {
    var files = modules
    files["handlers/main.lua"] = "return function(...)\n\(body)\nend\n"
    let program = try LuaProgram(files: files, handlers: ["handlers/main.lua"])
    return LuaPool(program: program, environment: environment, configuration: configuration)
}

/// Runs `body` once in a fresh pool and returns its results.
func run(_ body: String, _ arguments: [LuaValue] = [], configuration: LuaPoolConfiguration = LuaPoolConfiguration(size: 1), limits: LuaLimits? = nil) async throws -> [LuaValue] {
    try await makePool(body, configuration: configuration).invoke("handlers/main.lua", arguments, limits: limits)
}

/// Runs `body` and returns the error it failed with (the test fails if it succeeds).
func failure(_ body: String, in pool: LuaPool? = nil, _ arguments: [LuaValue] = [], limits: LuaLimits? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws -> LuaError {
    let pool = try pool ?? makePool(body)
    do {
        let values = try await pool.invoke("handlers/main.lua", arguments, limits: limits)
        Issue.record("expected a failure, got \(values)", sourceLocation: sourceLocation)
        return LuaError(code: .runtime, message: "")
    } catch {
        return error
    }
}

/// Objects whose deinit the tests count.
final class Tracked: Sendable {
    static let live = Atomic<Int>(0)
    init() { Self.live.add(1, ordering: .relaxed) }
    deinit { Self.live.subtract(1, ordering: .relaxed) }
}

/// Host functions the tests call from Lua.
enum TestHost {
    static let printed = Mutex<[String]>([])

    static let environment = LuaEnvironment(
        libraries: [
            LuaLibrary(name: "test", functions: [
                "echo": { call in .values((1...max(1, call.count)).map { (try? call.value($0)) ?? .nil }) },
                "fail": { call in throw LuaScriptError(try call.string(1)) },
                "wait": { call in
                    let value = try call.value(1)
                    let milliseconds = try call.optionalInteger(2) ?? 1
                    return .suspend {
                        try await Task.sleep(for: .milliseconds(milliseconds))
                        return .value(value)
                    }
                },
                // Waits with a callback, called from another thread (or at once with `now`).
                "call_back": { call in
                    let value = try call.value(1)
                    let now = try call.optionalString(2) == "now"
                    return .callback { done in
                        guard !now else { return done(.success(.value(value))) }
                        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(2)) { done(.success(.value(value))) }
                    }
                },
                "call_back_fail": { call in
                    let message = try call.string(1)
                    return .callback { done in DispatchQueue.global().async { done(.failure(LuaScriptError(message))) } }
                },
                "wait_fail": { call in
                    let message = try call.string(1)
                    return .suspend {
                        await Task.yield()
                        throw LuaScriptError(message)
                    }
                },
                "tracked_fail": { _ in
                    let first = Tracked()
                    let second = [Tracked(), Tracked()]
                    withExtendedLifetime((first, second)) {}
                    throw LuaScriptError("failed while holding Swift objects")
                },
                "tracked_wait": { _ in
                    let held = Tracked()
                    return .suspend {
                        withExtendedLifetime(held) {}
                        await Task.yield()
                        return .value(.integer(Int64(Tracked.live.load(ordering: .relaxed))))
                    }
                },
            ]),
            LuaLibrary(name: "kv", functions: [
                "get": { call in
                    let key = try call.string(1)
                    return .suspend { .value(.string("value of \(key)")) }
                },
            ]),
        ],
        print: { line, _ in printed.withLock { $0.append(line) } }
    )
}
