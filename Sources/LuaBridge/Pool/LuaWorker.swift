import CLuaShim

/// Runs invocations on one VM at a time: the actor is the VM's confinement.
///
/// While an invocation waits for a host call the actor is free, so other invocations start or
/// continue on the same VM (the OpenResty model: one VM, many coroutines, no thread blocked).
/// When the VM must go (a limit breach, worn out after `maxUsesPerVM`), the next invocation gets
/// a fresh one; invocations still in flight finish on the old VM, which is freed after them.
actor LuaWorker {
    private let program: LuaProgram
    private let functions: HostFunctionTable
    private let configuration: LuaPoolConfiguration
    private var vm: LuaVM?
    private(set) var statistics = LuaPoolStatistics()

    init(program: LuaProgram, functions: HostFunctionTable, configuration: LuaPoolConfiguration) {
        self.program = program
        self.functions = functions
        self.configuration = configuration
    }

    /// Builds the VM now (running every handler file's top level) instead of at first use.
    func prepare() throws(LuaError) {
        _ = try currentVM()
    }

    func invoke(_ handler: String, arguments: [LuaValue], context: (any Sendable)?, limits: LuaLimits) async throws(LuaError) -> [LuaValue] {
        let vm = try currentVM()
        var invocation = try vm.start(handler, arguments: arguments, context: context, limits: limits)
        statistics.invocations += 1
        var step = vm.run(&invocation, arguments: Int32(arguments.count))
        while true {
            switch step {
            case .finished(let values):
                vm.finish(invocation)
                vm.uses += 1
                if vm.uses >= configuration.maxUsesPerVM || vm.memoryBreached { retire(vm) }
                return values
            case .failed(let error):
                vm.finish(invocation)
                statistics.failures += 1
                if error.isLimitBreach || vm.memoryBreached { retire(vm) }
                throw error
            case .suspended(let operation):
                let outcome: Result<LuaHostResult, any Error>
                do {
                    outcome = .success(try await operation())
                } catch {
                    outcome = .failure(error)
                }
                if Task.isCancelled {
                    vm.finish(invocation)
                    statistics.failures += 1
                    throw LuaError(code: .cancelled, message: "\(handler): the invocation was cancelled")
                }
                if picloud_now_ns() >= invocation.deadline {
                    invocation.killed = PICLOUD_KILL_DEADLINE
                    vm.finish(invocation)
                    statistics.failures += 1
                    let waited = invocation.waitingOn.map { " waiting for \($0)" } ?? ""
                    throw LuaError(code: .timeout, message: "\(handler): time limit of \(limits.timeout) exceeded\(waited)", file: handler)
                }
                step = vm.resume(&invocation, with: outcome)
            }
        }
    }

    private func currentVM() throws(LuaError) -> LuaVM {
        if let vm, !vm.isRetired { return vm }
        let fresh = try LuaVM(program: program, functions: functions, configuration: configuration)
        statistics.vmsCreated += 1
        vm = fresh
        return fresh
    }

    private func retire(_ retiring: LuaVM) {
        guard !retiring.isRetired else { return }
        retiring.isRetired = true
        statistics.vmsRetired += 1
        if vm === retiring { vm = nil }
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
