/// An outbox row: one event on its way to one trigger's handler.
public struct OutboxDelivery: Sendable, Hashable {
    public var id: Int64
    public var eventID: String
    public var app: String
    public var triggerID: String
    public var kind: TriggerKind
    public var handler: String
    /// The event as JSON.
    public var event: [UInt8]
    public var depth: Int
    /// Attempts so far, this one included once claimed.
    public var attempts: Int
    public var retry: RetryPolicy
    public var timeoutMilliseconds: Int64?
    /// Whether this delivers to a dead_letter trigger (such a delivery is never dead-lettered).
    public var toDeadLetter: Bool
    public var dueAt: Milliseconds
    public var leasedUntil: Milliseconds?
    public var lastError: String?
    public var createdAt: Milliseconds
}

/// A delivery that used up its attempts.
public struct DeadLetterRecord: Sendable, Hashable {
    public var id: String
    public var app: String
    public var eventID: String
    public var triggerID: String
    public var kind: TriggerKind
    public var handler: String
    public var event: [UInt8]
    public var depth: Int
    public var attempts: Int
    public var lastError: String
    public var firstEnqueuedAt: Milliseconds
    public var failedAt: Milliseconds
}

/// The storage of triggers, the outbox, dead letters and cron state.
public protocol TriggerStore: Sendable {
    /// Replaces an app's manifest triggers (API triggers stay).
    func replaceManifestTriggers(app: String, triggers: [TriggerRecord]) async throws
    func insertTrigger(_ trigger: TriggerRecord) async throws
    func deleteTrigger(app: String, id: String) async throws -> TriggerRecord?
    func triggers(app: String) async throws -> [TriggerRecord]
    func allTriggers() async throws -> [TriggerRecord]
}

public protocol OutboxStore: Sendable {
    /// Writes events that come with no data change (a publish, a replay) in one transaction.
    func enqueue(app: String, enqueue: OutboxEnqueue, event: [UInt8], now: Milliseconds) async throws -> String
    /// Leases up to `limit` due rows (free, or with an expired lease) to `owner`, counting an attempt.
    func claimDeliveries(owner: String, now: Milliseconds, leaseMilliseconds: Int64, limit: Int) async throws -> [OutboxDelivery]
    /// Deletes delivered rows still leased to `owner`.
    func completeDeliveries(ids: [Int64], owner: String) async throws
    /// Deletes delivered rows and leases the next due ones, in one transaction (the dispatcher's hot path).
    func completeAndClaim(completed: [Int64], owner: String, now: Milliseconds, leaseMilliseconds: Int64, limit: Int) async throws -> [OutboxDelivery]
    /// Frees a row for another attempt at `dueAt`.
    func retryDelivery(id: Int64, owner: String, dueAt: Milliseconds, error: String) async throws
    /// Replaces the row with a dead letter and enqueues the dead_letter triggers' events, in one transaction.
    func deadLetter(_ delivery: OutboxDelivery, owner: String, error: String, now: Milliseconds, deadLetterTargets: OutboxEnqueue) async throws -> DeadLetterRecord?
    /// Gives back a claimed row whose handler never started: its lease ends and the claim's
    /// attempt is taken back, so it is claimable at once, as if never claimed.
    func releaseDelivery(id: Int64, owner: String) async throws
    /// Deletes a row without a dead letter.
    func dropDelivery(id: Int64, owner: String) async throws
    /// Rows of an app, oldest first.
    func outbox(app: String, after: Int64?, limit: Int) async throws -> [OutboxDelivery]
    /// Rows waiting, in all apps.
    func outboxDepth() async throws -> Int
    /// The earliest due time of a row not leased, if any.
    func nextDueTime(now: Milliseconds) async throws -> Milliseconds?
    /// Leases new due rows to `taker` as they are written, or stops (nil); returns whether this
    /// store does (only one that no other node shares can). Once it does, it calls
    /// ``OutboxLeaseTaker/committedUnleased()`` for rows that wait for a claim: the caller need not
    /// wake its dispatcher after each write.
    func leaseNewRows(to taker: (any OutboxLeaseTaker)?) -> Bool
}

extension OutboxStore {
    /// Stores shared by several nodes leave new rows to the claim.
    public func leaseNewRows(to taker: (any OutboxLeaseTaker)?) -> Bool { false }
}

/// The local dispatcher, as the store sees it when it leases outbox rows in the transaction that
/// writes them (the embedded store: one node, so no other dispatcher could claim them). A leased
/// row counts its first attempt with its insert, and its handler starts as soon as the
/// transaction is durable, without a claim transaction in between.
public protocol OutboxLeaseTaker: AnyObject, Sendable {
    /// Who the rows are leased to, and for how long.
    var owner: String { get }
    var leaseMilliseconds: Int64 { get }
    /// Takes room for one more delivery, if the dispatcher has any and no older row waits for a
    /// claim (new rows must not overtake a backlog).
    func reserve() -> Bool
    /// Gives back room taken for rows that were not committed.
    func release(_ count: Int)
    /// Rows leased to ``owner`` by a transaction that committed: to deliver.
    func take(_ deliveries: [OutboxDelivery])
    /// A transaction that committed wrote rows it did not lease: they wait for a claim.
    func committedUnleased()
}

public protocol DeadLetterStore: Sendable {
    /// Dead letters newest first, after the one with id `before` (ids are ULIDs of the failure
    /// time, so they sort like it, and ties are impossible).
    func deadLetters(app: String, triggerID: String?, handler: String?, before: String?, limit: Int) async throws -> [DeadLetterRecord]
    func deadLetter(app: String, id: String) async throws -> DeadLetterRecord?
    /// Moves a dead letter back into the outbox (attempts reset) toward `target`, in one transaction.
    func replayDeadLetter(app: String, id: String, target: OutboxTarget, now: Milliseconds) async throws -> Bool
    /// Deletes one dead letter (`id`) or every one matching the filters; returns how many.
    func purgeDeadLetters(app: String, id: String?, triggerID: String?, handler: String?) async throws -> Int
}

public protocol CronStore: Sendable {
    func cronLastFired(triggerID: String) async throws -> Milliseconds?
    /// Records that the trigger fired for `scheduledAt` and enqueues the event, in one transaction,
    /// only if its last recorded time is still `previous` (so two nodes cannot both fire one time).
    /// With no event (`enqueue` empty) it only records the time.
    func fireCron(app: String, triggerID: String, previous: Milliseconds?, scheduledAt: Milliseconds, enqueue: OutboxEnqueue, event: [UInt8], now: Milliseconds) async throws -> Bool
}
