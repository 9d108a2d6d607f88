import Synchronization

/// Recently read kv entries (and keys known to be absent), kept exact by the one process that
/// writes the SQLite file: a hit is what the database holds at that moment, so `kv.get` of a hot
/// key answers without a database read or a thread hand-off.
///
/// How it stays exact: a write to a key marks it pending before it is queued and unmarks it after
/// its batch committed (or failed), before its caller hears back; a write that touches many keys
/// (expiry purge, app deletion) marks everything pending. Every end of a write bumps the
/// generation. An entry read from the database goes in only if no write to its key was pending
/// when it goes in and none ended since the read began, so it cannot be older than a write
/// that was acknowledged. Entries are dropped when their key is written, and an arbitrary one
/// when the cache is full.
final class KVReadCache: Sendable {
    struct Key: Hashable {
        let app: String
        let key: String
    }

    private struct Entry {
        /// nil: the key has no entry.
        let value: KVEntry?
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var pending: [Key: Int] = [:]
        var pendingEverything = 0
        var generation: UInt64 = 0
    }

    /// Most entries held; 0 turns the cache off.
    let capacity: Int
    /// Values larger than this are not kept.
    static let largestValue = 4096
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    enum Lookup {
        /// The cache knows: the entry, or nil when there is none (or it expired).
        case known(KVEntry?)
        /// Read the database; pass the generation to ``fill(_:_:generation:)``.
        case unknown(generation: UInt64)
    }

    func lookup(app: String, key: String, now: Milliseconds) -> Lookup {
        guard capacity > 0 else { return .unknown(generation: 0) }
        return state.withLock { state in
            if let entry = state.entries[Key(app: app, key: key)] {
                guard let value = entry.value else { return .known(nil) }
                if let expiresAt = value.expiresAt, expiresAt <= now { return .known(nil) }
                return .known(value)
            }
            return .unknown(generation: state.generation)
        }
    }

    /// Keeps what a read that began at `generation` found, unless a write may have changed it since.
    func fill(app: String, key: String, _ value: KVEntry?, generation: UInt64) {
        guard capacity > 0, (value?.value.count ?? 0) <= Self.largestValue else { return }
        let cacheKey = Key(app: app, key: key)
        state.withLock { state in
            guard state.generation == generation, state.pendingEverything == 0, state.pending[cacheKey] == nil else { return }
            if state.entries.count >= capacity, let victim = state.entries.keys.first { state.entries[victim] = nil }
            state.entries[cacheKey] = Entry(value: value)
        }
    }

    /// Before a write to `key` is queued.
    func beginWrite(app: String, key: String) {
        guard capacity > 0 else { return }
        let cacheKey = Key(app: app, key: key)
        state.withLock { state in
            state.pending[cacheKey, default: 0] += 1
            state.entries[cacheKey] = nil
        }
    }

    /// After the write's batch committed or failed, before its caller hears back.
    func endWrite(app: String, key: String) {
        guard capacity > 0 else { return }
        let cacheKey = Key(app: app, key: key)
        state.withLock { state in
            let left = (state.pending[cacheKey] ?? 1) - 1
            state.pending[cacheKey] = left > 0 ? left : nil
            state.entries[cacheKey] = nil
            state.generation &+= 1
        }
    }

    /// Before a write that may touch any key.
    func beginWriteEverything() {
        guard capacity > 0 else { return }
        state.withLock { state in
            state.pendingEverything += 1
            state.entries = [:]
        }
    }

    func endWriteEverything() {
        guard capacity > 0 else { return }
        state.withLock { state in
            state.pendingEverything -= 1
            state.entries = [:]
            state.generation &+= 1
        }
    }

    var count: Int { state.withLock { $0.entries.count } }
}
