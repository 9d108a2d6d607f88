import Foundation
import NIOCore
import PostgresNIO

// MARK: - Where the database is

/// A `postgres://user:password@host:port/database?sslmode=...` URL, parsed.
public struct PostgresLocation: Sendable, CustomStringConvertible {
    public enum TLSMode: String, Sendable { case disable, prefer, require }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    public init(url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme.lowercased()) else {
            throw ServiceError(.invalidInput, "a database URL looks like postgres://user:password@host:5432/database")
        }
        host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        port = components.port ?? 5432
        username = components.user?.removingPercentEncoding ?? "postgres"
        password = components.password?.removingPercentEncoding
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? username : (path.removingPercentEncoding ?? path)
        let mode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        switch mode {
        case "disable", "allow": tls = .disable
        case "prefer": tls = .prefer
        case "require", "verify-ca", "verify-full": tls = .require
        default: throw ServiceError(.invalidInput, "sslmode must be disable, prefer or require, not '\(mode)'")
        }
    }

    /// The URL without the password, for logs.
    public var description: String { "postgres://\(username)@\(host):\(port)/\(database)" }

    var tlsConfiguration: PostgresClient.Configuration.TLS {
        switch tls {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
    }

    var clientConfiguration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tlsConfiguration)
        configuration.options.additionalStartupParameters = [("application_name", "picloud")]
        return configuration
    }

    /// A single connection's settings; `name` shows in `pg_stat_activity.application_name`.
    func connectionConfiguration(name: String) -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS = switch self.tls {
        case .disable: .disable
        case .prefer: .prefer(try! .init(configuration: .makeClientConfiguration()))
        case .require: .require(try! .init(configuration: .makeClientConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.additionalStartupParameters = [("application_name", name)]
        return configuration
    }
}

// MARK: - Small helpers

extension PostgresConnection {
    /// Every row of a query.
    func all(_ query: PostgresQuery, _ logger: Logger) async throws -> [PostgresRandomAccessRow] {
        var rows: [PostgresRandomAccessRow] = []
        for try await row in try await self.query(query, logger: logger) { rows.append(row.makeRandomAccess()) }
        return rows
    }

    /// The first row of a query, if any.
    func first(_ query: PostgresQuery, _ logger: Logger) async throws -> PostgresRandomAccessRow? {
        try await all(query, logger).first
    }

    /// Runs a statement; returns how many rows it returned (write `RETURNING 1` to count changes).
    @discardableResult
    func run(_ query: PostgresQuery, _ logger: Logger) async throws -> Int {
        var count = 0
        for try await _ in try await self.query(query, logger: logger) { count += 1 }
        return count
    }
}

extension PostgresRandomAccessRow {
    func get<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        try self[column].decode(T.self)
    }

    /// A `bytea` column as bytes.
    func bytes(_ column: String) throws -> [UInt8] {
        let buffer = try self[column].decode(ByteBuffer.self)
        return Array(buffer.readableBytesView)
    }

    /// A text column holding JSON, as its UTF-8 bytes.
    func json(_ column: String) throws -> [UInt8] {
        Array(try self[column].decode(String.self).utf8)
    }
}

/// SQL text with `$n` placeholders and their values, built piece by piece; values are only ever bound.
struct PostgresFragment {
    var text: String
    var bindings = PostgresBindings()

    init(_ text: String = "") { self.text = text }

    /// Binds a value and returns its placeholder.
    mutating func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
        bindings.append(value)
        return "$\(bindings.count)"
    }

    mutating func bind(_ value: (some PostgresDynamicTypeEncodable)?) -> String {
        bindings.append(value)
        return "$\(bindings.count)"
    }

    mutating func append(_ text: String) { self.text += text }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: text, binds: bindings) }
}
