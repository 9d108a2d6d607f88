import Synchronization

/// Wakes the dispatcher's loop at once, or lets it sleep until a timeout. A wake-up while nobody
/// waits is kept, so one between two waits is never lost.
///
/// Two kinds: `ring` says rows may wait for a claim (an event was written and not leased, a
/// retry, a replay), and stays wanted until a claim saw everything rung before it; `nudge` only
/// wakes the loop to acknowledge finished deliveries.
final class Doorbell: Sendable {
    private struct State {
        var woken = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    /// Rings so far, and the last ring a claim started after (a claim sees every row written before it).
    private let rings = Atomic<Int>(1)
    private let claimedThrough = Atomic<Int>(0)

    func ring() {
        rings.add(1, ordering: .sequentiallyConsistent)
        wake()
    }

    func nudge() { wake() }

    /// Whether a ring came that no claim has answered yet (true at first: rows may be left from before).
    var isClaimWanted: Bool { rings.load(ordering: .sequentiallyConsistent) != claimedThrough.load(ordering: .sequentiallyConsistent) }

    /// Marks the rings so far before a claim; after it, `claimed(through:)` says it saw everything.
    var ringsSoFar: Int { rings.load(ordering: .sequentiallyConsistent) }

    func claimed(through ring: Int) { claimedThrough.store(ring, ordering: .sequentiallyConsistent) }

    private func wake() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.woken = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when rung or nudged (or already since the last wait), or after `timeout`.
    func wait(timeout: Duration) async {
        if state.withLock({ state in defer { state.woken = false }; return state.woken }) { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForWake() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForWake() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.woken || Task.isCancelled {
                        state.woken = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}
