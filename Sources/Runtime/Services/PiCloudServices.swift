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
        dataDirectory: String, masterKey: [UInt8], durability: SQLiteStorage.Durability, maxFileBytes: Int,
        triggers: any TriggerMatching, broadcaster: any RealtimeBroadcasting, history: TopicHistoryDefaults,
        tokenLifetime: SubscriberTokenLifetime, logger: Logger
    ) throws -> PiCloudServices {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let storage = try SQLiteStorage(path: dataDirectory + "/picloud.sqlite", durability: durability, logger: logger)
        let store = FileStore(root: dataDirectory + "/files")
        return PiCloudServices(
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
