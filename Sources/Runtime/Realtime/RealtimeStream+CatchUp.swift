import Logging
import NIOCore
import Prometheus
import Services

/// Catching up: a stream that is not live (it just connected, resumed, or fell behind) sends
/// from the topic's ring, then from its history, at the pace the subscriber reads, and goes live
/// again once it reached the newest event.
extension RealtimeStream {
    /// Sends what the stream is missing, from the ring or the history, until it is live.
    func pump() {
        guard case .streaming = phase, !live, !fetching, let context, let membership else { return }
        var wrote = 0
        defer {
            if wrote > 0 { context.flush() }
        }
        while true {
            guard context.channel.isWritable else {
                waitingForWritability = true
                return
            }
            // Below the floor the ring may not hold what is missing: never go live from there.
            let read = position < floor ? membership.peek(after: position) : membership.catchUp(after: position)
            switch read {
            case .upToDate where position < floor:
                fetchHistory(through: floor)
                return
            case .upToDate:
                live = true
                return
            case .entries(_, let missed?):
                fetchHistory(through: missed.upperBound)
                return
            case .entries(let entries, nil):
                var batch = 0
                for entry in entries {
                    writeChunk(entry.payload)
                    position = entry.seq
                    batch += 1
                    if !context.channel.isWritable { break }
                }
                wrote += batch
                core.metrics.realtimeDelivered.increment(by: Int64(batch))
            }
        }
    }

    /// Reads the history after the current position (one page), then carries on pumping.
    func fetchHistory(through upper: Int64) {
        guard let context else { return }
        fetching = true
        Self.readHistory(core.services.topics, app: app, topic: topic, after: position, through: upper, for: NIOLoopBound(self, eventLoop: context.eventLoop))
    }

    static func readHistory(_ topics: TopicService, app: String, topic: String, after: Int64, through upper: Int64, for stream: NIOLoopBound<RealtimeStream>) {
        Task {
            let result: Result<History?, any Error>
            do {
                result = .success(try await topics.events(app: app, topic: topic, after: after, limit: historyPage).map { History(events: $0.events, lastSeq: $0.lastSeq) })
            } catch {
                result = .failure(error)
            }
            stream.eventLoop.execute { stream.value.historyArrived(result, after: after, through: upper) }
        }
    }

    /// A page of the topic's history.
    struct History: Sendable {
        var events: [TopicEvent]
        var lastSeq: Int64
    }

    func historyArrived(_ result: Result<History?, any Error>, after: Int64, through upper: Int64) {
        fetching = false
        guard case .streaming = phase, let context, position == after else { return }
        let page: History
        switch result {
        case .success(let found?):
            page = found
            historyFailures = 0
        case .success(nil):
            end(event: "closed", reason: "topic_deleted")
            return
        case .failure(let error):
            // The database could not answer (busy, a disk problem): try again shortly, and after a
            // few failures end the stream; the client reconnects with its Last-Event-ID.
            historyFailures += 1
            core.logger.warning("realtime: reading the history of \(app)/\(topic) failed (\(historyFailures)): \(error)")
            guard historyFailures < 5 else {
                end(event: "closed", reason: "unavailable")
                return
            }
            fetching = true
            let stream = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .seconds(1)) {
                stream.value.fetching = false
                stream.value.fetchHistory(through: upper)
            }
            return
        }
        var out = ByteBuffer()
        let events = page.events.filter { $0.seq <= upper }
        if let first = events.first, first.seq > position + 1 {
            out.writeImmutableBuffer(Self.gap(from: position + 1, to: first.seq - 1, reason: "history_exceeded"))
            core.metrics.realtimeDropped.increment(by: first.seq - 1 - position)
        }
        for event in events { out.writeImmutableBuffer(RealtimeHub.frame(event)) }
        if let last = events.last { position = last.seq }
        core.metrics.realtimeReplayed.increment(by: Int64(events.count))
        // The history has nothing more up to `upper`: those ids are gone for good.
        if page.events.count < Self.historyPage || events.count < page.events.count, position < upper {
            out.writeImmutableBuffer(Self.gap(from: position + 1, to: upper, reason: "history_exceeded"))
            core.metrics.realtimeDropped.increment(by: upper - position)
            position = upper
        }
        if out.readableBytes > 0 { write(out) }
        pump()
        context.flush()
    }
}
