/// Limits of one invocation.
public struct LuaLimits: Sendable, Hashable {
    /// Lua VM instructions an invocation may execute (C library loops and pattern-matching
    /// steps count too). Default 100 million, roughly a third of a second of pure Lua.
    public var instructions: Int64
    /// Wall-clock time from start to finish, waiting for host calls included. Default 10 s.
    public var timeout: Duration

    public init(instructions: Int64 = 100_000_000, timeout: Duration = .seconds(10)) {
        self.instructions = instructions
        self.timeout = timeout
    }

    public static let `default` = LuaLimits()

    var timeoutNanoseconds: UInt64 { timeout.clampedNanoseconds }
}

extension Duration {
    /// Whole nanoseconds for the C side's clock arithmetic: 0 for a negative duration, and at most
    /// half of `UInt64.max` (so adding it to a clock reading cannot overflow).
    var clampedNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? UInt64.max / 2 : min(UInt64.max / 2, whole + UInt64(max(0, attoseconds) / 1_000_000_000))
    }
}

/// How a ``LuaPool`` builds and recycles its VMs.
public struct LuaPoolConfiguration: Sendable, Hashable {
    /// VMs in the pool; each serves many invocations at once (they interleave while waiting).
    public var size: Int
    /// Memory cap per VM in bytes (default 64 MiB). Reaching it fails the allocation with a
    /// catchable "not enough memory" and retires the VM.
    public var memoryLimit: Int
    /// Invocations a VM serves before it is replaced by a fresh one (default 10,000).
    public var maxUsesPerVM: Int
    /// Limits of each invocation unless the caller passes others.
    public var limits: LuaLimits
    /// Steps one `string.find/match/gmatch/gsub` call may take (default 10 million).
    public var patternStepLimit: Int64
    /// Nesting depth of values crossing between Lua and Swift (default 128).
    public var maxValueDepth: Int
    /// Values one conversion out of Lua may copy from tables it has converted before (default one
    /// million). Swift values are trees, so a table that several fields refer to is copied for each;
    /// tables that each refer twice to the next would otherwise grow without bound.
    public var maxCopiedValues: Int
    /// Instructions between two checks of the budget and the deadline.
    public var hookInterval: Int
    /// How long an invocation runs Lua code before it is paused to let other work on its thread
    /// go first (default 2 ms; zero: never paused). A pause happens only where a host call could
    /// wait (not inside a metamethod or callback called from C), and costs nothing of the limits.
    public var timeSlice: Duration

    public init(
        size: Int = 2,
        memoryLimit: Int = 64 << 20,
        maxUsesPerVM: Int = 10_000,
        limits: LuaLimits = .default,
        patternStepLimit: Int64 = 10_000_000,
        maxValueDepth: Int = LuaJSON.defaultMaxDepth,
        maxCopiedValues: Int = LuaPoolConfiguration.defaultMaxCopiedValues,
        hookInterval: Int = 1000,
        timeSlice: Duration = .milliseconds(2)
    ) {
        self.size = max(1, size)
        self.memoryLimit = memoryLimit
        self.maxUsesPerVM = max(1, maxUsesPerVM)
        self.limits = limits
        self.patternStepLimit = patternStepLimit
        self.maxValueDepth = maxValueDepth
        self.maxCopiedValues = max(0, maxCopiedValues)
        self.hookInterval = max(1, hookInterval)
        self.timeSlice = max(.zero, timeSlice)
    }

    var timeSliceNanoseconds: UInt64 { timeSlice.clampedNanoseconds }

    public static let defaultMaxCopiedValues = 1_000_000
}
