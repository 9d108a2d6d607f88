/// How `picloud serve` runs, built once from flags and the environment (flags win).
///
/// | setting | flag | environment | default |
/// |---|---|---|---|
/// | host | `--host` | `PICLOUD_HOST` | `127.0.0.1` |
/// | port | `--port` | `PICLOUD_PORT` | `8080` |
/// | data directory | `--data-dir` | `PICLOUD_DATA_DIR` | `./picloud-data` |
/// | database URL | `--database-url` | `PICLOUD_DATABASE_URL` | none (SQLite in the data directory) |
public struct RuntimeConfiguration: Sendable, Hashable {
    /// Interface to listen on. `0.0.0.0` listens on every interface.
    public var host: String
    /// TCP port; 0 lets the system choose (the chosen port is logged).
    public var port: Int
    /// Where SQLite files and stored files live.
    public var dataDirectory: String
    /// `postgres://...` to use PostgreSQL instead of the embedded SQLite.
    public var databaseURL: String?

    public init(host: String = "127.0.0.1", port: Int = 8080, dataDirectory: String = "./picloud-data", databaseURL: String? = nil) {
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.databaseURL = databaseURL
    }

    /// Reads `PICLOUD_*` variables; anything unset keeps its default. Throws for a value that
    /// does not parse, naming the variable.
    public init(environment: [String: String]) throws(ConfigurationError) {
        self.init()
        if let host = environment["PICLOUD_HOST"], !host.isEmpty { self.host = host }
        if let port = environment["PICLOUD_PORT"], !port.isEmpty { self.port = try Self.port(port, source: "PICLOUD_PORT") }
        if let directory = environment["PICLOUD_DATA_DIR"], !directory.isEmpty { dataDirectory = directory }
        if let url = environment["PICLOUD_DATABASE_URL"], !url.isEmpty { databaseURL = url }
    }

    /// Parses and checks a port number.
    public static func port(_ text: String, source: String) throws(ConfigurationError) -> Int {
        guard let port = Int(text), (0...65535).contains(port) else {
            throw ConfigurationError("\(source) must be a port number between 0 and 65535, got '\(text)'")
        }
        return port
    }
}

/// A configuration value that does not make sense.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
