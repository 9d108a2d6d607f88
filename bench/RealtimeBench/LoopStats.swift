import NIOCore

/// What the subscribers of one event loop saw. Only touched on that loop (the handlers write it,
/// the driver reads it with `submit`), so recording an event takes no lock.
final class LoopStats {
    /// Publish → receive, in µs, of every event of the current pass.
    var latencies: [Int32] = []
    var events = 0
    var eventsWithoutTime = 0
    var gaps = 0
    var comments = 0
    var firstReceive = Int64.max
    var lastReceive = Int64.min
    /// Events each subscriber must have in total by the end of the pass.
    var target = Int.max
    /// Subscribers that reached `target`.
    var complete = 0
    /// Streams that answered 200 with their head.
    var subscribed = 0
    /// Streams that ended while the benchmark still listened, and protocol errors.
    var ended = 0
    var errors = 0

    /// Starts a pass: counts from zero, `target` events per subscriber in total.
    func startPass(target: Int, expectedEvents: Int) {
        latencies.removeAll(keepingCapacity: true)
        latencies.reserveCapacity(expectedEvents)
        events = 0
        eventsWithoutTime = 0
        gaps = 0
        firstReceive = .max
        lastReceive = .min
        self.target = target
        complete = 0
    }

    var snapshot: Snapshot {
        Snapshot(
            latencies: latencies, events: events, eventsWithoutTime: eventsWithoutTime, gaps: gaps, comments: comments,
            firstReceive: firstReceive, lastReceive: lastReceive, complete: complete, subscribed: subscribed, ended: ended, errors: errors
        )
    }

    /// A copy of the counters, to read off the loop.
    struct Snapshot: Sendable {
        var latencies: [Int32]
        var events: Int
        var eventsWithoutTime: Int
        var gaps: Int
        var comments: Int
        var firstReceive: Int64
        var lastReceive: Int64
        var complete: Int
        var subscribed: Int
        var ended: Int
        var errors: Int

        /// The counters of several loops added together (latencies concatenated, times widened).
        static func merged(_ parts: [Snapshot]) -> Snapshot {
            var total = Snapshot(
                latencies: [], events: 0, eventsWithoutTime: 0, gaps: 0, comments: 0, firstReceive: .max, lastReceive: .min,
                complete: 0, subscribed: 0, ended: 0, errors: 0
            )
            total.latencies.reserveCapacity(parts.reduce(0) { $0 + $1.latencies.count })
            for part in parts {
                total.latencies += part.latencies
                total.events += part.events
                total.eventsWithoutTime += part.eventsWithoutTime
                total.gaps += part.gaps
                total.comments += part.comments
                total.firstReceive = min(total.firstReceive, part.firstReceive)
                total.lastReceive = max(total.lastReceive, part.lastReceive)
                total.complete += part.complete
                total.subscribed += part.subscribed
                total.ended += part.ended
                total.errors += part.errors
            }
            return total
        }
    }
}

/// One `LoopStats` per event loop of a group.
struct StatsByLoop: Sendable {
    let all: [NIOLoopBound<LoopStats>]

    init(group: any EventLoopGroup) async throws {
        var all: [NIOLoopBound<LoopStats>] = []
        for loop in group.makeIterator() {
            all.append(try await loop.submit { NIOLoopBound(LoopStats(), eventLoop: loop) }.get())
        }
        self.all = all
    }

    /// The stats of the loop the caller runs on.
    func current(on loop: any EventLoop) -> LoopStats {
        all.first { $0.eventLoop === loop }!.value
    }

    /// Runs `body` on every loop's stats and returns the results.
    func each<Result: Sendable>(_ body: @escaping @Sendable (LoopStats) -> Result) async throws -> [Result] {
        var results: [Result] = []
        for bound in all {
            results.append(try await bound.eventLoop.submit { body(bound.value) }.get())
        }
        return results
    }

    func merged() async throws -> LoopStats.Snapshot {
        LoopStats.Snapshot.merged(try await each { $0.snapshot })
    }
}
