import CLuaShim

/// The VM a worker runs invocations on, and what decides when it must be replaced. Shared by
/// the two kinds of worker: ``LuaWorker`` (an actor) and ``LuaConfinedWorker`` (one thread).
/// Used only from the worker's isolation.
struct LuaVMSlot {
    let program: LuaProgram
    let functions: HostFunctionTable
    let configuration: LuaPoolConfiguration
    private var vm: LuaVM?
    var statistics = LuaPoolStatistics()

    /// What an invocation comes to after a step.
    enum Conclusion {
        /// It finished (values) or failed; the coroutine is released.
        case returned(Result<[LuaValue], LuaError>)
        /// It waits for a host call; resume with ``resume(_:vm:invocation:cancelled:)``.
        case waiting(LuaHostWait)
        /// It used up its time slice; let other work run, then continue it with
        /// ``proceed(vm:invocation:cancelled:)``.
        case paused
    }

    init(program: LuaProgram, functions: HostFunctionTable, configuration: LuaPoolConfiguration) {
        self.program = program
        self.functions = functions
        self.configuration = configuration
    }

    /// The VM to start on: the current one, or a fresh one after the last was retired.
    mutating func current() throws(LuaError) -> LuaVM {
        if let vm, !vm.isRetired { return vm }
        let fresh = try LuaVM(program: program, functions: functions, configuration: configuration)
        statistics.vmsCreated += 1
        vm = fresh
        return fresh
    }

    /// Starts a handler on the current VM and runs it to its first host call or its end.
    mutating func start(
        _ handler: String, arguments: LuaArguments, context: (any Sendable)?, limits: LuaLimits, results: (any LuaResultReader)? = nil
    ) throws(LuaError) -> (vm: LuaVM, invocation: LuaInvocation, conclusion: Conclusion) {
        let vm = try current()
        var invocation = try vm.start(handler, arguments: arguments, context: context, limits: limits, results: results)
        statistics.invocations += 1
        let step = vm.run(&invocation, arguments: invocation.arguments, now: invocation.started)
        return (vm, invocation, conclude(step, vm: vm, invocation: invocation))
    }

    /// Resumes an invocation with its host call's outcome, unless it was cancelled or its time
    /// ran out meanwhile.
    mutating func resume(_ outcome: Result<LuaHostResult, any Error>, vm: LuaVM, invocation: inout LuaInvocation, cancelled: Bool) -> Conclusion {
        if let stopped = stop(vm: vm, invocation: &invocation, cancelled: cancelled) { return stopped }
        let step = vm.resume(&invocation, with: outcome)
        return conclude(step, vm: vm, invocation: invocation)
    }

    /// Continues an invocation paused after its time slice, unless it was cancelled or its time
    /// ran out meanwhile.
    mutating func proceed(vm: LuaVM, invocation: inout LuaInvocation, cancelled: Bool) -> Conclusion {
        if let stopped = stop(vm: vm, invocation: &invocation, cancelled: cancelled) { return stopped }
        let step = vm.proceed(&invocation)
        return conclude(step, vm: vm, invocation: invocation)
    }

    /// Ends an invocation that must not continue: cancelled, or past its deadline.
    private mutating func stop(vm: LuaVM, invocation: inout LuaInvocation, cancelled: Bool) -> Conclusion? {
        if cancelled {
            vm.finish(invocation)
            statistics.failures += 1
            return .returned(.failure(LuaError(code: .cancelled, message: "\(invocation.handler): the invocation was cancelled")))
        }
        if picloud_now_ns() >= invocation.deadline {
            invocation.killed = PICLOUD_KILL_DEADLINE
            vm.finish(invocation)
            statistics.failures += 1
            let waited = invocation.waitingOn.map { " waiting for \($0)" } ?? ""
            return .returned(.failure(LuaError(
                code: .timeout, message: "\(invocation.handler): time limit of \(invocation.limits.timeout) exceeded\(waited)", file: invocation.handler
            )))
        }
        return nil
    }

    private mutating func conclude(_ step: LuaStep, vm: LuaVM, invocation: LuaInvocation) -> Conclusion {
        switch step {
        case .finished(let values):
            vm.finish(invocation)
            vm.uses += 1
            if vm.uses >= configuration.maxUsesPerVM || vm.memoryBreached { retire(vm) }
            return .returned(.success(values))
        case .failed(let error):
            vm.finish(invocation)
            statistics.failures += 1
            if error.isLimitBreach || vm.memoryBreached { retire(vm) }
            return .returned(.failure(error))
        case .suspended(let operation):
            return .waiting(operation)
        case .paused:
            return .paused
        }
    }

    /// Invocations still in flight on a retired VM finish there; it is freed after them.
    private mutating func retire(_ retiring: LuaVM) {
        guard !retiring.isRetired else { return }
        retiring.isRetired = true
        statistics.vmsRetired += 1
        if vm === retiring { vm = nil }
    }

}
