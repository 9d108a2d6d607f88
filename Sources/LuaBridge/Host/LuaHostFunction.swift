import Logging

/// A Swift function scripts can call, e.g. `kv.get`.
///
/// It reads its arguments from the ``LuaHostCall`` and returns results, throws (the script sees a
/// Lua error at the calling line), or returns ``LuaHostResult/suspend(_:)``: the invocation's
/// coroutine then yields, the operation runs without blocking a thread, and the coroutine resumes
/// with its result. Other invocations use the VM meanwhile.
public typealias LuaHostFunction = @Sendable (LuaHostCall) throws -> LuaHostResult

/// The awaited part of a suspending host call.
public typealias LuaHostOperation = @Sendable () async throws -> LuaHostResult

/// The waiting part of a suspending host call, written with a callback: it starts the operation
/// and returns; the operation calls `done` exactly once, from any thread, with its outcome. A
/// thread-confined worker resumes the script from `done` without creating a task.
public typealias LuaHostCallback = @Sendable (_ done: @escaping @Sendable (Result<LuaHostResult, any Error>) -> Void) -> Void

/// What a suspended invocation waits for.
public enum LuaHostWait: Sendable {
    case operation(LuaHostOperation)
    case callback(LuaHostCallback)

    /// Waits for the outcome (from a task).
    func outcome() async -> Result<LuaHostResult, any Error> {
        switch self {
        case .operation(let operation):
            do {
                return .success(try await operation())
            } catch {
                return .failure(error)
            }
        case .callback(let start):
            return await withCheckedContinuation { continuation in start { continuation.resume(returning: $0) } }
        }
    }
}

/// What a host function gives back to the script.
public enum LuaHostResult: Sendable {
    /// Zero or more results.
    case values([LuaValue])
    /// Exactly one result.
    case value(LuaValue)
    /// The argument at this position, unchanged (the same table, not a copy).
    case argument(Int)
    /// Wait for an operation, then return its results to the script.
    case suspend(LuaHostOperation)
    /// Wait for an operation that calls back with its results (see ``LuaHostCallback``): the
    /// cheaper form where a service has a callback interface.
    case callback(LuaHostCallback)

    /// No results.
    public static let none = LuaHostResult.values([])
}

/// An error a host function throws to give the script a specific message or error value.
/// Any other thrown error reaches the script as its description.
public struct LuaScriptError: Error, Sendable, CustomStringConvertible {
    /// The value the script's `pcall` receives; a string gets the caller's `file:line:` in front.
    public let value: LuaValue

    public init(_ message: String) { value = .string(message) }
    public init(value: LuaValue) { self.value = value }

    public var description: String { value.stringValue ?? "error value (\(value.typeName))" }
}

/// A table of host functions and constant values installed as a global (`kv`, `json`, ...),
/// or, without a name, functions installed as globals themselves (`uuid`).
public struct LuaLibrary: Sendable {
    public var name: String?
    public var functions: [String: LuaHostFunction]
    public var values: [String: LuaValue]

    public init(name: String?, functions: [String: LuaHostFunction] = [:], values: [String: LuaValue] = [:]) {
        self.name = name
        self.functions = functions
        self.values = values
    }
}

/// Everything the host adds to the sandbox: libraries and where `print` goes.
public struct LuaEnvironment: Sendable {
    public var libraries: [LuaLibrary]
    /// Receives each line a script prints, with the invocation's context.
    public var print: @Sendable (_ line: String, _ context: (any Sendable)?) -> Void

    /// - Parameter print: where printed lines go; by default the `picloud.lua` logger at info level.
    public init(libraries: [LuaLibrary] = [], print: (@Sendable (_ line: String, _ context: (any Sendable)?) -> Void)? = nil) {
        self.libraries = libraries
        self.print = print ?? { line, _ in Self.scriptLogger.info("\(line)") }
    }

    static let scriptLogger = Logger(label: "picloud.lua")

    /// Global names the sandbox defines itself; a library cannot take them.
    public static let reservedNames: Set<String> = [
        "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawlen",
        "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "xpcall", "_VERSION", "_G", "print",
        "require", "string", "table", "math", "utf8", "coroutine", "os", "json",
    ]
}

/// The host functions of an environment, numbered for the C trampolines.
struct HostFunctionTable: Sendable {
    struct Entry: Sendable {
        let name: String
        let body: LuaHostFunction
    }

    /// How a library appears in a VM: each global name with its functions (by number) and values.
    struct Installation: Sendable {
        let global: String?
        let functions: [(name: String, id: Int)]
        let values: [(name: String, value: LuaValue)]
    }

    private(set) var entries: [Entry] = []
    private(set) var installations: [Installation] = []
    static let printID = 0

    init(environment: LuaEnvironment) {
        let print = environment.print
        entries.append(Entry(name: "print") { call in
            let line = (try? call.string(1)) ?? ""
            print(line, call.context)
            return .none
        })
        for library in [JSONLibrary.library] + environment.libraries {
            if let name = library.name {
                precondition(name == "json" || !LuaEnvironment.reservedNames.contains(name), "library name \(name) is reserved")
            }
            var functions: [(String, Int)] = []
            for (name, body) in library.functions.sorted(by: { $0.key < $1.key }) {
                precondition(library.name != nil || !LuaEnvironment.reservedNames.contains(name), "global \(name) is reserved")
                let qualified = library.name.map { "\($0).\(name)" } ?? name
                functions.append((name, entries.count))
                entries.append(Entry(name: qualified, body: body))
            }
            installations.append(Installation(global: library.name, functions: functions, values: library.values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
        }
    }
}
