import Logging
import Services
import Synchronization

/// The triggers of every app, in memory, matched against each change before it commits (so the
/// outbox rows go into the same transaction). Rings the dispatcher's doorbell when events were
/// written, and stops trigger chains deeper than the limit.
final class TriggerRegistry: TriggerMatching {
    private let triggers = Mutex<[String: [TriggerRecord]]>([:])
    let doorbell = Doorbell()
    let maxDepth: Int
    /// Set once the services exist (they need the registry first).
    let logs = Mutex<LogService?>(nil)

    init(maxDepth: Int) { self.maxDepth = maxDepth }

    func targets(app: String, event: TriggerEvent, depth: Int) -> [OutboxTarget] {
        let matching = triggers.withLock { $0[app] ?? [] }.filter { $0.matches(event) }
        guard !matching.isEmpty else { return [] }
        guard depth <= maxDepth else {
            logs.withLock { $0 }?.append(
                app: app, level: .warn,
                message: "trigger chain stopped: depth \(depth) is over the limit of \(maxDepth) (PICLOUD_TRIGGER_MAX_DEPTH); \(matching.count) trigger(s) not fired for \(event)"
            )
            return []
        }
        return matching.map(\.target)
    }

    /// Set while the store leases new rows to the dispatcher and rings for the others itself
    /// (``OutboxLeaseTaker``): a write whose rows were all leased then wakes nobody.
    let storeRings = Atomic<Bool>(false)

    func didEnqueue() {
        if !storeRings.load(ordering: .relaxed) { doorbell.ring() }
    }

    func set(app: String, _ list: [TriggerRecord]) { triggers.withLock { $0[app] = list } }

    func remove(app: String) { _ = triggers.withLock { $0.removeValue(forKey: app) } }

    func list(app: String) -> [TriggerRecord] { triggers.withLock { $0[app] ?? [] } }

    /// Every cron trigger of every app.
    var cronTriggers: [TriggerRecord] { triggers.withLock { $0.values.flatMap { $0.filter { $0.kind == .cron } } } }

    /// Reloads an app's triggers from storage.
    func reload(app: String, from storage: any StorageBackend) async throws {
        set(app: app, try await storage.triggers(app: app))
    }

    func loadAll(from storage: any StorageBackend) async throws {
        let all = try await storage.allTriggers()
        triggers.withLock { $0 = Dictionary(grouping: all, by: \.app) }
    }
}
