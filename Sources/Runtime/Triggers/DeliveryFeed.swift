import NIOCore
import Services
import Synchronization

/// The dispatcher's line: deliveries waiting for a worker, in the order they came, and the workers
/// waiting for a delivery.
///
/// Rows the store leases as it writes them arrive on SQLite's one writer thread, after each
/// commit, and that thread's time is every write's time. An `AsyncStream` with several consumers
/// resumed one idle worker per delivery there (a task enqueued each, and the stream's generic
/// bookkeeping): 7 % of the writer's CPU in a trigger burst. Here a push wakes at most one idle
/// worker, and each worker that gets a delivery wakes the next one while deliveries and idle
/// workers are left, on its own thread.
///
/// As with `AsyncStream`: after ``finish()`` the deliveries still in line are handed out, then
/// every `next()` returns nil, and later pushes are dropped. A cancelled worker's `next()`
/// returns nil.
final class DeliveryFeed: Sendable {
    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<OutboxDelivery?, Never>
    }

    private struct State {
        var line = CircularBuffer<OutboxDelivery>()
        var idle = CircularBuffer<Waiter>()
        var lastWaiter = 0
        var finished = false

        /// Idle workers to resume now: one with the first delivery in line, if there are both;
        /// all of them with nil, once the feed finished and its line is empty.
        mutating func handOff() -> [(Waiter, OutboxDelivery?)] {
            guard !idle.isEmpty else { return [] }
            if let delivery = line.popFirst() { return [(idle.removeFirst(), delivery)] }
            guard finished else { return [] }
            defer { idle.removeAll() }
            return idle.map { ($0, nil) }
        }

        static func resume(_ handOff: [(Waiter, OutboxDelivery?)]) {
            for (waiter, delivery) in handOff { waiter.continuation.resume(returning: delivery) }
        }
    }

    private let state = Mutex(State())

    /// Adds deliveries at the end of the line.
    func push(_ deliveries: [OutboxDelivery]) {
        guard !deliveries.isEmpty else { return }
        State.resume(state.withLock { state in
            guard !state.finished else { return [] }
            state.line.append(contentsOf: deliveries)
            return state.handOff()
        })
    }

    /// No more deliveries: once the line is empty, every `next()` returns nil.
    func finish() {
        State.resume(state.withLock { state in
            state.finished = true
            return state.handOff()
        })
    }

    /// The first delivery in line, waiting for one if there is none; nil once the feed finished
    /// and its line is empty, or when the task is cancelled.
    func next() async -> OutboxDelivery? {
        enum Taken { case delivery(OutboxDelivery), end, waiting(Int) }
        let taken = state.withLock { state -> Taken in
            if let delivery = state.line.popFirst() { return .delivery(delivery) }
            if state.finished { return .end }
            state.lastWaiter += 1
            return .waiting(state.lastWaiter)
        }
        let delivery: OutboxDelivery?
        switch taken {
        case .delivery(let first): delivery = first
        case .end: return nil
        case .waiting(let id): delivery = await wait(id: id)
        }
        if delivery != nil { wakeAnother() }
        return delivery
    }

    private func wait(id: Int) async -> OutboxDelivery? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                enum Outcome { case delivery(OutboxDelivery), end, waits }
                let outcome = state.withLock { state -> Outcome in
                    // A push or a finish may have come since the first look.
                    if let delivery = state.line.popFirst() { return .delivery(delivery) }
                    if state.finished || Task.isCancelled { return .end }
                    state.idle.append(Waiter(id: id, continuation: continuation))
                    return .waits
                }
                switch outcome {
                case .delivery(let delivery): continuation.resume(returning: delivery)
                case .end: continuation.resume(returning: nil)
                case .waits: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.idle.firstIndex(where: { $0.id == id }) else { return nil }
                return state.idle.remove(at: index)
            }
            waiter?.continuation.resume(returning: nil)
        }
    }

    /// Passes the next delivery to an idle worker, if both are there (or ends the idle workers'
    /// wait, when the feed finished and this was the last delivery).
    private func wakeAnother() {
        State.resume(state.withLock { $0.handOff() })
    }
}
