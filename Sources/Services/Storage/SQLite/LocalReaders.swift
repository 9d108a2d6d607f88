import Foundation
import GRDB
import Synchronization

/// Read-only connections confined to the threads that ask for them, for point reads that answer
/// on the calling thread: no hop to the pool's reader queues and back, which costs several times
/// the read itself (`kv.get` of an uncached key: 170 µs of CPU through the pool, see
/// docs/performance.md). A Lua handler runs on its event loop, as OpenResty's do, so its
/// `kv.get` then finishes without suspending.
///
/// Only for reads of a row or two by key: the thread is blocked while SQLite reads, which takes
/// microseconds when the pages are in memory. A query of unknown size keeps to the pool.
///
/// A thread gets its own connection the first time it asks, up to `capacity` threads; a thread
/// beyond that (and any read that fails, or finds the database busy) gets nil and reads the
/// waiting way, which reports errors. Each connection is used by one live thread at a time (a
/// dead thread's identifier may pass to a new thread, and its connection with it). A lone
/// statement reads one snapshot, so no transaction is opened around it.
final class LocalReaders: Sendable {
    private let path: String
    private let capacity: Int
    private let readers = Mutex<[UInt: DatabaseQueue]>([:])
    /// After a connection could not be opened, no more are tried.
    private let broken = Atomic<Bool>(false)

    init(path: String, capacity: Int) {
        self.path = path
        self.capacity = capacity
    }

    /// `body` on the calling thread's connection, or nil when this thread has none (or the read
    /// failed): the caller then reads through the pool.
    func read<T>(_ body: (Database) throws -> T) -> T? {
        guard capacity > 0, !broken.load(ordering: .relaxed), let reader = reader() else { return nil }
        return try? reader.inDatabase(body)
    }

    private func reader() -> DatabaseQueue? {
        let thread = UInt(bitPattern: Int(bitPattern: pthread_self()))
        if let reader = readers.withLock({ $0[thread] }) { return reader }
        guard readers.withLock({ $0.count }) < capacity else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        // Busy only in rare moments of the WAL (its index being rebuilt): the thread must not
        // wait for that, the pool does.
        configuration.busyMode = .immediateError
        configuration.label = "picloud.local-reader"
        guard let reader = try? DatabaseQueue(path: path, configuration: configuration) else {
            broken.store(true, ordering: .relaxed)
            return nil
        }
        return readers.withLock { readers in
            if let existing = readers[thread] { return existing }
            guard readers.count < capacity else { return nil }
            readers[thread] = reader
            return reader
        }
    }
}
