import AsyncAlgorithms
import Logging
import ServiceLifecycle
import Services
import Synchronization

/// Fires cron triggers: every tick (`PICLOUD_CRON_TICK_INTERVAL_MS`, default 1 s) it checks each
/// cron trigger for a scheduled time that has come since the last one it fired for, and fires
/// the latest such time once: recording the time and writing the event in one transaction, only
/// if no other node recorded it first. Times missed while PiCloud was down fire once, at start.
/// A trigger seen for the first time starts from now (it does not fire for the past).
final class CronScheduler: Service, Sendable {
    let core: PiCloudCore
    let tick: Duration

    init(core: PiCloudCore) {
        self.core = core
        self.tick = .milliseconds(core.configuration.cronTickMilliseconds)
    }

    func run() async throws {
        await checkDueTriggers()
        for await _ in AsyncTimerSequence(interval: tick, clock: .continuous).cancelOnGracefulShutdown() {
            await checkDueTriggers()
        }
    }

    func checkDueTriggers() async {
        let storage = core.services.storage
        for trigger in core.triggers.cronTriggers {
            do {
                guard let schedule = trigger.match.schedule.flatMap({ try? CronSchedule($0) }) else { continue }
                let now = Clock.now()
                guard let last = try await storage.cronLastFired(triggerID: trigger.id) else {
                    _ = try await storage.fireCron(app: trigger.app, triggerID: trigger.id, previous: nil, scheduledAt: now, enqueue: .none, event: [], now: now)
                    continue
                }
                guard let due = schedule.latestTime(after: last, upTo: now) else { continue }
                let event = EventJSON.object([
                    ("kind", EventJSON.string("cron")), ("schedule", EventJSON.string(schedule.text)), ("scheduled_at", EventJSON.integer(due)),
                ])
                if try await storage.fireCron(app: trigger.app, triggerID: trigger.id, previous: last, scheduledAt: due,
                                              enqueue: OutboxEnqueue(targets: [trigger.target], depth: 0), event: event, now: now) {
                    core.triggers.doorbell.ring()
                }
            } catch {
                core.logger.error("cron trigger \(trigger.id): \(error)")
            }
        }
    }
}
