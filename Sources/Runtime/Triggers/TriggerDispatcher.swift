import Foundation
import Prometheus
import Logging
import LuaBridge
import ServiceLifecycle
import Services
import Synchronization

/// Delivers outbox events to trigger handlers: leases due rows, runs up to `concurrency` handlers
/// at once, deletes delivered rows, schedules retries with backoff, and turns exhausted deliveries
/// into dead letters (firing the dead_letter triggers in the same transaction).
///
/// It wakes at once when a transaction writes events (the registry rings its doorbell) and polls
/// slowly as a fallback. On SQLite the store leases new rows to it in the transaction that writes
/// them when it has room (``OutboxLeaseTaker``), and rings only for the others. A lease that runs
/// out (a crashed node) frees the row for another delivery: at least once, never lost.
final class TriggerDispatcher: Service, Sendable {
    let core: PiCloudCore
    let owner = "node-" + Identifiers.randomHex(6)
    let concurrency: Int
    let leaseMilliseconds: Int64
    let pollInterval: Duration
    let line: DeliveryLine
    /// Claimed deliveries not finished yet: running, or waiting in line.
    private let inFlight = Atomic<Int>(0)
    /// A moving average of how long handlers take, in microseconds (0: none finished yet).
    private let handlerMicros = Atomic<Int>(0)
    private let acknowledged = Mutex<[Int64]>([])
    /// Where claimed deliveries, and rows the store leased as it wrote them, go to the workers.
    private let feed = DeliveryFeed()

    init(core: PiCloudCore) {
        self.core = core
        self.concurrency = core.configuration.dispatcherConcurrency
        self.leaseMilliseconds = Int64(core.configuration.dispatcherLeaseMilliseconds)
        self.pollInterval = .milliseconds(core.configuration.dispatcherPollMilliseconds)
        self.line = DeliveryLine(concurrency: concurrency, leaseMilliseconds: leaseMilliseconds)
    }

    var storage: any StorageBackend { core.services.storage }
    var doorbell: Doorbell { core.triggers.doorbell }

    func run() async throws {
        core.triggers.storeRings.store(storage.leaseNewRows(to: self), ordering: .relaxed)
        defer { stopLeasing() }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        while let delivery = await self.feed.next() { await self.deliver(delivery) }
                    }
                }
                group.addTask {
                    await self.claimLoop()
                    self.feed.finish()
                }
            }
        } onGracefulShutdown: {
            self.stopLeasing()
            self.doorbell.ring()
        }
        try? await flushAcknowledged()
    }

    /// New rows go to the claim again (the store rings for each write with events).
    private func stopLeasing() {
        core.triggers.storeRings.store(false, ordering: .relaxed)
        _ = storage.leaseNewRows(to: nil)
    }

    private func claimLoop() async {
        // When to claim even without a ring: the poll, or sooner when a row falls due.
        var claimBy = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                // Rows wait in line behind the running ones, so a worker that finishes finds the
                // next delivery without waiting for a claim; how many, `line` decides.
                let free = concurrency + line.waiting(handlerMicros: handlerMicros.load(ordering: .relaxed)) - inFlight.load(ordering: .relaxed)
                let done = acknowledged.withLock { ids in defer { ids.removeAll(keepingCapacity: true) }; return ids }
                // Claim only when rows may wait for it: a ring no claim has answered, or the time
                // (leases that ran out, retries falling due). Rows the store leased as it wrote
                // them come without a ring; then finished deliveries are only acknowledged.
                guard free > 0, doorbell.isClaimWanted || ContinuousClock.now >= claimBy else {
                    if !done.isEmpty { try await storage.completeDeliveries(ids: done, owner: owner) }
                    // With no room, a finished delivery makes some (and nudges).
                    await doorbell.wait(timeout: free > 0 ? max(.zero, claimBy - ContinuousClock.now) : pollInterval)
                    continue
                }
                let rings = doorbell.ringsSoFar
                let rows = try await storage.completeAndClaim(completed: done, owner: owner, now: Clock.now(), leaseMilliseconds: leaseMilliseconds, limit: free)
                let claimed = rows.count
                inFlight.add(claimed, ordering: .relaxed)
                feed.push(rows)
                if claimed == free { continue }
                doorbell.claimed(through: rings)
                var timeout = pollInterval
                if let due = try await storage.nextDueTime(now: Clock.now()) {
                    timeout = min(timeout, .milliseconds(max(1, due - Clock.now())))
                }
                claimBy = ContinuousClock.now + timeout
                await doorbell.wait(timeout: timeout)
            } catch {
                core.logger.error("trigger dispatcher: \(error)")
                try? await Task.sleep(for: .seconds(1))
                claimBy = ContinuousClock.now
            }
        }
    }

    private func flushAcknowledged() async throws {
        let ids = acknowledged.withLock { ids in defer { ids.removeAll(keepingCapacity: true) }; return ids }
        try await storage.completeDeliveries(ids: ids, owner: owner)
    }

    private func deliver(_ delivery: OutboxDelivery) async {
        defer {
            // Nudge the claim loop only when the line is half gone: it then acknowledges a batch
            // of finished rows (and claims, if a claim is wanted) in one transaction, not one per
            // delivery.
            let waiting = line.waiting(handlerMicros: handlerMicros.load(ordering: .relaxed))
            if inFlight.subtract(1, ordering: .relaxed).newValue <= concurrency + waiting / 2 { doorbell.nudge() }
        }
        // A handler must finish well inside its lease, or another delivery would start meanwhile.
        let margin = min(5000, leaseMilliseconds / 5)
        let leaseLeft = (delivery.leasedUntil ?? (Clock.now() + leaseMilliseconds)) - Clock.now() - margin
        guard leaseLeft >= margin else {
            // It waited in line too long (handlers slowed down after it was claimed): give it back
            // untouched instead of counting an attempt it never had.
            do {
                try await storage.releaseDelivery(id: delivery.id, owner: owner)
                core.metrics.released.increment()
                doorbell.ring()
            } catch {
                core.logger.error("trigger dispatcher: cannot give back delivery \(delivery.id): \(error)")
            }
            return
        }
        let metrics = core.metrics
        metrics.deliveryLatency.record(.milliseconds(max(0, Clock.now() - delivery.dueAt)))
        let started = ContinuousClock.now
        do {
            try await run(delivery, leaseLeft: leaseLeft)
            finished(after: ContinuousClock.now - started)
            metrics.deliveries.increment()
            acknowledged.withLock { $0.append(delivery.id) }
        } catch {
            finished(after: ContinuousClock.now - started)
            metrics.failures.increment()
            await failed(delivery, error: error)
        }
    }

    private func finished(after duration: Duration) {
        core.metrics.handlerDuration.record(duration)
        let micros = Int(duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000)
        // Racing updates may lose one sample; the average only sizes the line.
        handlerMicros.store(DeliveryLine.average(handlerMicros.load(ordering: .relaxed), adding: micros), ordering: .relaxed)
    }

    private func run(_ delivery: OutboxDelivery, leaseLeft: Int64) async throws {
        guard let deployment = core.registry.deployment(for: delivery.app) else {
            throw DeliveryError(message: "app '\(delivery.app)' has nothing deployed")
        }
        guard case .object(var event) = try LuaJSON.decode(delivery.event) else { throw DeliveryError(message: "the event is not an object") }
        event["id"] = .string(delivery.eventID)
        event["trigger"] = .string(delivery.triggerID)
        var limits = deployment.pool.configuration.limits
        if let timeout = delivery.timeoutMilliseconds { limits.timeout = .milliseconds(timeout) }
        limits.timeout = min(limits.timeout, .milliseconds(leaseLeft))
        let context = InvocationContext(
            app: delivery.app, requestID: delivery.eventID, principal: nil,
            deadline: Date().timeIntervalSince1970 + Double(limits.timeout.components.seconds), depth: delivery.depth,
            attempt: delivery.attempts, trigger: delivery.triggerID
        )
        _ = try await deployment.pool.invoke(delivery.handler, [.object(event), context.luaValue], context: context, limits: limits)
    }

    private func failed(_ delivery: OutboxDelivery, error: any Error) async {
        let message = (error as? LuaError)?.message ?? "\(error)"
        let logs = core.services.logs
        let now = Clock.now()
        let decision = delivery.retry.decide(afterFailedAttempt: delivery.attempts, now: now, isDeadLetterDelivery: delivery.toDeadLetter, jitter: Double.random(in: 0..<1))
        let traceback = (error as? LuaError)?.traceback.map { "\n" + $0 } ?? ""
        do {
            switch decision {
            case .retry(let at):
                logs.append(app: delivery.app, level: .warn, message: "\(delivery.kind.rawValue) trigger \(delivery.triggerID): \(delivery.handler) failed (attempt \(delivery.attempts) of \(delivery.retry.maxAttempts), next in \(at - now) ms): \(message)\(traceback)", requestID: delivery.eventID)
                try await storage.retryDelivery(id: delivery.id, owner: owner, dueAt: at, error: message)
                core.metrics.retries.increment()
                doorbell.ring() // the claim loop then sleeps until it is due
            case .deadLetter:
                let targets = core.triggers.targets(app: delivery.app, event: .deadLetter(triggerID: delivery.triggerID, kind: delivery.kind, handler: delivery.handler), depth: delivery.depth)
                let record = try await storage.deadLetter(delivery, owner: owner, error: message, now: now, deadLetterTargets: OutboxEnqueue(targets: targets, depth: delivery.depth))
                if let record {
                    logs.append(app: delivery.app, level: .error, message: "\(delivery.kind.rawValue) trigger \(delivery.triggerID): \(delivery.handler) failed \(delivery.attempts) times; dead letter \(record.id) (\(targets.count) dead_letter trigger(s) fired): \(message)\(traceback)", requestID: delivery.eventID)
                    core.metrics.deadLetters.increment()
                    if !targets.isEmpty { doorbell.ring() }
                }
            case .drop:
                logs.append(app: delivery.app, level: .error, message: "dead_letter trigger \(delivery.triggerID): \(delivery.handler) failed \(delivery.attempts) times; given up (a dead letter never makes another): \(message)\(traceback)", requestID: delivery.eventID)
                try await storage.dropDelivery(id: delivery.id, owner: owner)
                core.metrics.dropped.increment()
            }
        } catch {
            core.logger.error("trigger dispatcher: cannot record a failed delivery: \(error)")
        }
    }
}

extension TriggerDispatcher: OutboxLeaseTaker {
    /// Room for one more delivery in line, as a claim would have it, and only while no ring waits
    /// for a claim: rows written without a lease (a backlog) go first.
    func reserve() -> Bool {
        guard !doorbell.isClaimWanted else { return false }
        let limit = concurrency + line.waiting(handlerMicros: handlerMicros.load(ordering: .relaxed))
        var current = inFlight.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = inFlight.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func release(_ count: Int) {
        inFlight.subtract(count, ordering: .relaxed)
    }

    /// After the line closed (a graceful shutdown), rows stay leased and are delivered once their
    /// lease ran out, after a restart.
    func take(_ deliveries: [OutboxDelivery]) {
        feed.push(deliveries)
    }

    func committedUnleased() { doorbell.ring() }
}

/// How many claimed deliveries may wait behind the `concurrency` running ones.
///
/// Every claim is a write transaction, committed with an fsync and waited for: claiming a handful
/// of rows at a time caps delivery at a handful per commit round trip, however fast handlers are
/// (with 8 rows per claim the dispatcher alone delivered 11–15k events/s on the 2-core development
/// machine, most of its CPU idle; 18–22k/s with this line). A longer line amortizes the claim, but a row waits in it under its
/// lease, which keeps running: handlers that take seconds must not find their lease half spent
/// when their turn comes. So the line is as long as the running handlers can work off in a
/// quarter of the lease at their average pace, at least `concurrency` rows (as many as run) and
/// at most `maximum`. Should handlers slow down after a long line was claimed, a row whose lease
/// ran short while it waited is given back unstarted (`releaseDelivery`), with no attempt counted.
struct DeliveryLine: Sendable {
    let concurrency: Int
    let leaseMilliseconds: Int64
    /// The longest line: a claim of half of it is one transaction.
    var maximum: Int { max(2 * concurrency, 128) }

    /// The rows that may wait, given the handlers' average duration (0: not known yet).
    func waiting(handlerMicros: Int) -> Int {
        guard handlerMicros > 0 else { return concurrency }
        let budget = leaseMilliseconds * 1000 / 4
        let affordable = Int(min(Int64(Int32.max), Int64(concurrency) * budget / Int64(handlerMicros)))
        return min(maximum, max(concurrency, affordable))
    }

    /// The moving average after one more handler's duration (a weight of 1/8 for the new one).
    static func average(_ current: Int, adding micros: Int) -> Int {
        let sample = max(1, micros)
        return current == 0 ? sample : current + (sample - current) / 8
    }
}

struct DeliveryError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
