import Synchronization

/// What a node keeps in memory to publish in order: which topics are not registered, and a lock
/// per topic.
struct TopicKey: Hashable, Sendable {
    var app: String
    var topic: String
}

/// A set that forgets everything when it grows past `limit` (a cache of hints, never of facts).
final class BoundedSet<Element: Hashable & Sendable>: Sendable {
    private let elements = Mutex<Set<Element>>([])
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func contains(_ element: Element) -> Bool { elements.withLock { $0.contains(element) } }

    func insert(_ element: Element) {
        elements.withLock { elements in
            if elements.count >= limit { elements.removeAll() }
            elements.insert(element)
        }
    }

    func remove(_ element: Element) { _ = elements.withLock { $0.remove(element) } }
}

/// An async lock per key: callers with the same key run one at a time, in arrival order;
/// different keys do not wait for each other. Entries go away when nobody holds or waits.
final class KeyedLock<Key: Hashable & Sendable>: Sendable {
    private let waiters = Mutex<[Key: [CheckedContinuation<Void, Never>]]>([:])

    func withLock<T: Sendable>(_ key: Key, _ body: () async throws -> T) async throws -> T {
        await acquire(key)
        do {
            let result = try await body()
            release(key)
            return result
        } catch {
            release(key)
            throw error
        }
    }

    private func acquire(_ key: Key) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let mustWait = waiters.withLock { waiters -> Bool in
                if waiters[key] == nil {
                    waiters[key] = [] // held, nobody waiting
                    return false
                }
                waiters[key]!.append(continuation)
                return true
            }
            if !mustWait { continuation.resume() }
        }
    }

    private func release(_ key: Key) {
        let next = waiters.withLock { waiters -> CheckedContinuation<Void, Never>? in
            guard var queue = waiters[key], !queue.isEmpty else {
                waiters.removeValue(forKey: key)
                return nil
            }
            let next = queue.removeFirst()
            waiters[key] = queue
            return next
        }
        next?.resume()
    }
}
