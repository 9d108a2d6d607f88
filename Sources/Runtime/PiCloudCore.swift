import Foundation
import Logging
import LuaBridge
import Services
import Synchronization

/// One PiCloud instance: configuration, services, the deployments serving, and the deployer.
final class PiCloudCore: Sendable {
    let configuration: RuntimeConfiguration
    let services: PiCloudServices
    let registry: AppRegistry
    let triggers: TriggerRegistry
    let deployer: Deployer
    let realtime: RealtimeHub
    let metrics: PiCloudMetrics
    let logger: Logger

    private init(configuration: RuntimeConfiguration, services: PiCloudServices, triggers: TriggerRegistry, realtime: RealtimeHub, logger: Logger) {
        self.configuration = configuration
        self.realtime = realtime
        self.metrics = realtime.metrics
        self.services = services
        self.registry = AppRegistry()
        self.triggers = triggers
        self.logger = logger
        self.deployer = Deployer(
            services: services, registry: registry, triggers: triggers,
            realtime: realtime,
            pools: LuaPoolConfiguration(size: configuration.luaPoolSize, timeSlice: .milliseconds(configuration.luaTimeSliceMilliseconds)),
            logger: logger
        )
    }

    /// Opens the store, makes sure there is an admin key, loads every app's current deployment,
    /// and deploys the `deployDirectories`.
    static func open(configuration: RuntimeConfiguration, logger: Logger) async throws -> PiCloudCore {
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let masterKey = try SecretService.masterKey(environment: configuration.masterKey, dataDirectory: configuration.dataDirectory)
        let triggers = TriggerRegistry(maxDepth: configuration.triggerMaxDepth)
        let realtime = RealtimeHub(
            capacity: configuration.realtimeCapacity, heartbeatInterval: configuration.heartbeatInterval, limits: configuration.subscriberLimits, metrics: PiCloudMetrics()
        )
        let services: PiCloudServices
        if let url = configuration.databaseURL {
            let location: PostgresLocation
            do { location = try PostgresLocation(url: url) } catch let error as ServiceError { throw ConfigurationError("PICLOUD_DATABASE_URL: \(error.message)") }
            logger.notice("using PostgreSQL at \(location)")
            services = try await PiCloudServices.postgres(
                url: url, masterKey: masterKey, maxFileBytes: configuration.maxFileBytes, maxConnections: configuration.databaseMaxConnections,
                triggers: triggers, broadcaster: realtime, history: configuration.topicHistory, tokenLifetime: configuration.subscriberTokenLifetime, logger: logger
            )
            if let postgres = services.storage as? PostgresStorage {
                try await checkClusterMasterKey(masterKey, storage: postgres)
            }
        } else {
            services = try PiCloudServices.embedded(
                dataDirectory: configuration.dataDirectory, masterKey: masterKey, durability: configuration.durability, writeBatch: configuration.sqliteWriteBatch, kvCacheEntries: configuration.kvCacheEntries,
                maxFileBytes: configuration.maxFileBytes, triggers: triggers, broadcaster: realtime, history: configuration.topicHistory,
                tokenLifetime: configuration.subscriberTokenLifetime, logger: logger
            )
        }
        triggers.logs.withLock { $0 = services.logs }
        let core = PiCloudCore(configuration: configuration, services: services, triggers: triggers, realtime: realtime, logger: logger)
        if let generated = try await services.keys.bootstrap(environmentToken: configuration.adminToken, dataDirectory: configuration.dataDirectory) {
            logger.notice("""
                created the first admin key (shown once; also in \(configuration.dataDirectory)/admin-token):
                    \(generated)
                """)
        }
        try await core.deployer.loadAll()
        try await triggers.loadAll(from: services.storage)
        for directory in configuration.deployDirectories {
            try await core.deployFolder(directory)
        }
        return core
    }

    /// Every node of a cluster must seal and open secrets with the same master key. The first node
    /// to start stores a check value sealed with its key; a node whose key cannot open it stops
    /// with a clear message instead of failing on the first secret.
    static func checkClusterMasterKey(_ masterKey: [UInt8], storage: PostgresStorage) async throws {
        let check = try SecretService.sealCheck(masterKey: masterKey)
        let stored = try await storage.clusterSetting("master_key_check", orInsert: check)
        guard SecretService.opensCheck(stored, masterKey: masterKey) else {
            throw ConfigurationError("""
                this node's master key differs from the one the other nodes use with this database; \
                set PICLOUD_MASTER_KEY to the same value on every node (the first node's key is in its data directory's master-key file)
                """)
        }
    }

    /// Creates the app named in `DIR/picloud.toml` if missing, and deploys the folder.
    func deployFolder(_ directory: String) async throws {
        let bundle = try AppFolder.read(directory)
        let name = try bundle.appName()
        if try await services.storage.app(named: name) == nil { _ = try await services.apps.create(name: name) }
        do {
            let deployment = try await deployer.deploy(app: name, manifest: bundle.manifest, files: bundle.files, by: nil)
            logger.notice("deployed \(directory) as app '\(name)' version \(deployment.version)")
        } catch let error as DeploymentError {
            throw ConfigurationError("cannot deploy \(directory):\n" + error.problems.map { "  \($0.file)\($0.line.map { ":\($0)" } ?? ""): \($0.message)" }.joined(separator: "\n"))
        }
    }
}
