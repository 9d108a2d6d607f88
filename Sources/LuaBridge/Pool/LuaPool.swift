import Synchronization

/// The VMs of one app: a fixed number of workers, each with its own VM, sharing one compiled
/// program. Never shared between apps. A new deployment gets a new pool; invocations in flight
/// on the old one finish there.
public final class LuaPool: Sendable {
    public let configuration: LuaPoolConfiguration
    public let program: LuaProgram
    private let workers: [LuaWorker]
    private let functions: HostFunctionTable
    /// Workers confined to a caller's thread, by the key the caller chose (an event loop).
    private let confined = Mutex<[ObjectIdentifier: LuaConfinedWorker]>([:])
    /// In-flight invocations per worker; a new one goes to the least busy.
    private let load: Mutex<[Int]>

    public init(program: LuaProgram, environment: LuaEnvironment = LuaEnvironment(), configuration: LuaPoolConfiguration = LuaPoolConfiguration()) {
        let functions = HostFunctionTable(environment: environment)
        self.configuration = configuration
        self.program = program
        self.functions = functions
        self.workers = (0..<configuration.size).map { _ in
            LuaWorker(program: program, functions: functions, configuration: configuration)
        }
        self.load = Mutex(Array(repeating: 0, count: configuration.size))
    }

    /// Builds every VM now, so that a handler file whose top level fails is reported before the
    /// pool serves anything.
    public func prepare() async throws(LuaError) {
        for worker in workers { try await worker.prepare() }
    }

    /// Runs a handler (by file path, e.g. `handlers/post.lua`) with arguments, and returns what it
    /// returned. Throws ``LuaError`` when the script fails or breaks a limit.
    public func invoke(
        _ handler: String, _ arguments: [LuaValue] = [], context: (any Sendable)? = nil, limits: LuaLimits? = nil
    ) async throws(LuaError) -> [LuaValue] {
        try await invoke(handler, arguments: LuaArguments(arguments), context: context, limits: limits)
    }

    /// Runs a handler with arguments written onto its stack (see ``LuaArguments``).
    public func invoke(
        _ handler: String, arguments: LuaArguments, context: (any Sendable)? = nil, limits: LuaLimits? = nil
    ) async throws(LuaError) -> [LuaValue] {
        let index = load.withLock { counts in
            var best = 0
            for candidate in counts.indices where counts[candidate] < counts[best] { best = candidate }
            counts[best] += 1
            return best
        }
        defer { load.withLock { $0[index] -= 1 } }
        return try await workers[index].invoke(handler, arguments: arguments, context: context, limits: limits ?? configuration.limits)
    }

    /// The worker already confined to the thread `key` stands for, if there is one: what a caller
    /// on a hot path asks first, before building the closures that making one needs.
    public func existingConfinedWorker(for key: ObjectIdentifier) -> LuaConfinedWorker? {
        confined.withLock { $0[key] }
    }

    /// The worker confined to the thread `key` stands for (one per key, made on first use with
    /// its own VM). `schedule` must run a closure on that thread; `pause`, if given, too: it
    /// continues handlers paused after their time slice and should let the thread's other work
    /// (I/O included) go first.
    public func confinedWorker(
        for key: ObjectIdentifier, schedule: @escaping LuaConfinedWorker.Schedule, pause: LuaConfinedWorker.Schedule? = nil,
        executor: @autoclosure () -> (any TaskExecutor)? = nil
    ) -> LuaConfinedWorker {
        confined.withLock { workers in
            if let worker = workers[key] { return worker }
            let worker = LuaConfinedWorker(
                program: program, functions: functions, configuration: configuration, schedule: schedule, pause: pause ?? schedule, executor: executor()
            )
            workers[key] = worker
            return worker
        }
    }

    /// Counters summed over the workers, confined ones included.
    public func statistics() async -> LuaPoolStatistics {
        var total = LuaPoolStatistics()
        for worker in workers { total = total + (await worker.statistics) }
        for worker in confined.withLock({ Array($0.values) }) { total = total + worker.statistics }
        return total
    }
}
