import Foundation
public import Hummingbird
public import Logging
import NIOCore

/// The version this build reports.
public enum PiCloudVersion {
    public static let current = "0.1.0"
}

/// Builds and runs the PiCloud HTTP server with every service it owns, as one `ServiceGroup`
/// that shuts down gracefully on SIGTERM and SIGINT.
public enum PiCloudServer {
    /// Builds the application (not yet running). `onRunning` receives the bound port.
    public static func makeApplication(
        configuration: RuntimeConfiguration,
        logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let router = Router()
        router.add(middleware: ErrorMiddleware())
        HealthController().register(on: router)
        return Application(
            router: router,
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "PiCloud"
            ),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                logger.notice("PiCloud \(PiCloudVersion.current) listening on http://\(configuration.host):\(port)")
                await onRunning(port)
            },
            logger: logger
        )
    }

    /// Runs until SIGTERM or SIGINT, then finishes in-flight work and returns.
    public static func run(configuration: RuntimeConfiguration, logger: Logger) async throws {
        let application = try makeApplication(configuration: configuration, logger: logger)
        try await application.runService()
        logger.notice("PiCloud stopped")
    }
}
