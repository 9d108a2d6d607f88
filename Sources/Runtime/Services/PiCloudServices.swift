import Foundation
import Logging
import Services

/// Every service of one PiCloud instance, built once at start.
struct PiCloudServices: Sendable {
    let storage: any StorageBackend
    let apps: AppService
    let keys: KeyService
    let kv: KVService
    let docs: DocService
    let files: FileService
    let logs: LogService
    let secrets: SecretService
    let pubsub: PubSubService
    let topics: TopicService
    let logger: Logger

    /// Opens the embedded store under `dataDirectory` and builds the services on it.
    static func embedded(
        dataDirectory: String, masterKey: [UInt8], durability: SQLiteStorage.Durability, writeBatch: Int, kvCacheEntries: Int = SQLiteStorage.defaultKVCacheEntries, maxFileBytes: Int,
        triggers: any TriggerMatching, broadcaster: any RealtimeBroadcasting, history: TopicHistoryDefaults,
        tokenLifetime: SubscriberTokenLifetime, logger: Logger
    ) throws -> PiCloudServices {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let storage = try SQLiteStorage(path: dataDirectory + "/picloud.sqlite", durability: durability, writeBatch: writeBatch, kvCacheEntries: kvCacheEntries, logger: logger)
        let store = FileStore(root: dataDirectory + "/files")
        return build(
            storage: storage, store: store, masterKey: masterKey, maxFileBytes: maxFileBytes, triggers: triggers, broadcaster: broadcaster,
            history: history, tokenLifetime: tokenLifetime, logger: logger
        )
    }

    /// Connects to PostgreSQL (migrating it) and builds the services on it; file contents live
    /// in the database too, so every node sees every file.
    static func postgres(
        url: String, masterKey: [UInt8], maxFileBytes: Int, maxConnections: Int,
        triggers: any TriggerMatching, broadcaster: any RealtimeBroadcasting, history: TopicHistoryDefaults,
        tokenLifetime: SubscriberTokenLifetime, logger: Logger
    ) async throws -> PiCloudServices {
        let storage = try await PostgresStorage.open(url: url, maximumConnections: maxConnections, logger: logger)
        return build(
            storage: storage, store: PostgresBlobStore(storage: storage), masterKey: masterKey, maxFileBytes: maxFileBytes, triggers: triggers,
            broadcaster: broadcaster, history: history, tokenLifetime: tokenLifetime, logger: logger
        )
    }

    private static func build(
        storage: any StorageBackend, store: any BlobStore, masterKey: [UInt8], maxFileBytes: Int,
        triggers: any TriggerMatching, broadcaster: any RealtimeBroadcasting, history: TopicHistoryDefaults,
        tokenLifetime: SubscriberTokenLifetime, logger: Logger
    ) -> PiCloudServices {
        PiCloudServices(
            storage: storage,
            apps: AppService(storage: storage, files: store),
            keys: KeyService(storage: storage),
            kv: KVService(storage: storage, triggers: triggers),
            docs: DocService(storage: storage, triggers: triggers),
            files: FileService(storage: storage, store: store, maxSize: maxFileBytes, triggers: triggers),
            logs: LogService(storage: storage),
            secrets: SecretService(storage: storage, masterKey: masterKey),
            pubsub: PubSubService(storage: storage, triggers: triggers, broadcaster: broadcaster, history: history),
            topics: TopicService(storage: storage, masterKey: masterKey, history: history, tokenLifetime: tokenLifetime),
            logger: logger
        )
    }
}
