import ArgumentParser
import Foundation
import Logging
import Runtime

@main
struct PiCloudCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "picloud",
        abstract: "Run small backends written as Lua handler scripts.",
        discussion: """
            Start a server with `picloud serve`, or try an app folder with `picloud dev DIR`. The other \
            commands talk to a running server's admin API (--url, --token or PICLOUD_URL, PICLOUD_TOKEN; \
            by default the admin key in ./picloud-data/admin-token).
            """,
        version: PiCloudVersion.current,
        subcommands: [Serve.self, Dev.self, Deploy.self, Apps.self, Keys.self, Logs.self, Invoke.self, Secrets.self, Triggers.self, Topics.self, DeadLetters.self, Outbox.self]
    )
}

/// `picloud serve`: runs the server until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the PiCloud server.",
        discussion: "On first start it creates an admin key, prints it once and writes it to DATA_DIR/admin-token."
    )

    @Option(help: "Interface to listen on (PICLOUD_HOST, default 127.0.0.1).")
    var host: String?

    @Option(help: "TCP port, 0 for any free one (PICLOUD_PORT, default 8080).")
    var port: Int?

    @Option(name: .customLong("data-dir"), help: "Directory for the database and files (PICLOUD_DATA_DIR, default ./picloud-data).")
    var dataDirectory: String?

    @Option(name: .customLong("database-url"), help: "postgres://... to use PostgreSQL (PICLOUD_DATABASE_URL).")
    var databaseURL: String?

    @Option(name: .customLong("deploy"), help: "An app folder to create and deploy at start (repeatable).")
    var deploy: [String] = []

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (PICLOUD_LOG_LEVEL, default info).")
    var logLevel: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var configuration = try RuntimeConfiguration(environment: environment)
        if let host { configuration.host = host }
        if let port { configuration.port = try RuntimeConfiguration.port(String(port), source: "--port") }
        if let dataDirectory { configuration.dataDirectory = dataDirectory }
        if let databaseURL { configuration.databaseURL = databaseURL }
        configuration.deployDirectories = deploy

        let levelName = logLevel ?? environment["PICLOUD_LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else {
            throw ValidationError("unknown log level '\(levelName)'")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        try await PiCloudServer.run(configuration: configuration, logger: Logger(label: "picloud"))
    }
}
