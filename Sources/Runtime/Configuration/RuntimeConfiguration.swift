public import Services

/// How `picloud serve` runs, built once from flags and the environment (flags win).
/// Every setting is documented in docs/operations.md.
public struct RuntimeConfiguration: Sendable, Hashable {
    /// Interface to listen on (`PICLOUD_HOST`, default 127.0.0.1). `0.0.0.0` listens on every interface.
    public var host = "127.0.0.1"
    /// TCP port (`PICLOUD_PORT`, default 8080); 0 lets the system choose (the chosen port is logged).
    public var port = 8080
    /// Connections the kernel may hold before they are accepted (`PICLOUD_LISTEN_BACKLOG`, default
    /// 4096; the kernel caps it at `net.core.somaxconn`). Thousands of event-stream clients
    /// reconnect at once after a restart; Hummingbird's 256 overflowed under such bursts.
    public var listenBacklog = 4096
    /// Where the SQLite file, stored files, the admin token and the master key live (`PICLOUD_DATA_DIR`).
    public var dataDirectory = "./picloud-data"
    /// `postgres://...` to use PostgreSQL instead of the embedded SQLite (`PICLOUD_DATABASE_URL`).
    public var databaseURL: String?
    /// Connections each node keeps to PostgreSQL at most (`PICLOUD_DATABASE_MAX_CONNECTIONS`, default 16).
    public var databaseMaxConnections = 16
    /// The first admin key (`PICLOUD_ADMIN_TOKEN`); generated into the data directory when unset.
    public var adminToken: String?
    /// The key that encrypts secrets (`PICLOUD_MASTER_KEY`); generated into the data directory when unset.
    public var masterKey: String?
    /// `full` (default) flushes every commit to disk; `normal` survives process crashes only (`PICLOUD_SQLITE_SYNCHRONOUS`).
    public var durability: SQLiteStorage.Durability = .full
    /// Most writes that share one SQLite transaction and fsync (group commit; `PICLOUD_SQLITE_WRITE_BATCH`, default 256; 1 commits each write alone).
    public var sqliteWriteBatch = WriteBatcher.defaultBatch
    /// Endpoint invocations one app may run at once (`PICLOUD_MAX_CONCURRENT_REQUESTS_PER_APP`,
    /// default 1024); beyond it requests are answered 503 with `Retry-After` instead of queueing.
    public var maxConcurrentRequestsPerApp = 1024
    /// Open event streams allowed (`PICLOUD_REALTIME_MAX_SUBSCRIBERS`, `_PER_APP`, `_PER_CLIENT`): by
    /// default the open-files limit less 256 (at most 100,000), the same per app, 5,000 per client address.
    public var subscriberLimits = SubscriberLimits()
    /// kv entries kept in SQLite's exact read cache (`PICLOUD_KV_CACHE_ENTRIES`, default 4096; 0 turns it off).
    public var kvCacheEntries = SQLiteStorage.defaultKVCacheEntries
    /// Endpoint calls read and answered ahead of the general HTTP/1 pipeline on connections that
    /// send only such calls (`PICLOUD_ENDPOINT_FAST_PATH`, 1 by default; 0 turns it off).
    public var endpointFastPath = true
    /// Largest request body an endpoint accepts (`PICLOUD_MAX_BODY_BYTES`, default 1 MiB).
    public var maxBodyBytes = 1 << 20
    /// Largest stored file (`PICLOUD_MAX_FILE_BYTES`, default 10 MiB).
    public var maxFileBytes = 10 << 20
    /// VMs per app (`PICLOUD_LUA_POOL_SIZE`, default 2).
    public var luaPoolSize = 2
    /// Milliseconds a handler computes before it lets other work on its thread go first
    /// (`PICLOUD_LUA_TIME_SLICE_MS`, default 2; 0: never).
    public var luaTimeSliceMilliseconds = 2
    /// Seconds between heartbeat comments on event streams (`PICLOUD_REALTIME_HEARTBEAT_SEC`, default 30).
    public var heartbeatSeconds = 30
    /// Events a topic's live subscribers may fall behind before the oldest are dropped for them
    /// (`PICLOUD_REALTIME_BROADCAST_CAPACITY`, default 64); they then come from the history, or a gap event says what was lost.
    public var realtimeCapacity = 64
    /// Events kept per registered topic for subscribers that resume (`PICLOUD_REALTIME_HISTORY_EVENTS`, default 1000; a topic may say otherwise).
    public var realtimeHistoryEvents = 1000
    /// How long they are kept (`PICLOUD_REALTIME_HISTORY_SEC`, default 24 h).
    public var realtimeHistorySeconds = 86400
    /// Subscriber token lifetimes in seconds: asked-for ones are clamped to min...max
    /// (`PICLOUD_SUBSCRIBER_TOKEN_TTL_MIN_SEC` 10, `_MAX_SEC` 86400, `_DEFAULT_SEC` 3600).
    public var subscriberTokenLifetime = SubscriberTokenLifetime()
    /// Log lines kept per app (`PICLOUD_LOG_RETENTION_LINES`, default 10,000).
    public var logRetentionLines = 10_000
    /// Seconds between sweeps of temp files and unreferenced blobs (`PICLOUD_FILES_SWEEP_INTERVAL_SEC`, default 6 h).
    public var filesSweepSeconds = 6 * 3600
    /// Trigger handlers running at once (`PICLOUD_DISPATCHER_CONCURRENCY`, default 8). 0: this
    /// node delivers nothing; events wait in the outbox for a node (or a restart) that does.
    public var dispatcherConcurrency = 8
    /// How long a claimed delivery stays leased (`PICLOUD_DISPATCHER_LEASE_MS`, default 60 s); after a
    /// crash, deliveries in flight are retried once their lease ran out. A handler's time limit is kept
    /// under it by a fifth of it (at most 5 s).
    public var dispatcherLeaseMilliseconds = 60_000
    /// The dispatcher's fallback poll (`PICLOUD_DISPATCHER_POLL_MS`, default 1 s); commits wake it at once.
    public var dispatcherPollMilliseconds = 1000
    /// How often cron schedules are checked (`PICLOUD_CRON_TICK_INTERVAL_MS`, default 1 s).
    public var cronTickMilliseconds = 1000
    /// How many triggers may lead into each other before the chain is stopped (`PICLOUD_TRIGGER_MAX_DEPTH`, default 8).
    public var triggerMaxDepth = 8
    /// Web origins that may call app APIs and follow topics from a browser (`PICLOUD_CORS_ORIGINS`: `*`, a comma-separated list, or `none`).
    public var cors = CORSPolicy()
    /// Serve the dashboard and the browser client from this checkout instead of the binary (`PICLOUD_ASSETS_DIR`, for working on them).
    public var assetsDirectory: String?
    /// App folders to create (if missing) and deploy at start (`serve --deploy DIR`).
    public var deployDirectories: [String] = []

    public init() {}

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
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        func integer(_ name: String, _ range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
            guard let text = value(name) else { return nil }
            guard let number = Int(text), range.contains(number) else {
                throw ConfigurationError("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
            }
            return number
        }
        if let host = value("PICLOUD_HOST") { self.host = host }
        if let port = value("PICLOUD_PORT") { self.port = try Self.port(port, source: "PICLOUD_PORT") }
        listenBacklog = try integer("PICLOUD_LISTEN_BACKLOG", 1...65535) ?? listenBacklog
        if let directory = value("PICLOUD_DATA_DIR") { dataDirectory = directory }
        databaseURL = value("PICLOUD_DATABASE_URL")
        adminToken = value("PICLOUD_ADMIN_TOKEN")
        masterKey = value("PICLOUD_MASTER_KEY")
        if let mode = value("PICLOUD_SQLITE_SYNCHRONOUS") {
            guard let durability = SQLiteStorage.Durability(rawValue: mode.lowercased()) else {
                throw ConfigurationError("PICLOUD_SQLITE_SYNCHRONOUS must be 'full' or 'normal', got '\(mode)'")
            }
            self.durability = durability
        }
        maxBodyBytes = try integer("PICLOUD_MAX_BODY_BYTES", 1024...(256 << 20)) ?? maxBodyBytes
        maxFileBytes = try integer("PICLOUD_MAX_FILE_BYTES", 1024...(1 << 30)) ?? maxFileBytes
        luaPoolSize = try integer("PICLOUD_LUA_POOL_SIZE", 1...64) ?? luaPoolSize
        endpointFastPath = try integer("PICLOUD_ENDPOINT_FAST_PATH", 0...1).map { $0 == 1 } ?? endpointFastPath
        luaTimeSliceMilliseconds = try integer("PICLOUD_LUA_TIME_SLICE_MS", 0...10_000) ?? luaTimeSliceMilliseconds
        heartbeatSeconds = try integer("PICLOUD_REALTIME_HEARTBEAT_SEC", 1...3600) ?? heartbeatSeconds
        realtimeCapacity = try integer("PICLOUD_REALTIME_BROADCAST_CAPACITY", 1...100_000) ?? realtimeCapacity
        realtimeHistoryEvents = try integer("PICLOUD_REALTIME_HISTORY_EVENTS", 0...TopicRecord.maxHistoryEvents) ?? realtimeHistoryEvents
        realtimeHistorySeconds = try integer("PICLOUD_REALTIME_HISTORY_SEC", 1...TopicRecord.maxHistorySeconds) ?? realtimeHistorySeconds
        var lifetime = subscriberTokenLifetime
        lifetime.minimum = try integer("PICLOUD_SUBSCRIBER_TOKEN_TTL_MIN_SEC", 1...(365 * 86400)) ?? lifetime.minimum
        lifetime.maximum = try integer("PICLOUD_SUBSCRIBER_TOKEN_TTL_MAX_SEC", 1...(365 * 86400)) ?? lifetime.maximum
        lifetime.standard = try integer("PICLOUD_SUBSCRIBER_TOKEN_TTL_DEFAULT_SEC", 1...(365 * 86400)) ?? lifetime.standard
        guard lifetime.minimum <= lifetime.standard, lifetime.standard <= lifetime.maximum else {
            throw ConfigurationError("subscriber token lifetimes must satisfy PICLOUD_SUBSCRIBER_TOKEN_TTL_MIN_SEC (\(lifetime.minimum)) <= _DEFAULT_SEC (\(lifetime.standard)) <= _MAX_SEC (\(lifetime.maximum))")
        }
        subscriberTokenLifetime = lifetime
        logRetentionLines = try integer("PICLOUD_LOG_RETENTION_LINES", 100...10_000_000) ?? logRetentionLines
        filesSweepSeconds = try integer("PICLOUD_FILES_SWEEP_INTERVAL_SEC", 1...(7 * 86400)) ?? filesSweepSeconds
        dispatcherConcurrency = try integer("PICLOUD_DISPATCHER_CONCURRENCY", 0...256) ?? dispatcherConcurrency
        databaseMaxConnections = try integer("PICLOUD_DATABASE_MAX_CONNECTIONS", 2...1000) ?? databaseMaxConnections
        sqliteWriteBatch = try integer("PICLOUD_SQLITE_WRITE_BATCH", 1...10_000) ?? sqliteWriteBatch
        kvCacheEntries = try integer("PICLOUD_KV_CACHE_ENTRIES", 0...1_000_000) ?? kvCacheEntries
        maxConcurrentRequestsPerApp = try integer("PICLOUD_MAX_CONCURRENT_REQUESTS_PER_APP", 1...1_000_000) ?? maxConcurrentRequestsPerApp
        subscriberLimits.total = try integer("PICLOUD_REALTIME_MAX_SUBSCRIBERS", 1...10_000_000) ?? subscriberLimits.total
        subscriberLimits.perApp = try integer("PICLOUD_REALTIME_MAX_SUBSCRIBERS_PER_APP", 1...10_000_000) ?? subscriberLimits.total
        subscriberLimits.perClient = try integer("PICLOUD_REALTIME_MAX_SUBSCRIBERS_PER_CLIENT", 1...10_000_000) ?? subscriberLimits.perClient
        dispatcherLeaseMilliseconds = try integer("PICLOUD_DISPATCHER_LEASE_MS", 1000...3_600_000) ?? dispatcherLeaseMilliseconds
        dispatcherPollMilliseconds = try integer("PICLOUD_DISPATCHER_POLL_MS", 10...60_000) ?? dispatcherPollMilliseconds
        cronTickMilliseconds = try integer("PICLOUD_CRON_TICK_INTERVAL_MS", 10...60_000) ?? cronTickMilliseconds
        triggerMaxDepth = try integer("PICLOUD_TRIGGER_MAX_DEPTH", 1...100) ?? triggerMaxDepth
        if let origins = environment["PICLOUD_CORS_ORIGINS"] { cors = CORSPolicy(setting: origins) }
        assetsDirectory = value("PICLOUD_ASSETS_DIR")
    }

    /// Parses and checks a port number.
    public static func port(_ text: String, source: String) throws(ConfigurationError) -> Int {
        guard let port = Int(text), (0...65535).contains(port) else {
            throw ConfigurationError("\(source) must be a port number between 0 and 65535, got '\(text)'")
        }
        return port
    }

    var heartbeatInterval: Duration { .seconds(heartbeatSeconds) }

    var topicHistory: TopicHistoryDefaults { TopicHistoryDefaults(events: realtimeHistoryEvents, seconds: realtimeHistorySeconds) }
}

/// A configuration value that does not make sense.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
