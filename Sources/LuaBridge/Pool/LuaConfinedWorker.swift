import Synchronization

/// A VM confined to one thread, for callers that live on that thread (an event loop): an
/// invocation runs at once, on the caller's stack, and a handler that makes no waiting host call
/// finishes before `invoke` returns, with no task and no thread hand-off (the OpenResty model).
///
/// A waiting host call runs in a task (on `executor` when given, so that it starts and resumes on
/// the worker's thread), or, written with a callback (``LuaHostResult/callback(_:)``), starts at
/// once without one; its outcome comes back through `schedule`, which must run the closure on
/// the worker's thread, and the coroutine resumes there. Every method must be
/// called on that thread. A handler that computes for longer than the pool's time slice is
/// paused and continued through `pause`, which lets what else waits for the thread go first.
public final class LuaConfinedWorker: @unchecked Sendable {
    /// Runs a closure on the worker's thread (e.g. `eventLoop.execute`).
    public typealias Schedule = @Sendable (@escaping @Sendable () -> Void) -> Void
    public typealias Completion = @Sendable (Result<[LuaValue], LuaError>) -> Void

    private var slot: LuaVMSlot
    private let schedule: Schedule
    private let pause: Schedule
    /// Where the tasks of waiting host calls prefer to run (the worker's thread), or nil for Swift's pool.
    private let executor: (any TaskExecutor)?
    /// The slot's counters, readable from any thread.
    private let published = Mutex(LuaPoolStatistics())

    init(
        program: LuaProgram, functions: HostFunctionTable, configuration: LuaPoolConfiguration, schedule: @escaping Schedule, pause: @escaping Schedule,
        executor: (any TaskExecutor)? = nil
    ) {
        slot = LuaVMSlot(program: program, functions: functions, configuration: configuration)
        self.schedule = schedule
        self.pause = pause
        self.executor = executor
    }

    var statistics: LuaPoolStatistics { published.withLock { $0 } }

    /// Runs a handler; `completion` gets what it returned, on the worker's thread (before
    /// `invoke` returns when no host call waited).
    public func invoke(_ handler: String, arguments: [LuaValue], context: (any Sendable)?, limits: LuaLimits? = nil, completion: @escaping Completion) {
        invoke(handler, arguments: LuaArguments(arguments), context: context, limits: limits, completion: completion)
    }

    /// Runs a handler with arguments written onto its stack (see ``LuaArguments``); `results`,
    /// when given, reads what it returns off the stack (see ``LuaResultReader``).
    public func invoke(
        _ handler: String, arguments: LuaArguments, context: (any Sendable)?, limits: LuaLimits? = nil, results: (any LuaResultReader)? = nil,
        completion: @escaping Completion
    ) {
        do {
            let started = try slot.start(handler, arguments: arguments, context: context, limits: limits ?? slot.configuration.limits, results: results)
            settle(started.conclusion, vm: started.vm, invocation: started.invocation, completion: completion)
        } catch {
            publish()
            completion(.failure(error))
        }
    }

    private func settle(_ conclusion: LuaVMSlot.Conclusion, vm: LuaVM, invocation: LuaInvocation, completion: @escaping Completion) {
        switch conclusion {
        case .returned(let result):
            publish()
            completion(result)
        case .waiting(.callback(let start)):
            let suspended = Suspended(vm: vm, invocation: invocation)
            let schedule = schedule
            start { outcome in schedule { self.resume(suspended, with: outcome, completion: completion) } }
        case .waiting(let operation):
            let suspended = Suspended(vm: vm, invocation: invocation)
            let schedule = schedule
            Task(executorPreference: executor) {
                let outcome = await operation.outcome()
                schedule { self.resume(suspended, with: outcome, completion: completion) }
            }
        case .paused:
            // Behind what else the thread has waiting (other requests, I/O).
            let suspended = Suspended(vm: vm, invocation: invocation)
            pause { self.proceed(suspended, completion: completion) }
        }
    }

    private func proceed(_ suspended: Suspended, completion: @escaping Completion) {
        var invocation = suspended.invocation
        let conclusion = slot.proceed(vm: suspended.vm, invocation: &invocation, cancelled: false)
        settle(conclusion, vm: suspended.vm, invocation: invocation, completion: completion)
    }

    private func resume(_ suspended: Suspended, with outcome: Result<LuaHostResult, any Error>, completion: @escaping Completion) {
        var invocation = suspended.invocation
        let conclusion = slot.resume(outcome, vm: suspended.vm, invocation: &invocation, cancelled: false)
        settle(conclusion, vm: suspended.vm, invocation: invocation, completion: completion)
    }

    private func publish() {
        let current = slot.statistics
        published.withLock { $0 = current }
    }

    /// An invocation waiting for a host call, carried to the task and back to the worker's thread
    /// untouched.
    private struct Suspended: @unchecked Sendable {
        let vm: LuaVM
        let invocation: LuaInvocation
    }
}
