/// Runs invocations on one VM at a time: the actor is the VM's confinement.
///
/// While an invocation waits for a host call the actor is free, so other invocations start or
/// continue on the same VM (the OpenResty model: one VM, many coroutines, no thread blocked).
/// When the VM must go (a limit breach, worn out after `maxUsesPerVM`), the next invocation gets
/// a fresh one; invocations still in flight finish on the old VM, which is freed after them.
actor LuaWorker {
    private var slot: LuaVMSlot

    init(program: LuaProgram, functions: HostFunctionTable, configuration: LuaPoolConfiguration) {
        slot = LuaVMSlot(program: program, functions: functions, configuration: configuration)
    }

    var statistics: LuaPoolStatistics { slot.statistics }

    /// Builds the VM now (running every handler file's top level) instead of at first use.
    func prepare() throws(LuaError) {
        _ = try slot.current()
    }

    func invoke(_ handler: String, arguments: LuaArguments, context: (any Sendable)?, limits: LuaLimits) async throws(LuaError) -> [LuaValue] {
        let started = try slot.start(handler, arguments: arguments, context: context, limits: limits)
        let vm = started.vm
        var invocation = started.invocation
        var conclusion = started.conclusion
        while true {
            switch conclusion {
            case .returned(let result):
                return try result.get()
            case .waiting(let operation):
                let outcome = await operation.outcome()
                conclusion = slot.resume(outcome, vm: vm, invocation: &invocation, cancelled: Task.isCancelled)
            case .paused:
                await Task.yield()
                conclusion = slot.proceed(vm: vm, invocation: &invocation, cancelled: Task.isCancelled)
            }
        }
    }
}

/// Counters of a pool, for metrics and tests.
public struct LuaPoolStatistics: Sendable, Hashable {
    /// Invocations started.
    public var invocations = 0
    /// Invocations that failed (script error, limit, cancellation).
    public var failures = 0
    /// VMs built.
    public var vmsCreated = 0
    /// VMs retired after a limit breach or `maxUsesPerVM` invocations.
    public var vmsRetired = 0

    static func + (lhs: LuaPoolStatistics, rhs: LuaPoolStatistics) -> LuaPoolStatistics {
        LuaPoolStatistics(
            invocations: lhs.invocations + rhs.invocations, failures: lhs.failures + rhs.failures,
            vmsCreated: lhs.vmsCreated + rhs.vmsCreated, vmsRetired: lhs.vmsRetired + rhs.vmsRetired
        )
    }
}
