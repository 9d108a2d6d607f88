import Foundation
public import Hummingbird
import HummingbirdCore
public import Logging
import NIOCore
import ServiceLifecycle
import Services

/// The version this build reports.
public enum PiCloudVersion {
    public static let current = "0.1.0"
}

/// Builds and runs the PiCloud HTTP server with every service it owns, as one `ServiceGroup`
/// that shuts down gracefully on SIGTERM and SIGINT.
public enum PiCloudServer {
    /// Opens the store, loads deployments and builds the application (not yet running).
    /// `onRunning` receives the bound port.
    public static func makeApplication(
        configuration: RuntimeConfiguration,
        logger: Logger,
        eventLoopGroup: EventLoopGroupProvider = .singleton,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws -> some ApplicationProtocol {
        let core = try await PiCloudCore.open(configuration: configuration, logger: logger)
        let router = Router(context: PiCloudRequestContext.self)
        router.add(middleware: CORSMiddleware(policy: configuration.cors))
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: AuthenticationMiddleware(keys: core.services.keys))
        HealthController(core: core).register(on: router)
        OpenAPIController().register(on: router)
        AdminController(core: core).register(on: router)
        EndpointController(core: core).register(on: router)
        AssetsController(directory: configuration.assetsDirectory).register(on: router)
        return Application(
            router: router,
            // Realtime subscriptions and app endpoints are served by handlers in each
            // connection's pipeline, on its event loop; the router gets everything else.
            // Connections that only call endpoints are read ahead of the HTTP/1 decoder.
            server: .lazyHTTP1(
                configuration: HTTP1Channel.Configuration(additionalChannelHandlers: [RequestGuard(), RealtimeStream(core: core), EndpointStream(core: core)]),
                front: { configuration.endpointFastPath ? [EndpointFastPath(core: core)] : [] }
            ),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "PiCloud",
                backlog: configuration.listenBacklog
            ),
            services: backgroundTasks(core),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                logger.notice("PiCloud \(PiCloudVersion.current) listening on http://\(configuration.host):\(port)")
                await onRunning(port)
            },
            eventLoopGroupProvider: eventLoopGroup,
            logger: logger
        )
    }

    static func backgroundTasks(_ core: PiCloudCore) -> [any Service] {
        let services = core.services
        let configuration = core.configuration
        var cluster: [any Service] = []
        if let postgres = services.storage as? PostgresStorage { cluster.append(ClusterListener(core: core, storage: postgres)) }
        let delivery: [any Service] = configuration.dispatcherConcurrency > 0 ? [TriggerDispatcher(core: core)] : []
        if delivery.isEmpty { core.logger.notice("PICLOUD_DISPATCHER_CONCURRENCY=0: this node runs no trigger handlers; events wait in the outbox") }
        return cluster + delivery + [
            core.realtime,
            CronScheduler(core: core),
            PeriodicTask(name: "log flush", interval: .milliseconds(100), logger: core.logger) { try await services.logs.flush() },
            PeriodicTask(name: "kv expiry", interval: .seconds(60), logger: core.logger) { _ = try await services.kv.purgeExpired() },
            PeriodicTask(name: "topic history trim", interval: .seconds(60), logger: core.logger) { _ = try await services.topics.trimHistory() },
            PeriodicTask(name: "log trim", interval: .seconds(60), logger: core.logger) { _ = try await services.logs.trim(keep: configuration.logRetentionLines) },
            PeriodicTask(name: "files sweep", interval: .seconds(configuration.filesSweepSeconds), logger: core.logger) {
                let result = try await services.files.sweep()
                if result.temporaryFiles + result.unreferencedBlobs > 0 {
                    core.logger.info("files sweep removed \(result.temporaryFiles) temp files and \(result.unreferencedBlobs) unreferenced blobs")
                }
            },
        ]
    }

    /// Runs until SIGTERM or SIGINT, then finishes in-flight work and returns.
    public static func run(configuration: RuntimeConfiguration, logger: Logger) async throws {
        let application = try await makeApplication(configuration: configuration, logger: logger)
        try await application.runService()
        logger.notice("PiCloud stopped")
    }
}
