import Foundation
import Synchronization

/// How many event streams may be open at once: on this server, per app, per client address.
public struct SubscriberLimits: Sendable, Hashable {
    public var total: Int
    public var perApp: Int
    public var perClient: Int

    public init(total: Int = SubscriberLimits.defaultTotal, perApp: Int? = nil, perClient: Int = 5000) {
        self.total = total
        self.perApp = perApp ?? total
        self.perClient = perClient
    }

    /// Every stream holds a file descriptor: by default the server stops short of its open-files
    /// limit (keeping 256 for the store, logs and other requests) and never goes past 100,000.
    public static var defaultTotal: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1000 }
        return Int(max(16, min(100_000, Int64(limit.rlim_cur) - 256)))
    }
}

/// Counts open streams against ``SubscriberLimits``. A refused stream leaves existing ones alone.
final class SubscriberQuota: Sendable {
    enum Refusal: Error, Equatable {
        /// The server holds as many streams as it may (503).
        case server
        /// The app does (503).
        case app
        /// This client address does (429).
        case client
    }

    let limits: SubscriberLimits
    private struct Counts {
        var total = 0
        var apps: [String: Int] = [:]
        var clients: [String: Int] = [:]
    }

    private let counts = Mutex(Counts())

    init(limits: SubscriberLimits) {
        self.limits = limits
    }

    /// Counts a new stream, unless a limit is reached.
    func admit(app: String, client: String) throws(Refusal) {
        let refusal = counts.withLock { counts -> Refusal? in
            if counts.total >= limits.total { return .server }
            if counts.apps[app, default: 0] >= limits.perApp { return .app }
            if counts.clients[client, default: 0] >= limits.perClient { return .client }
            counts.total += 1
            counts.apps[app, default: 0] += 1
            counts.clients[client, default: 0] += 1
            return nil
        }
        if let refusal { throw refusal }
    }

    /// Uncounts a stream that was admitted.
    func release(app: String, client: String) {
        counts.withLock { counts in
            counts.total -= 1
            counts.apps[app] = counts.apps[app].flatMap { $0 > 1 ? $0 - 1 : nil }
            counts.clients[client] = counts.clients[client].flatMap { $0 > 1 ? $0 - 1 : nil }
        }
    }

    var total: Int { counts.withLock { $0.total } }
}
