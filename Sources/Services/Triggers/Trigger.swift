import Foundation

/// What a trigger reacts to.
public enum TriggerKind: String, Sendable, Hashable, Codable, CaseIterable {
    case kv, docs, files, topic, cron
    case deadLetter = "dead_letter"
}

/// A data change, a publish or a failure that triggers may react to.
public enum TriggerEvent: Sendable, Hashable {
    case kv(op: String, key: String)
    case docs(op: String, collection: String)
    case files(op: String, path: String)
    case topic(String)
    case deadLetter(triggerID: String, kind: TriggerKind, handler: String)

    var kind: TriggerKind {
        switch self {
        case .kv: .kv
        case .docs: .docs
        case .files: .files
        case .topic: .topic
        case .deadLetter: .deadLetter
        }
    }
}

/// What a trigger matches. Which fields apply depends on the kind:
/// `kv`: `key` (a glob with `*` and `?`) or `prefix`, and `ops` (set, delete);
/// `docs`: `collection` and `ops` (insert, update, delete); `files`: `prefix` and `ops` (put, delete);
/// `topic`: `topic`; `cron`: `schedule`; `dead_letter`: optionally `onTrigger`, `onHandler` and `onKind`.
public struct TriggerMatch: Sendable, Hashable, Codable {
    public var key: String?
    public var prefix: String?
    public var collection: String?
    public var ops: [String]?
    public var topic: String?
    public var schedule: String?
    public var onTrigger: String?
    public var onHandler: String?
    public var onKind: String?

    public init(key: String? = nil, prefix: String? = nil, collection: String? = nil, ops: [String]? = nil, topic: String? = nil,
                schedule: String? = nil, onTrigger: String? = nil, onHandler: String? = nil, onKind: String? = nil) {
        self.key = key
        self.prefix = prefix
        self.collection = collection
        self.ops = ops
        self.topic = topic
        self.schedule = schedule
        self.onTrigger = onTrigger
        self.onHandler = onHandler
        self.onKind = onKind
    }

    enum CodingKeys: String, CodingKey {
        case key, prefix, collection, ops, topic, schedule
        case onTrigger = "on_trigger"
        case onHandler = "on_handler"
        case onKind = "on_kind"
    }
}

/// A trigger: when something matching happens in its app, its handler runs with the event.
public struct TriggerRecord: Sendable, Hashable {
    public enum Source: String, Sendable, Hashable { case manifest, api }

    public var id: String
    public var app: String
    public var source: Source
    public var kind: TriggerKind
    public var match: TriggerMatch
    public var handler: String
    public var retry: RetryPolicy
    /// The handler's time limit for this trigger (nil: the app's).
    public var timeoutMilliseconds: Int64?
    public var createdAt: Milliseconds

    public init(id: String, app: String, source: Source, kind: TriggerKind, match: TriggerMatch, handler: String,
                retry: RetryPolicy, timeoutMilliseconds: Int64?, createdAt: Milliseconds) {
        self.id = id
        self.app = app
        self.source = source
        self.kind = kind
        self.match = match
        self.handler = handler
        self.retry = retry
        self.timeoutMilliseconds = timeoutMilliseconds
        self.createdAt = createdAt
    }

    /// The defaults when a trigger does not set them: 5 attempts, backoff from 1 s up to 5 min.
    public static let defaultRetry = RetryPolicy(maxAttempts: 5, baseMilliseconds: 1000, capMilliseconds: 300_000)

    /// Checks the kind's fields; throws `invalid_input` naming what is wrong.
    public static func validate(kind: TriggerKind, match: TriggerMatch) throws(ServiceError) {
        func require(_ value: String?, _ name: String) throws(ServiceError) {
            guard let value, !value.isEmpty else { throw ServiceError(.invalidInput, "a \(kind.rawValue) trigger needs \(name)") }
        }
        func checkOps(_ allowed: [String]) throws(ServiceError) {
            for op in match.ops ?? [] where !allowed.contains(op) {
                throw ServiceError(.invalidInput, "a \(kind.rawValue) trigger's ops are \(allowed.joined(separator: ", ")); '\(op)' is not one")
            }
        }
        switch kind {
        case .kv:
            guard (match.key == nil) != (match.prefix == nil) else { throw ServiceError(.invalidInput, "a kv trigger needs key = \"glob*\" or prefix = \"...\" (one of them)") }
            try checkOps(["set", "delete"])
        case .docs:
            try require(match.collection, "collection")
            try DocService.validate(collection: match.collection!)
            try checkOps(["insert", "update", "delete"])
        case .files:
            guard match.prefix != nil else { throw ServiceError(.invalidInput, "a files trigger needs prefix (\"\" for every file)") }
            try checkOps(["put", "delete"])
        case .topic:
            try require(match.topic, "topic")
            try Topic.validate(name: match.topic!)
        case .cron:
            try require(match.schedule, "schedule")
            _ = try CronSchedule(match.schedule!)
        case .deadLetter:
            if let onKind = match.onKind, TriggerKind(rawValue: onKind) == nil {
                throw ServiceError(.invalidInput, "on_kind '\(onKind)' is not a trigger kind")
            }
        }
    }

    /// Whether an event in this trigger's app fires it.
    public func matches(_ event: TriggerEvent) -> Bool {
        guard event.kind == kind else { return false }
        switch event {
        case .kv(let op, let key):
            guard match.ops.map({ $0.contains(op) }) ?? true else { return false }
            if let prefix = match.prefix { return key.hasPrefix(prefix) }
            return match.key.map { Self.glob($0, matches: key) } ?? false
        case .docs(let op, let collection):
            return collection == match.collection && (match.ops.map { $0.contains(op) } ?? true)
        case .files(let op, let path):
            return path.hasPrefix(match.prefix ?? "") && (match.ops.map { $0.contains(op) } ?? true)
        case .topic(let name):
            return name == match.topic
        case .deadLetter(let failedTrigger, let failedKind, let failedHandler):
            return (match.onTrigger.map { $0 == failedTrigger } ?? true) && (match.onHandler.map { $0 == failedHandler } ?? true)
                && (match.onKind.map { $0 == failedKind.rawValue } ?? true)
        }
    }

    /// `*` matches any run of characters, `?` any one character.
    public static func glob(_ pattern: String, matches text: String) -> Bool {
        let pattern = Array(pattern.unicodeScalars)
        let text = Array(text.unicodeScalars)
        var p = 0, t = 0, star = -1, mark = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == "?" || pattern[p] == text[t] {
                p += 1
                t += 1
            } else if p < pattern.count, pattern[p] == "*" {
                star = p
                mark = t
                p += 1
            } else if star >= 0 {
                p = star + 1
                mark += 1
                t = mark
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }

    /// Where events of this trigger are delivered.
    public var target: OutboxTarget {
        OutboxTarget(triggerID: id, kind: kind, handler: handler, retry: retry, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// A stable id for a manifest trigger: the same declaration keeps its id (and its cron state) across deployments.
    public static func manifestID(app: String, kind: TriggerKind, match: TriggerMatch, handler: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let config = (try? encoder.encode(match)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return "trg_" + Identifiers.hex(Identifiers.sha256("\(app)\u{0}\(kind.rawValue)\u{0}\(config)\u{0}\(handler)".utf8).prefix(10))
    }
}

/// Where one event goes: a trigger's handler, with its retry settings.
public struct OutboxTarget: Sendable, Hashable {
    public var triggerID: String
    public var kind: TriggerKind
    public var handler: String
    public var retry: RetryPolicy
    public var timeoutMilliseconds: Int64?

    public init(triggerID: String, kind: TriggerKind, handler: String, retry: RetryPolicy, timeoutMilliseconds: Int64?) {
        self.triggerID = triggerID
        self.kind = kind
        self.handler = handler
        self.retry = retry
        self.timeoutMilliseconds = timeoutMilliseconds
    }
}

/// Events to write with a change, in the same transaction: one outbox row per target.
public struct OutboxEnqueue: Sendable {
    public var targets: [OutboxTarget]
    /// The depth the events get (the changing invocation's depth plus one).
    public var depth: Int

    public init(targets: [OutboxTarget], depth: Int) {
        self.targets = targets
        self.depth = depth
    }

    public static let none = OutboxEnqueue(targets: [], depth: 0)
}

/// Finds the triggers an event fires and learns when events were enqueued (to wake the dispatcher).
public protocol TriggerMatching: Sendable {
    /// The targets for an event at `depth`; none when the depth limit is reached.
    func targets(app: String, event: TriggerEvent, depth: Int) -> [OutboxTarget]
    /// Called after a transaction wrote outbox rows.
    func didEnqueue()
}

/// No triggers at all (for services used without a dispatcher).
public struct NoTriggers: TriggerMatching {
    public init() {}
    public func targets(app: String, event: TriggerEvent, depth: Int) -> [OutboxTarget] { [] }
    public func didEnqueue() {}
}
