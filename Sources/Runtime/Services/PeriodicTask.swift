import AsyncAlgorithms
import Logging
import ServiceLifecycle

/// Background work on a timer (flushing logs, purging expired keys, sweeping files), run as a
/// `Service` of the server's group. It stops on graceful shutdown after one last run, so a
/// flush at shutdown loses nothing buffered.
struct PeriodicTask: Service {
    let name: String
    let interval: Duration
    let logger: Logger
    let work: @Sendable () async throws -> Void

    func run() async throws {
        for await _ in AsyncTimerSequence(interval: interval, clock: .continuous).cancelOnGracefulShutdown() {
            await runOnce()
        }
        await runOnce()
    }

    func runOnce() async {
        do {
            try await work()
        } catch {
            logger.error("\(name) failed: \(error)")
        }
    }
}
