import NIOCore

/// Continues the handlers an event loop paused after their time slice, in rounds with an I/O poll
/// between two rounds.
///
/// NIO runs an event loop's tasks until none is ready before it polls for I/O again, so a paused
/// handler continued with `execute` would starve the loop's connections just as if it had never
/// paused. A round is a task scheduled a moment ahead instead: when the loop looks for the next
/// ready task, the round is not due yet, so it polls first (new connections, requests and writes
/// go ahead), and the round then gives every handler paused before it one more slice.
final class SliceRounds: @unchecked Sendable {
    /// How far ahead the next round is scheduled: long enough not to be due when the loop looks
    /// for its next task, short enough to cost a spinning handler about 1 % of a 2 ms slice.
    static let gap = TimeAmount.microseconds(20)

    private static let all = PerEventLoop { SliceRounds(loop: $0) }

    /// The rounds of `loop`.
    static func on(_ loop: any EventLoop) -> SliceRounds { all.on(loop) }

    private let loop: any EventLoop
    // Used only on `loop`.
    private var waiting: [@Sendable () -> Void] = []
    private var scheduled = false

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    /// Adds a paused handler's continuation to the next round. Call on the loop.
    func enqueue(_ work: @escaping @Sendable () -> Void) {
        loop.preconditionInEventLoop()
        waiting.append(work)
        guard !scheduled else { return }
        scheduled = true
        loop.scheduleTask(in: Self.gap) { self.round() }
    }

    private func round() {
        let due = waiting
        waiting.removeAll(keepingCapacity: true)
        // What pauses again in this round goes to the next one, scheduled after this one ended.
        for work in due { work() }
        scheduled = false
        if !waiting.isEmpty {
            scheduled = true
            loop.scheduleTask(in: Self.gap) { self.round() }
        }
    }
}
