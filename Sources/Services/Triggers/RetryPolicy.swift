/// What happens to a delivery after its handler failed: a pure decision, no I/O.
///
/// Attempt `n` (1-based, counted when the delivery was claimed) failed. Before `maxAttempts`, the
/// next attempt is due after an exponential backoff `base * 2^(n-1)`, capped, with full jitter
/// between half and all of it (so a burst of failures does not retry in lockstep). After
/// `maxAttempts` the event becomes a dead letter, except an event delivered to a `dead_letter`
/// trigger, which is dropped: a dead letter never produces another one.
public struct RetryPolicy: Sendable, Hashable {
    public var maxAttempts: Int
    public var baseMilliseconds: Int64
    public var capMilliseconds: Int64

    public init(maxAttempts: Int, baseMilliseconds: Int64, capMilliseconds: Int64) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseMilliseconds = max(1, baseMilliseconds)
        self.capMilliseconds = max(self.baseMilliseconds, capMilliseconds)
    }

    public enum Decision: Sendable, Hashable {
        /// Try again at this time.
        case retry(at: Milliseconds)
        /// Give up: write a dead letter (and enqueue the dead_letter triggers).
        case deadLetter
        /// Give up without a dead letter (a dead_letter trigger's own delivery).
        case drop
    }

    /// The decision after attempt `attempt` failed at `now`; `jitter` is a random number in [0, 1).
    public func decide(afterFailedAttempt attempt: Int, now: Milliseconds, isDeadLetterDelivery: Bool, jitter: Double) -> Decision {
        guard attempt < maxAttempts else { return isDeadLetterDelivery ? .drop : .deadLetter }
        return .retry(at: now + delay(afterAttempt: attempt, jitter: jitter))
    }

    /// The backoff after attempt `attempt`: between half and all of `min(cap, base * 2^(attempt-1))`.
    public func delay(afterAttempt attempt: Int, jitter: Double) -> Milliseconds {
        let exponent = min(max(attempt - 1, 0), 40)
        let (raw, overflow) = baseMilliseconds.multipliedReportingOverflow(by: Int64(1) << Int64(exponent))
        let ceiling = overflow ? capMilliseconds : min(capMilliseconds, raw)
        // Integer arithmetic around the jitter: a Double of a huge ceiling may not fit back in 64 bits.
        let half = ceiling / 2
        let spread = ceiling - half
        let extra = Milliseconds(min(Double(spread), (Double(spread) * min(max(jitter, 0), 1)).rounded(.down)))
        return max(1, half + min(extra, spread))
    }
}
