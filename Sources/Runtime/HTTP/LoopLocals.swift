import LuaBridge
import NIOCore
import Prometheus
import Services

/// What an event loop keeps for the endpoint calls it serves, so that a call writes less of what
/// the other loops write too.
///
/// Every lock taken and every atomic count made by both loops moves a cache line from one core to
/// the other. Here each loop has its own `Date` text of the current second (the shared cache took
/// a lock and shared its string), its own block of request ids (one atomic add per 64 requests
/// instead of one per request), and the metrics of its current turn, handed to the shared ones
/// once per turn (the duration histogram takes a lock for every value). The app registry's and
/// the pool's locks are still taken per call: a loop keeping deployments of its own would keep an
/// old deployment and its VMs alive until its next request, or need the other loops to tell it.
final class LoopLocals: @unchecked Sendable {
    private static let all = PerEventLoop { LoopLocals(loop: $0) }

    /// The locals of `loop`.
    static func on(_ loop: any EventLoop) -> LoopLocals { all.on(loop) }

    let loop: any EventLoop
    // Everything below is used only on `loop`.
    private var second = 0
    private var dateText = ""
    private var requestIDs = Identifiers.RequestIDs()
    private var turnMetrics: PiCloudMetrics?
    private var turnRequests = 0
    private var turnDurations: [Duration] = []

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    /// This loop's worker for `deployment`.
    func worker(for deployment: ActiveDeployment) -> LuaConfinedWorker {
        let loop = self.loop
        return deployment.pool.existingConfinedWorker(for: ObjectIdentifier(loop)) ?? deployment.pool.confinedWorker(
            for: ObjectIdentifier(loop), schedule: { loop.execute($0) }, pause: { SliceRounds.on(loop).enqueue($0) }, executor: LoopTaskExecutor.on(loop)
        )
    }

    /// The `Date` header's value now.
    var date: String {
        let now = HTTPDate.coarseSecond()
        if now != second {
            second = now
            dateText = HTTPDate.now
        }
        return dateText
    }

    /// A new request id.
    func requestID(at time: Milliseconds) -> String { requestIDs.make(at: time) }

    /// Counts a request admitted; handed to `metrics` at the end of the turn.
    func countRequest(_ metrics: PiCloudMetrics) {
        enterTurn(metrics)
        turnRequests += 1
    }

    /// Records a request's duration; handed to `metrics` at the end of the turn.
    func recordDuration(_ duration: Duration, _ metrics: PiCloudMetrics) {
        enterTurn(metrics)
        turnDurations.append(duration)
    }

    private func enterTurn(_ metrics: PiCloudMetrics) {
        if let pending = turnMetrics {
            guard pending !== metrics else { return }
            handOver() // another server's metrics (tests run several in one process)
        }
        turnMetrics = metrics
        // Queued from the loop itself: it runs after this turn's I/O, without a wake-up.
        loop.execute { self.handOver() }
    }

    /// Hands this turn's counts over now (before an answer that is flushed at once).
    func settle() { handOver() }

    /// This turn's counts, to the shared metrics: one burst of writes per turn on their lines.
    private func handOver() {
        guard let metrics = turnMetrics else { return }
        turnMetrics = nil
        if turnRequests > 0 { metrics.requests.increment(by: Int64(turnRequests)) }
        for duration in turnDurations { metrics.requestDuration.record(duration) }
        turnRequests = 0
        turnDurations.removeAll(keepingCapacity: true)
    }
}
