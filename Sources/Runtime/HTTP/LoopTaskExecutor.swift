import NIOCore
import Synchronization

/// An event loop as a task executor: a task that prefers it runs its code on the loop, and comes
/// back to the loop — not to Swift's thread pool — when what it awaited is done.
///
/// A handler on an event loop that waits for a host call (a write, a query) runs the call in a
/// task. Without a preference, the call starts on the pool, the storage's writer resumes it on the
/// pool, and its outcome goes back to the loop: four thread switches per write. With the loop as
/// the preference it is two: to the writer and back.
final class LoopTaskExecutor: TaskExecutor {
    private static let all = PerEventLoop { LoopTaskExecutor(loop: $0) }

    /// The executor of `loop`.
    static func on(_ loop: any EventLoop) -> LoopTaskExecutor { all.on(loop) }

    let loop: any EventLoop

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// One object per event loop, made on first use and kept (a server's event loops live as long as
/// the process; the tests' servers, with loops of their own, leave a few behind).
final class PerEventLoop<Value: AnyObject & Sendable>: Sendable {
    private let values = Mutex<[ObjectIdentifier: Value]>([:])
    private let make: @Sendable (any EventLoop) -> Value

    init(_ make: @escaping @Sendable (any EventLoop) -> Value) {
        self.make = make
    }

    func on(_ loop: any EventLoop) -> Value {
        values.withLock { values in
            if let existing = values[ObjectIdentifier(loop)] { return existing }
            let made = make(loop)
            values[ObjectIdentifier(loop)] = made
            return made
        }
    }
}
