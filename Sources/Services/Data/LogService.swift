import Synchronization

/// Apps' logs: `log.*` and `print` from scripts, and the runtime's notes about an app (a failed
/// invocation, a deployment). Appending never waits for the disk: lines are buffered and written
/// in batches by ``flush()``, which the server calls every 100 ms. Followers (`?follow=1`) get
/// each line as soon as it is stored. Logs are best-effort: a crash loses at most the last batch.
public final class LogService: Sendable {
    let storage: any StorageBackend
    /// Longest line kept, in bytes; longer ones are cut.
    public static let maxMessageBytes = 8 << 10
    /// Lines buffered before appends start dropping (and counting what they drop).
    public static let maxBuffered = 10_000

    struct State {
        var buffer: [LogEntry] = []
        var dropped = 0
        var followers: [Int: Follower] = [:]
        var nextFollower = 0
    }

    struct Follower {
        let app: String
        let level: LogEntry.Level
        let continuation: AsyncStream<LogEntry>.Continuation
    }

    let state = Mutex(State())

    public init(storage: any StorageBackend) { self.storage = storage }

    public func append(app: String, level: LogEntry.Level, message: String, requestID: String? = nil) {
        var text = message
        if text.utf8.count > Self.maxMessageBytes {
            text = String(decoding: text.utf8.prefix(Self.maxMessageBytes), as: UTF8.self) + "… (cut)"
        }
        let entry = LogEntry(app: app, at: Clock.now(), level: level, message: text, requestID: requestID)
        state.withLock { state in
            if state.buffer.count >= Self.maxBuffered {
                state.dropped += 1
            } else {
                state.buffer.append(entry)
            }
        }
    }

    /// Writes buffered lines and hands them to followers; returns how many were written.
    @discardableResult
    public func flush() async throws -> Int {
        let (batch, dropped) = state.withLock { state in
            defer {
                state.buffer.removeAll(keepingCapacity: true)
                state.dropped = 0
            }
            return (state.buffer, state.dropped)
        }
        var entries = batch
        if dropped > 0, let app = batch.last?.app {
            entries.append(LogEntry(app: app, at: Clock.now(), level: .warn, message: "\(dropped) log lines were dropped (logging faster than they can be stored)", requestID: nil))
        }
        guard !entries.isEmpty else { return 0 }
        let stored = try await storage.appendLogs(entries)
        let followers = state.withLock { Array($0.followers.values) }
        for entry in stored {
            for follower in followers where follower.app == entry.app && entry.level >= follower.level {
                follower.continuation.yield(entry)
            }
        }
        return stored.count
    }

    /// The newest lines of an app, oldest first.
    public func recent(app: String, level: LogEntry.Level = .debug, limit: Int = 100) async throws -> [LogEntry] {
        try await storage.recentLogs(app: app, minimumLevel: level, limit: min(max(limit, 1), 10_000))
    }

    /// Lines after `after` (an id), oldest first.
    public func since(app: String, after: Int64?, level: LogEntry.Level = .debug, limit: Int = 1000) async throws -> [LogEntry] {
        try await storage.logs(app: app, after: after, minimumLevel: level, limit: min(max(limit, 1), 10_000))
    }

    /// New lines of an app as they are stored, until the stream is dropped.
    public func follow(app: String, level: LogEntry.Level = .debug) -> AsyncStream<LogEntry> {
        let (stream, continuation) = AsyncStream.makeStream(of: LogEntry.self, bufferingPolicy: .bufferingNewest(1000))
        let id = state.withLock { state in
            defer { state.nextFollower += 1 }
            state.followers[state.nextFollower] = Follower(app: app, level: level, continuation: continuation)
            return state.nextFollower
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.followers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Keeps the newest `keep` lines per app.
    public func trim(keep: Int = 10_000) async throws -> Int { try await storage.trimLogs(keep: keep) }
}
