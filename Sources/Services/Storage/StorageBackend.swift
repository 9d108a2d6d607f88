/// The storage seam: one implementation per database (SQLite now, PostgreSQL later). Each method
/// is one transaction; SQL and dialect differences stay inside the implementation. Services above
/// it validate input and never see SQL.
public protocol StorageBackend: AppStore, KeyStore, DeploymentStore, KVStore, DocStore, FileMetadataStore, LogStore, SecretStore,
    TriggerStore, OutboxStore, DeadLetterStore, CronStore, TopicStore {}

public protocol AppStore: Sendable {
    /// Creates an app; throws `conflict` if the name is taken.
    func createApp(name: String, at: Milliseconds) async throws -> AppRecord
    func app(named name: String) async throws -> AppRecord?
    func apps() async throws -> [AppRecord]
    /// Deletes an app and everything of it; false if there was none.
    func deleteApp(named name: String) async throws -> Bool
}

public protocol KeyStore: Sendable {
    func insertKey(_ key: KeyRecord) async throws
    func key(hash: [UInt8]) async throws -> KeyRecord?
    /// Keys of an app, or the instance keys for nil.
    func keys(app: String?) async throws -> [KeyRecord]
    func deleteKey(id: String, app: String?) async throws -> Bool
}

public protocol DeploymentStore: Sendable {
    /// Stores a new deployment as the next version and makes it current, in one transaction.
    func insertDeployment(app: String, manifest: String, files: [String: String], at: Milliseconds, by: String?) async throws -> DeploymentRecord
    /// A version of an app's deployments, or the current one for nil.
    func deployment(app: String, version: Int?) async throws -> DeploymentRecord?
    /// Every deployment of an app, newest first, without files.
    func deploymentHistory(app: String) async throws -> [DeploymentRecord]
    /// The current deployment of every app.
    func currentDeployments() async throws -> [DeploymentRecord]
}

public protocol KVStore: Sendable {
    func kvGet(app: String, key: String, now: Milliseconds) async throws -> KVEntry?
    /// The entry without waiting, when the backend can tell on the calling thread (from a read
    /// cache it keeps exact, or with a point read of its own): `.some(entry)` (`.some(nil)`: no
    /// such key), or nil when ``kvGet(app:key:now:)`` must read the store.
    func kvGetNow(app: String, key: String, now: Milliseconds) -> KVEntry??
    /// Writes a value and, in the same transaction, one outbox row per target of `enqueue`.
    func kvSet(app: String, key: String, value: [UInt8], expiresAt: Milliseconds?, now: Milliseconds, enqueue: OutboxEnqueue) async throws
    /// The same with a callback: `done` is called once, from any thread, when the write committed
    /// or failed. For callers that must not start a task per write.
    func kvSet(
        app: String, key: String, value: [UInt8], expiresAt: Milliseconds?, now: Milliseconds, enqueue: OutboxEnqueue,
        done: @escaping @Sendable (Result<Void, any Error>) -> Void
    )
    func kvDelete(app: String, key: String, now: Milliseconds, enqueue: OutboxEnqueue) async throws -> Bool
    /// Adds `delta` to an integer value (a missing or expired key counts as 0); returns the sum.
    func kvIncrement(app: String, key: String, by delta: Int64, now: Milliseconds, enqueue: OutboxEnqueue) async throws -> Int64
    /// Live entries whose key starts with `prefix`, after `after`, in key order.
    func kvList(app: String, prefix: String, after: String?, limit: Int, now: Milliseconds) async throws -> [KVEntry]
    /// Removes expired entries; returns how many.
    func kvPurgeExpired(now: Milliseconds) async throws -> Int
}

public protocol DocStore: Sendable {
    /// Inserts a document; throws `conflict` if the id exists.
    func docInsert(app: String, collection: String, id: String, body: [UInt8], now: Milliseconds, enqueue: OutboxEnqueue) async throws -> DocRecord
    func docGet(app: String, collection: String, id: String) async throws -> DocRecord?
    /// The document without waiting, when the backend can read it on the calling thread
    /// (`.some(nil)`: none); nil when ``docGet(app:collection:id:)`` must be asked.
    func docGetNow(app: String, collection: String, id: String) -> DocRecord??
    /// Reads, transforms and writes a document in one transaction; nil if there is none.
    func docUpdate(app: String, collection: String, id: String, now: Milliseconds, enqueue: OutboxEnqueue, transform: @escaping @Sendable ([UInt8]) throws -> [UInt8]) async throws -> DocRecord?
    func docDelete(app: String, collection: String, id: String, enqueue: OutboxEnqueue) async throws -> Bool
    /// One page of matching documents, and where the next page starts (nil after the last).
    func docFind(app: String, collection: String, query: DocQuery) async throws -> (records: [DocRecord], next: DocCursor?)
    func docCount(app: String, collection: String, filter: [DocCondition]) async throws -> Int
    /// Collections of an app with their document counts.
    func docCollections(app: String) async throws -> [(name: String, count: Int)]
    /// Makes the indexed fields of an app exactly these (creating expression indexes as needed).
    func setDocIndexes(app: String, indexes: [DocIndex]) async throws
}

public protocol FileMetadataStore: Sendable {
    func fileRecord(app: String, path: String) async throws -> FileRecord?
    /// Stores metadata pointing at a blob already on disk; returns the record it replaced.
    func putFileRecord(app: String, record: FileRecord, enqueue: OutboxEnqueue) async throws -> FileRecord?
    func deleteFileRecord(app: String, path: String, enqueue: OutboxEnqueue) async throws -> FileRecord?
    func fileRecords(app: String, prefix: String, after: String?, limit: Int) async throws -> [FileRecord]
    /// Blob names an app's files refer to.
    func referencedBlobs(app: String) async throws -> Set<String>
}

public protocol LogStore: Sendable {
    /// Appends entries; returns them with their ids.
    func appendLogs(_ entries: [LogEntry]) async throws -> [LogEntry]
    /// Entries of an app with id > `after`, oldest first, at `level` or above.
    func logs(app: String, after: Int64?, minimumLevel: LogEntry.Level, limit: Int) async throws -> [LogEntry]
    /// The newest `limit` entries (for a tail), oldest first.
    func recentLogs(app: String, minimumLevel: LogEntry.Level, limit: Int) async throws -> [LogEntry]
    /// Keeps the newest `keep` entries per app; returns how many were removed.
    func trimLogs(keep: Int) async throws -> Int
}

public protocol SecretStore: Sendable {
    func putSecret(app: String, name: String, sealed: [UInt8], now: Milliseconds) async throws
    func sealedSecret(app: String, name: String) async throws -> [UInt8]?
    func secretSummaries(app: String) async throws -> [SecretSummary]
    func deleteSecret(app: String, name: String) async throws -> Bool
}

public protocol TopicStore: Sendable {
    /// Registers a topic; throws `conflict` if the app has one of that name.
    func createTopic(_ topic: TopicRecord) async throws
    func topic(app: String, name: String) async throws -> TopicRecord?
    /// The topic without waiting, when the backend can read it on the calling thread
    /// (`.some(nil)`: no such topic); nil when ``topic(app:name:)`` must be asked.
    func topicNow(app: String, name: String) -> TopicRecord??
    func topics(app: String) async throws -> [TopicRecord]
    /// Deletes a topic and its history; false if there was none.
    func deleteTopic(app: String, name: String) async throws -> Bool
    /// Sets whether browsers may subscribe; nil if there is no such topic.
    func setTopicExternal(app: String, name: String, external: Bool, now: Milliseconds) async throws -> TopicRecord?
    /// Makes the app's manifest topics `topics`: registers new ones, updates the auth mode and
    /// history of existing ones (never their external flag), deletes manifest topics no longer
    /// declared. One transaction.
    func replaceManifestTopics(app: String, topics: [TopicRecord], now: Milliseconds) async throws -> TopicChanges
    /// Publishes in one transaction: on a registered topic, the next event id and a history row
    /// (trimmed to the topic's count); one outbox row per target of `enqueue` with the JSON
    /// `event(seq)`. After the commit, and only then, `onCommit` gets the event, in commit order.
    /// Returns the event id within the topic (nil when it is not registered) and the first outbox
    /// event id (nil without targets).
    func publish(
        app: String, topic: String, message: [UInt8], now: Milliseconds, defaults: TopicHistoryDefaults, enqueue: OutboxEnqueue,
        event: @escaping @Sendable (Int64?) -> [UInt8], onCommit: @escaping @Sendable (TopicEvent) -> Void
    ) async throws -> (seq: Int64?, eventID: String?)
    /// Kept events with id > `after` (and young enough for the topic's history), oldest first, and
    /// the topic's newest id; nil if there is no such topic.
    func topicHistory(app: String, topic: String, after: Int64, limit: Int, now: Milliseconds, defaults: TopicHistoryDefaults) async throws -> (events: [TopicEvent], lastSeq: Int64)?
    /// Removes history events older than their topic keeps them; returns how many.
    func trimTopicHistory(now: Milliseconds, defaults: TopicHistoryDefaults) async throws -> Int
    /// A sealed per-app value the server keeps (like the subscriber-token signing key): the stored
    /// one, or `sealed` stored now if there is none. Race-safe: concurrent callers get the same one.
    func appSecret(app: String, name: String, orInsert sealed: [UInt8], now: Milliseconds) async throws -> [UInt8]
}

extension StorageBackend {
    /// Backends that cannot read on the calling thread always say "read the store".
    public func kvGetNow(app: String, key: String, now: Milliseconds) -> KVEntry?? { nil }

    public func topicNow(app: String, name: String) -> TopicRecord?? { nil }

    public func docGetNow(app: String, collection: String, id: String) -> DocRecord?? { nil }

    /// Backends without a callback interface run the async write in a task.
    public func kvSet(
        app: String, key: String, value: [UInt8], expiresAt: Milliseconds?, now: Milliseconds, enqueue: OutboxEnqueue,
        done: @escaping @Sendable (Result<Void, any Error>) -> Void
    ) {
        Task {
            do {
                try await kvSet(app: app, key: key, value: value, expiresAt: expiresAt, now: now, enqueue: enqueue)
                done(.success(()))
            } catch {
                done(.failure(error))
            }
        }
    }
}
