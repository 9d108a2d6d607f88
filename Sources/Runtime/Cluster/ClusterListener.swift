import Logging
import Prometheus
import ServiceLifecycle
import Services

/// Makes this node one of several on a shared PostgreSQL database: it listens to what the other
/// nodes say (``PostgresStorage/listen(_:)``) and wakes the dispatcher for their outbox rows,
/// hands their topic events to this node's subscribers, and reloads apps they changed. After a
/// lost connection it catches up: the dispatcher looks at the outbox, subscribers get the events
/// committed meanwhile from the history, and every app is brought in step.
final class ClusterListener: Service, Sendable {
    let core: PiCloudCore
    let storage: PostgresStorage

    init(core: PiCloudCore, storage: PostgresStorage) {
        self.core = core
        self.storage = storage
    }

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            await self.storage.listen { signal in await self.handle(signal) }
        }
    }

    func handle(_ signal: ClusterSignal) async {
        switch signal {
        case .outbox:
            core.triggers.doorbell.ring()
        case .published(let event):
            core.realtime.broadcast(event)
        case .changed(let app):
            await sync(app: app)
        case .listening:
            core.metrics.clusterListens.increment()
            core.triggers.doorbell.ring()
            await core.realtime.resync(storage: storage, history: core.configuration.topicHistory)
            do {
                let apps = Set(try await storage.apps().map(\.name)).union(core.registry.all.map(\.app))
                for app in apps.sorted() { await sync(app: app) }
            } catch {
                core.logger.error("cluster: cannot list apps to catch up: \(error)")
            }
        }
    }

    private func sync(app: String) async {
        do {
            try await core.deployer.sync(app: app)
        } catch {
            core.logger.error("cluster: cannot bring app '\(app)' in step: \(error)")
        }
    }
}
